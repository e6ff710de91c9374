"""The `techne` command line (app.py builds it; one module per group of commands)."""

from tui.cli.app import main

__all__ = ["main"]
