"""How a predictor runs: :class:`PredictOptions`, chosen when it is built and fixed after.

A predictor that needs other options is derived from a loaded one
(:meth:`classifier.model.predictor.BatchPredictor.with_options`), sharing its model. No
imports beyond the standard library.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["DEFAULT_OPTIONS", "PredictOptions"]


@dataclass(frozen=True)
class PredictOptions:
    """How a predictor runs, chosen when it is built and fixed after: a predictor that
    needs other options is derived with
    :meth:`~classifier.model.predictor.BatchPredictor.with_options`, sharing the
    loaded model, so that no caller changes what another one scores with.

    Args:
        batch_size: most examples per forward pass.
        max_batch_tokens: if given, a batch also stops growing once
            ``examples x longest input`` would exceed it (bounds memory when inputs are
            long).
        chunk_size: inputs are tokenised and length-sorted this many at a time, which
            bounds memory on very long input lists.
        spans: :meth:`BatchPredictor.predict` decodes toxic spans (``threadguard score
            --no-spans`` turns it off: a little faster).
        span_holds: per toxicity label, the score at which it holds a comment (the
            moderation policy's thresholds; :func:`~classifier.model.spans.explaining_spans`):
            a span is reported only for a label that holds. None:
            :data:`~classifier.model.spans.DEFAULT_HOLD` for every label the model predicts
            but spam.
        before_pass: called in the model's thread before every forward pass (the hook's
            scheduler runs a small request's passes between a long one's:
            :class:`~classifier.moderation.batching.MicroBatcher`).
    """

    batch_size: int = 32
    max_batch_tokens: int | None = None
    chunk_size: int = 4096
    spans: bool = True
    span_holds: Mapping[str, float] | None = None
    before_pass: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.chunk_size < 1:
            raise ValueError(
                f"batch_size and chunk_size must be positive, not {self.batch_size} and "
                f"{self.chunk_size}"
            )


#: the options a predictor runs with unless it is given others
DEFAULT_OPTIONS = PredictOptions()
