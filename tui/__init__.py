"""Techne's user-facing layer: the command line and (soon) the Textual annotation app."""
