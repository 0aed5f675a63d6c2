"""threadguard training: corpus adapters, fine-tuning and evaluation (needs the `train` extra)."""
