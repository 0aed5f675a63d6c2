"""The ``threadguard`` command line: thin Typer commands, one module each, over the library.

Each command module registers itself on :data:`app`; importing this package
imports them all. Commands import their library code lazily so that
``threadguard --help`` stays fast and the runtime never needs the training extras.
"""

from classifier.cli import evaluate, parse, score, serve, train  # noqa: F401  (registers the commands)
from classifier.cli._app import app

__all__ = ["app"]

if __name__ == "__main__":
    app()
