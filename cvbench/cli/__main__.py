"""`python -m cvbench.cli`."""

import sys

from cvbench.cli import main

main()
sys.exit(0)
