"""The package version, in a module of its own so that the model wing can import it
without importing :mod:`classifier` (whose lazy ``__getattr__`` reaches the Python API)."""

__version__ = "0.6.1"
