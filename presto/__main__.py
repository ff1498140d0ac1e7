"""`python -m presto`: the same as the `presto` command."""

import sys

from presto.cli import main

sys.exit(main())
