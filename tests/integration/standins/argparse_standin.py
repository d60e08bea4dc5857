"""Shared body of the argparse stand-ins (trtllm-build, quantize.py, convert_checkpoint.py): `--help` prints a
usage line and exits 0 like argparse; any other argv is parsed against the release's option table
(tests/integration/standins/cli_flags.py), refused with exit 2 like argparse, else recorded under
$STANDIN_RECORD_DIR/<name>.json and exits 0 without doing the real work."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.integration.standins.cli_flags import Refused, help_requested


def main(name: str, parse: Callable[[list[str]], Any]) -> None:
    argv = sys.argv[1:]
    if help_requested(argv, name):
        return
    try:
        args = parse(argv)
    except Refused as err:
        print(f"{name}: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    folder = os.environ.get("STANDIN_RECORD_DIR")
    if folder:
        (Path(folder) / f"{name}.json").write_text(json.dumps({"argv": argv, "args": vars(args)}, indent=1))
