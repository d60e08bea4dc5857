#!/usr/bin/env bash
# Install everything the tests need, then lint and run the default test suite.
# Usage: ./scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-system.sh
./scripts/install.sh --dev
# vLLM (CPU build) in its own environment: the endpoint tests start real vLLM servers from it.
./scripts/install-vllm.sh
# Round v4.0's LoadGen (4.0.1) in its own environment: the tests of the seed round's runs use it.
./scripts/install-loadgen-round.sh v4.0
./scripts/install-reference-scorers.sh  # the official accuracy scripts' pinned libraries (.venv-reference*)
python3 -m ruff check harness compliance submission tests benchmarks
lint-imports
# Open MPI refuses root unless told; CI runs as root.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
python3 -m pytest -q "$@"
