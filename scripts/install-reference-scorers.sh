#!/usr/bin/env bash
# The pinned libraries of MLCommons' reference accuracy scripts, each set in its own environment, for the tests
# that run the official scripts offline and compare every printed number with `harness evaluate`:
#   .venv-reference         language/llama3.1-8b/requirements.txt (inference HEAD): transformers 4.46.2, nltk 3.8.1,
#                           evaluate 0.4.0, absl-py 1.4.0, rouge-score 0.1.2, sentencepiece 0.2.0; plus datasets
#                           2.21.0 (evaluate imports it) and protobuf (4.46.2's slow LlamaTokenizer reads the model
#                           proto). Made with --system-site-packages: evaluation.py and dataset.py import torch
#                           (unused for scoring), which comes from the Python it is made from (a harness
#                           dependency: scripts/install.sh installs the CPU build), as do numpy (2.x: the script
#                           prints np.float64(...)) and pandas; everything pinned is installed in the venv.
#                           Used by tests/unit/harness/benchmarks/llama3_1_8b/test_evaluate.py and
#                           tests/unit/harness/benchmarks/llama2_70b/test_evaluate_official.py.
#   .venv-reference-llama2  language/llama2-70b/README.md (the same at v4.0 and HEAD): transformers 4.31.0,
#                           nltk 3.8.1, evaluate 0.4.0, absl-py 1.4.0, rouge-score 0.1.2, sentencepiece 0.1.99;
#                           plus datasets 2.21.0, numpy<2, pandas<3 and pyarrow 15 (datasets' arrow; newer pyarrow
#                           needs numpy 2): numpy 2.0 came after round v4.0, and numpy 1 prints plain numbers.
#                           Isolated: evaluate-accuracy.py imports no torch. transformers 4.31.0 needs tokenizers
#                           0.13.3, whose wheels stop at CPython 3.11.
#                           Used by tests/unit/harness/benchmarks/llama2_70b/test_evaluate_official.py.
# What is installed comes from the package index through pip; the tests need nothing of the harness there (they
# import only tests/unit/harness/benchmarks/official_script.py, standard library at its top). The tests find the
# environments at these paths first. Idempotent: an environment whose pins are installed and import is kept
# (a few seconds). Prints the environments' pythons last.
# Usage: ./scripts/install-reference-scorers.sh        (PYTHON=... to choose the Python they are made from)
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}

llama31_pins=(transformers==4.46.2 nltk==3.8.1 evaluate==0.4.0 absl-py==1.4.0 rouge-score==0.1.2
              sentencepiece==0.2.0 datasets==2.21.0)
llama31_extra=(protobuf "numpy>=2" pandas)
llama2_pins=(transformers==4.31.0 nltk==3.8.1 evaluate==0.4.0 absl-py==1.4.0 rouge-score==0.1.2
             sentencepiece==0.1.99 datasets==2.21.0)
llama2_extra=("numpy<2" "pandas<3" "pyarrow>=15,<16")

# works VENV PIN...: the venv's python sees exactly these versions and imports the libraries the scripts use
works() {
  local venv=$1
  shift
  [[ -x "$venv/bin/python" ]] && "$venv/bin/python" - "$@" >/dev/null 2>&1 <<'PY'
import importlib.metadata as md, sys
for pin in sys.argv[1:]:
    name, version = pin.split("==")
    assert md.version(name) == version, (name, md.version(name), version)
import evaluate, nltk, numpy, pandas, rouge_score, sentencepiece, transformers  # noqa: F401, E401
from transformers import AutoTokenizer  # noqa: F401
PY
}

# build VENV VENV_OPTIONS PINS... -- EXTRA...
build() {
  local venv=$1 options=$2
  shift 2
  local pins=() extra=()
  while [[ $1 != -- ]]; do pins+=("$1"); shift; done
  shift
  extra=("$@")
  if works "$venv" "${pins[@]}"; then
    return
  fi
  rm -rf "$venv"
  # shellcheck disable=SC2086  # options: zero or one word
  "$python" -m venv $options "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet "${pins[@]}" "${extra[@]}"
  works "$venv" "${pins[@]}" || {
    echo "install-reference-scorers: ${pins[*]} do not import in $venv" >&2
    exit 1
  }
}

build .venv-reference --system-site-packages "${llama31_pins[@]}" -- "${llama31_extra[@]}"
build .venv-reference-llama2 "" "${llama2_pins[@]}" -- "${llama2_extra[@]}"
"$(pwd)/.venv-reference/bin/python" -c "import torch" 2>/dev/null ||
  echo "install-reference-scorers: warning: $python has no torch; language/llama3.1-8b/evaluation.py imports it" >&2
echo "$(pwd)/.venv-reference/bin/python"
echo "$(pwd)/.venv-reference-llama2/bin/python"
