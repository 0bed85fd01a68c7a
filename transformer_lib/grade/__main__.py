"""``python -m transformer_lib.grade``: see :mod:`transformer_lib.grade`."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
