"""Reusable widgets of the annotation app, one per file."""
