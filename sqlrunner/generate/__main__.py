"""``python -m sqlrunner.generate``: the same as ``sqlrunner generate`` (an entry point, as
``sqlrunner/__main__.py`` is; the library never imports the command line)."""

import sys

from sqlrunner.cli import main

sys.exit(main(["generate", *sys.argv[1:]]))
