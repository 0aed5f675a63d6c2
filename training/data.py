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
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import datasets

from classifier.labels import STANCE_LABELS, TOXICITY_LABELS

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
) -> dict[str, Any]:
    """Build one row of the common format, checking label names and values.

    ``stance`` is a label name or ``None``; ``toxicity`` maps label names to a
    probability in [0, 1]; labels it does not name are unknown (``-1.0``).
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
    tox = dict(toxicity or {})
    for name in tox:
        if name not in TOXICITY_LABELS:
            raise ValueError(f"example {id!r} of {source}: unknown toxicity label {name!r}")
    for name in TOXICITY_LABELS:
        value = tox.get(name)
        if value is None:
            row[name] = UNKNOWN
        elif not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"example {id!r} of {source}: {name}={value!r} is not in [0, 1]")
        else:
            row[name] = float(value)
    return row


def to_dataset(rows: Iterable[dict[str, Any]]) -> datasets.Dataset:
    """Make a Dataset in the common format from rows built by :func:`make_example`."""
    rows = list(rows)
    if not rows:
        return datasets.Dataset.from_dict({k: [] for k in FEATURES}, features=FEATURES)
    return datasets.Dataset.from_list(rows, features=FEATURES)
