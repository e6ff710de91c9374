"""`python -m tui.cli`: the same as the `techne` command."""

import sys

from tui.cli.app import main

sys.exit(main())
