"""Techne's learning engine: encoders, classifiers, query strategies, rounds, metrics."""
