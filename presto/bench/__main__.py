"""`python -m presto.bench`: run the benchmark harness."""

import sys

from presto.bench.cli import main

sys.exit(main())
