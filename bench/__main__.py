"""`python -m bench [--flags N] [--mode all|isolated|stack] [--profile] [--memory] …` (see bench/main.py)."""

import sys

from bench.main import main

sys.exit(main(sys.argv[1:]))
