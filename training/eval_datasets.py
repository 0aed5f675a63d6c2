"""The datasets an evaluation scores: ``NAME[:split]`` arguments, each corpus read once,
seeded subsets, the fingerprint a report records of the rows it scored, and the identity
subgroups of the corpora that annotate them.

Part of ``threadguard evaluate``, whose driver is :func:`training.evaluate.run_evaluation`;
:class:`EvaluationError` is what a bad model or dataset argument raises there (the CLI
names the option it came from).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import datasets
import numpy as np

from classifier.labels import TOXICITY_LABELS
from training.corpora import (
    CORPORA,
    civil_comments_identities,
    corpus_folder,
    madlibs_identity_terms,
    read_corpus,
)
from training.corpora._common import resolve_root
from training.data import SPLITS, to_dataset
from training.metrics import IDENTITY_THRESHOLD


class EvaluationError(ValueError):
    """A bad model or dataset argument; ``param`` names the option (for the CLI)."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


# --------------------------------------------------------------------------- datasets


def parse_dataset(text: str) -> tuple[str, str]:
    """``NAME[:split]`` → (name, split); the split defaults to ``test``."""
    name, _, split = text.partition(":")
    split = split or "test"
    if name not in CORPORA:
        raise EvaluationError(
            f"unknown dataset {name!r}; known: {', '.join(sorted(CORPORA))}", "--dataset"
        )
    if split not in SPLITS:
        raise EvaluationError(f"{text}: split {split!r} is not one of {SPLITS}", "--dataset")
    return name, split


class CorpusCache:
    """Reads each corpus once; keeps its splits as Datasets and its load notes."""

    def __init__(self, root: str | Path | None) -> None:
        self.root = resolve_root(root)
        self.splits: dict[str, dict[str, datasets.Dataset]] = {}
        self.info: dict[str, dict[str, Any]] = {}

    def __call__(self, name: str) -> dict[str, datasets.Dataset]:
        if name not in self.splits:
            try:
                load = read_corpus(name, self.root)
            except FileNotFoundError as exc:
                raise EvaluationError(str(exc), "--dataset") from None
            self.splits[name] = {s: to_dataset(rows) for s, rows in load.splits.items()}
            self.info[name] = {
                "folder": str(corpus_folder(name, self.root)),
                "skipped_rows": load.n_skipped,
                "notes": dict(load.notes),
            }
        return self.splits[name]

    def split(self, name: str, split: str) -> datasets.Dataset:
        """One split, or an EvaluationError naming the splits the corpus has."""
        splits = self(name)
        if split not in splits:
            raise EvaluationError(
                f"dataset {name!r} has no {split!r} split; it has {list(splits)}", "--dataset"
            )
        return splits[split]


def subsample(data: datasets.Dataset, max_examples: int | None, seed: int) -> datasets.Dataset:
    """A seeded random subset of at most ``max_examples`` rows, in corpus order."""
    if max_examples is None or len(data) <= max_examples:
        return data
    keep = np.sort(np.random.default_rng(seed).permutation(len(data))[:max_examples])
    return data.select(keep)


def data_fingerprint(data: datasets.Dataset) -> str:
    """sha256 of the evaluated rows (ids, texts, targets, labels)."""
    digest = hashlib.sha256()
    columns = ["id", "target", "context", "text", "stance", *TOXICITY_LABELS]
    for batch in data.select_columns(columns).iter(batch_size=4096):
        digest.update(json.dumps(batch, sort_keys=True, default=float).encode())
    return digest.hexdigest()


def identity_subgroups(
    corpus: str, data: datasets.Dataset, root: str | Path | None
) -> dict[str, np.ndarray] | None:
    """Subgroup masks for the corpora with identity annotations, else None."""
    ids = data["id"]
    if corpus == "bias_madlibs":
        terms = madlibs_identity_terms(root)
        names = [terms.get(i, "") for i in ids]
        return {t: np.asarray([n == t for n in names]) for t in sorted(set(names) - {""})}
    if corpus == "civil_comments":
        found = civil_comments_identities(root)
        rows = [found.get(i, {}) for i in ids]
        kinds = sorted({k for r in rows for k in r})
        return {k: np.asarray([r.get(k, 0.0) >= IDENTITY_THRESHOLD for r in rows]) for k in kinds}
    return None
