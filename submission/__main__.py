"""`python -m submission` runs the `submission` console script."""

from submission.cli import main

main()
