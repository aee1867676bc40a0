"""``python -m gptnotes``: the same as the ``gptnotes`` command."""

import sys

from gptnotes.cli import main

if __name__ == "__main__":  # importing the module (doctest collection, tools) runs nothing
    sys.exit(main())
