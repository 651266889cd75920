"""Allow ``python -m sqlrunner``."""

from sqlrunner.cli import main

raise SystemExit(main())
