#!/usr/bin/env python3
"""Stand-in convert_checkpoint.py (TensorRT-LLM 1.2.1): --help like argparse; argv checked by cli_flags."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[7]))  # the repository root

from tests.integration.standins.argparse_standin import main
from tests.integration.standins.cli_flags import parse_convert

if __name__ == "__main__":
    main("convert_checkpoint.py", parse_convert)
