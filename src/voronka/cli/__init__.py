"""The ``voronka`` command: a thin layer over the library."""

from voronka.cli.app import app, main

__all__ = ["app", "main"]
