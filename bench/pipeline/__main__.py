"""`python -m bench.pipeline [options]`: the benchmark's command line (see `cli`)."""

import sys

from bench.pipeline.cli import main

sys.exit(main(sys.argv[1:]))
