"""`python -m bench [--flags N] [--memory] …`: the flag-ingestion benchmark (see bench/ingest.py)."""

import sys

from bench.ingest import main

sys.exit(main(sys.argv[1:]))
