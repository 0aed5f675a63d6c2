"""Runnable examples of threadguard in use (``python -m examples.blog``)."""
