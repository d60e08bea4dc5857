#!/usr/bin/env python3
"""Stand-in quantize.py (TensorRT-LLM 1.2.1): --help like argparse; argv checked against cli_flags.parse_quantize."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[5]))  # the repository root

from tests.integration.standins.argparse_standin import main
from tests.integration.standins.cli_flags import parse_quantize

if __name__ == "__main__":
    main("quantize.py", parse_quantize)
