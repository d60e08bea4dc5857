"""`python -m compliance` runs the `compliance` console script."""

from __future__ import annotations

from compliance.cli import main

if __name__ == "__main__":
    main()
