"""`python -m herald`: the command line."""

import sys

from herald.cli import main

sys.exit(main())
