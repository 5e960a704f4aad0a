"""``python -m fluoro`` is the ``fluoro`` command."""

import sys

from fluoro.cli import main

sys.exit(main())
