"""``python -m sqlrunner.generate``: the same as ``sqlrunner generate``."""

import sys

from sqlrunner.generate.cli import main

sys.exit(main())
