"""The one example format every corpus adapter returns.

A corpus adapter turns a public corpus into a :class:`datasets.Dataset` whose
rows all have the columns below, so that stance and toxicity corpora can be
mixed in one training run:

``id``            stable id of the example inside its corpus
``source``        corpus name (``"rumoureval2019"``, ``"olid"``, ...)
``split``         ``train`` / ``dev`` / ``test``
``group``         what examples are grouped by for group-wise splits (thread id,
                  video id, target phrase); ``""`` when there is none
``target``        the text the stance is taken toward (parent post, headline,
                  target phrase, article title and lead); ``""`` for corpora
                  without stance
``context``       optional extra context for the target (e.g. the source post of
                  a conversation, the article title); ``""`` when there is none
``text``          the comment itself
``stance``        index into :data:`classifier.labels.STANCE_LABELS`, ``-1`` when
                  the corpus does not annotate stance
``stance_classes`` the stance label names this corpus can produce (only
                  RumourEval has ``query``, only FNC-1/ARC have ``unrelated``);
                  empty when it has no stance
one column per :data:`classifier.labels.TOXICITY_LABELS` name
                  a probability in [0, 1] (hard labels are 0.0 / 1.0; soft
                  labels come from annotator fractions), or ``-1.0`` when the
                  corpus does not annotate that label
one column per :data:`classifier.labels.CONSTRUCTIVE_LABELS` name
                  likewise (C3 only)
``spans``         toxic spans as JSON text: ``[[start, end, label, value], ...]``,
                  character ranges of ``text`` where ``value`` (a fraction of the
                  annotators, > 0) of :data:`classifier.labels.SPAN_LABELS` ``label``
                  holds; ``"[]"`` for a comment annotated with no span, ``""`` when
                  the corpus does not annotate spans
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import datasets

from classifier.labels import CONSTRUCTIVE_LABELS, SPAN_LABELS, STANCE_LABELS, TOXICITY_LABELS

UNKNOWN: float = -1.0
SPLITS: tuple[str, ...] = ("train", "dev", "test")

FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "source": datasets.Value("string"),
        "split": datasets.Value("string"),
        "group": datasets.Value("string"),
        "target": datasets.Value("string"),
        "context": datasets.Value("string"),
        "text": datasets.Value("string"),
        "stance": datasets.Value("int8"),
        "stance_classes": datasets.Sequence(datasets.Value("string")),
        **{name: datasets.Value("float32") for name in TOXICITY_LABELS},
        **{name: datasets.Value("float32") for name in CONSTRUCTIVE_LABELS},
        "spans": datasets.Value("string"),
    }
)


def make_example(
    *,
    id: str,
    source: str,
    split: str,
    text: str,
    target: str = "",
    context: str = "",
    group: str = "",
    stance: str | None = None,
    stance_classes: Iterable[str] = (),
    toxicity: Mapping[str, float] | None = None,
    constructive: Mapping[str, float] | None = None,
    spans: Iterable[tuple[int, int, str, float]] | None = None,
) -> dict[str, Any]:
    """Build one row of the common format, checking label names and values.

    ``stance`` is a label name or ``None``; ``toxicity`` and ``constructive`` map label
    names to a probability in [0, 1]; labels they do not name are unknown (``-1.0``).
    ``spans`` are ``(start, end, label, value)`` character ranges of ``text`` (see the
    module docstring); ``None``: the corpus does not annotate spans.
    """
    if split not in SPLITS:
        raise ValueError(f"example {id!r} of {source}: split {split!r} is not one of {SPLITS}")
    classes = list(stance_classes)
    for name in classes:
        if name not in STANCE_LABELS:
            raise ValueError(f"example {id!r} of {source}: unknown stance class {name!r}")
    if stance is not None:
        if stance not in STANCE_LABELS:
            raise ValueError(f"example {id!r} of {source}: unknown stance label {stance!r}")
        if classes and stance not in classes:
            raise ValueError(
                f"example {id!r} of {source}: stance {stance!r} not among its classes {classes}"
            )
    row: dict[str, Any] = {
        "id": id,
        "source": source,
        "split": split,
        "group": group,
        "target": target,
        "context": context,
        "text": text,
        "stance": STANCE_LABELS.index(stance) if stance is not None else -1,
        "stance_classes": classes,
    }
    for kind, names, given in (
        ("toxicity", TOXICITY_LABELS, toxicity),
        ("constructive", CONSTRUCTIVE_LABELS, constructive),
    ):
        values = dict(given or {})
        for name in values:
            if name not in names:
                raise ValueError(f"example {id!r} of {source}: unknown {kind} label {name!r}")
        for name in names:
            value = values.get(name)
            if value is None:
                row[name] = UNKNOWN
            elif not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"example {id!r} of {source}: {name}={value!r} is not in [0, 1]")
            else:
                row[name] = float(value)
    row["spans"] = "" if spans is None else _spans_json(id, source, text, spans)
    return row


def _spans_json(
    id: str, source: str, text: str, spans: Iterable[tuple[int, int, str, float]]
) -> str:
    out = []
    for start, end, label, value in spans:
        if label not in SPAN_LABELS:
            raise ValueError(f"example {id!r} of {source}: unknown span label {label!r}")
        if not 0 <= start < end <= len(text) or not 0.0 < value <= 1.0:
            raise ValueError(
                f"example {id!r} of {source}: bad span {[start, end, label, value]} "
                f"(text of {len(text)} characters)"
            )
        out.append([int(start), int(end), label, round(float(value), 4)])
    return json.dumps(out)


def to_dataset(rows: Iterable[dict[str, Any]]) -> datasets.Dataset:
    """Make a Dataset in the common format from rows built by :func:`make_example`."""
    rows = list(rows)
    if not rows:
        return datasets.Dataset.from_dict({k: [] for k in FEATURES}, features=FEATURES)
    return datasets.Dataset.from_list(rows, features=FEATURES)
