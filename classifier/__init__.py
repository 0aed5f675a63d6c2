"""threadguard runtime: thread schema, ingestion, model, inference, moderation, CLI."""

__version__ = "0.1.0"
