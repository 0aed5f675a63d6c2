"""Stance heads and reply offsets: what a saved model's stance heads say, and the prior
shift applied at run time to replies.

A model may have several stance heads (one per label scheme); the first scores comments.
A model whose dev data showed replies to comments with another label mix carries
per-class log-offsets for replies (:func:`reply_offsets_of`), applied by
:meth:`classifier.model.predictor.BatchPredictor.score_arrays` to the items
:func:`is_reply` picks out. numpy only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from classifier.model.constants import DEFAULT_STANCE_HEAD


class HeadSpec(NamedTuple):
    """What a stance head was trained on and can say."""

    corpora: tuple[str, ...]
    classes: tuple[str, ...]


def stance_heads_of(model_config: Mapping[str, Any]) -> dict[str, HeadSpec]:
    """Stance head name → :class:`HeadSpec`, in logit order, from a saved ``model_config``."""
    heads = model_config.get("stance_heads") or [{"name": DEFAULT_STANCE_HEAD}]
    every = tuple(model_config["stance_labels"])
    return {
        str(h["name"]): HeadSpec(tuple(h.get("corpora") or ()), tuple(h.get("classes") or every))
        for h in heads
    }


#: ``inputs`` of a stance-offset record applied at run time to replies only (see
#: :func:`reply_offsets_of`); records without it were folded into the head's bias.
REPLY_INPUTS = "replies"


def is_reply(item: Mapping[str, Any] | Any) -> bool:
    """Whether a model input is a reply to another comment.

    An item that says so (``reply``, as :func:`classifier.targets.comment_item`
    sets it) is taken at its word: a reply under an article with no title has no
    context. Otherwise an item is a reply when it has a ``context``: comment_item
    gives a reply the article title as context (its target is the parent comment)
    and a top-level comment none, and RumourEval's adapter gives a deeper reply
    the thread's source post.
    """
    flag = item_value(item, "reply")
    if flag is not None:
        return bool(flag)
    return bool(item_field(item, "context"))


def reply_mask(items: Iterable[Mapping[str, Any] | Any]) -> np.ndarray:
    """:func:`is_reply` of each item, as a boolean array."""
    return np.array([is_reply(item) for item in items], dtype=bool)


def reply_offsets_of(
    records: Sequence[Mapping[str, Any]] | None,
    stance_labels: Sequence[str],
    stance_heads: Mapping[str, HeadSpec],
) -> np.ndarray | None:
    """The comment head's per-class log-offsets for replies [S], from a saved model's
    ``stance_offsets`` records (``None`` when it has none).

    Fitted on dev by :func:`training.offsets.fit_head_offsets` with
    ``inputs="replies"``: a prior shift for replies to comments, whose label mix
    differs from top-level comments' (in RumourEval's dev and test splits deeper
    replies are almost all ``comment``). It cannot be folded into the head's bias
    because it depends on the input, so :meth:`BatchPredictor.score_arrays`
    applies it.
    """
    comment_head = next(iter(stance_heads))
    found = [
        r for r in records or () if r.get("inputs") == REPLY_INPUTS and r["head"] == comment_head
    ]
    if not found:
        return None
    offsets = np.zeros(len(stance_labels), dtype=np.float32)
    for label, value in found[-1]["offsets"].items():
        offsets[list(stance_labels).index(label)] = float(value)
    return offsets


def shift_classes(probs: np.ndarray, offsets: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """``probs`` [N, S] with the columns ``classes`` re-weighted by ``exp(offsets)``
    among themselves, their total mass unchanged (a prior shift of one head's softmax
    inside a distribution that also holds other classes)."""
    out = probs.copy()
    cols = list(classes)
    part = probs[:, cols].astype(np.float64)
    mass = part.sum(axis=1, keepdims=True)
    shifted = part * np.exp(offsets[cols].astype(np.float64))
    total = shifted.sum(axis=1, keepdims=True)
    out[:, cols] = np.divide(shifted * mass, total, out=np.zeros_like(shifted), where=total > 0)
    return out


def item_value(item: Any, name: str) -> Any:
    """An item's ``name``, from a mapping or an object's attribute; None when it has none."""
    return item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)


def item_field(item: Any, name: str) -> str:
    """An item's ``name`` as text (:func:`item_value`); ``""`` when it has none."""
    value = item_value(item, name)
    return "" if value is None else str(value)
