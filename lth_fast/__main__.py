"""`python -m lth_fast ...` is the `lth-fast` command."""
import sys

from .cli import main

sys.exit(main())
