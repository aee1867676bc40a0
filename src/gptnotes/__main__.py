"""``python -m gptnotes``: the same as the ``gptnotes`` command."""

import sys

from gptnotes.cli import main

sys.exit(main())
