"""python -m ddim_book: the same command line as `ddim-book`."""

import sys

from ddim_book.cli import main

sys.exit(main())
