#!/usr/bin/env bash
# The LoadGen of an older round, in its own environment beside the default one. Every LoadGen release installs
# the same module (mlperf_loadgen), so two cannot share one environment; this one sees everything else of the
# environment it is made from (--system-site-packages), the harness included, and overrides only LoadGen.
# Usage: ./scripts/install-loadgen-round.sh ROUND     (e.g. v4.0 -> .venv-loadgen-v4.0; LOADGEN_VENV=DIR to choose)
# Then: .venv-loadgen-v4.0/bin/harness run --set round=v4.0 ...   Idempotent. Prints the environment's python last.
set -euo pipefail
cd "$(dirname "$0")/.."
round=${1:?usage: $0 ROUND (v4.0, v5.0, v5.1 or v6.0)}
python=${PYTHON:-python3}
venv=${LOADGEN_VENV:-.venv-loadgen-$round}
# The pip requirement comes from the one table of rounds (harness/rounds.py: loadgen_pip).
requirement=$("$python" - "$round" <<'PY'
import sys
from harness.errors import ConfigError
from harness.rounds import round_spec
try:
    pip = round_spec(sys.argv[1]).loadgen_pip
except ConfigError as error:
    sys.exit(f"install-loadgen-round: {error.message}")
if not pip.startswith("pip install "):
    sys.exit(f"install-loadgen-round: round {sys.argv[1]}'s LoadGen is not on PyPI: {pip}")
print(pip.removeprefix("pip install ").strip("'"))
PY
)
works() {
  [[ -x "$venv/bin/python" ]] && "$venv/bin/python" - "$round" >/dev/null 2>&1 <<'PY'
import importlib.metadata as md, sys
from harness.rounds import round_spec
assert round_spec(sys.argv[1]).loadgen_matches(md.version("mlcommons-loadgen"))
import harness.cli  # noqa: F401
PY
}
if ! works; then
  rm -rf "$venv"
  "$python" -m venv --system-site-packages "$venv"
  # mlcommons-loadgen 4.0.1 is an sdist: pip compiles it (about 40 s).
  "$venv/bin/python" -m pip install --quiet --no-deps --ignore-installed "$requirement"
  # the console scripts of the harness, run by this environment's python
  for tool in harness compliance submission; do
    printf '#!%s\nfrom %s.cli import main\nmain()\n' "$(cd "$venv" && pwd)/bin/python" "$tool" >"$venv/bin/$tool"
    chmod +x "$venv/bin/$tool"
  done
  works || { echo "install-loadgen-round: $requirement does not produce round $round in $venv" >&2; exit 1; }
fi
echo "$(cd "$venv" && pwd)/bin/python"
