"""``python -m fluoro`` is the ``fluoro`` command."""

import sys

from fluoro.cli.main import main

sys.exit(main())
