"""Jigsaw-family corpora: ToxicSpans (Civil Comments posts with typed spans),
Jigsaw 2018 Toxic Comment Classification, Civil Comments (Jigsaw 2019).
"""

from __future__ import annotations

from collections import defaultdict
from itertools import pairwise
from pathlib import Path
from typing import Any, NamedTuple

import datasets
import numpy as np

from training.corpora._common import (
    HUB_SPLITS,
    Collector,
    hash_split,
    lookup,
    parse_float,
    read_csv,
)

# --------------------------------------------------------------------------- ToxicSpans

#: ToxicSpans span type → our label (None: counts toward toxicity only).
SPAN_TYPES: dict[str, str | None] = {
    "Insult": "insult",
    "Profane/Obscene": "obscene",
    "Identity based Attack": "identity_attack",
    "Threat": "threat",
    "Other Toxicity": None,
}


class ToxicSpan(NamedTuple):
    """One annotator's span: characters ``[start, end)`` of the comment, its type
    (a :data:`SPAN_TYPES` key, ``""`` when untyped) and the annotation (one
    annotator's judgement) it comes from."""

    start: int
    end: int
    type: str
    annotation: str


def span_type(raw: str) -> str:
    """The canonical span type for a raw ``type`` value; the release has a few values
    truncated ("Insu", "Identity based "), matched here by unique prefix, and a few
    blank ones, kept as ``""`` (an untyped toxic span)."""
    name = raw.strip()
    if name in SPAN_TYPES or not name:
        return name
    matches = [t for t in SPAN_TYPES if len(name) >= 4 and t.lower().startswith(name.lower())]
    if len(matches) != 1:
        raise ValueError(f"unknown span type {raw!r}; expected one of {list(SPAN_TYPES)}")
    return matches[0]


def read_toxic_spans(
    folder: Path, out: Collector
) -> tuple[dict[str, str], dict[str, list[bool]], dict[str, list[ToxicSpan]]]:
    """Comments (id → text), per-comment toxic judgements, and per-comment spans.

    An annotator judged a comment toxic unless they ticked "not toxic".
    """
    comments_path, ann_path, spans_path = (
        folder / "comments.csv",
        folder / "annotations.csv",
        folder / "spans.csv",
    )
    comments: dict[str, str] = {}
    for _, rec in read_csv(comments_path, out, required=("comment_id", "comment_text")):
        comments[rec["comment_id"].strip()] = rec["comment_text"]
    judgements: dict[str, list[bool]] = defaultdict(list)
    annotation_comment: dict[str, str] = {}
    bools = {"true": True, "false": False}
    for n, rec in read_csv(ann_path, out, required=("annotation", "comment_id", "not toxic")):
        with out.row(ann_path, n):
            comment_id = rec["comment_id"].strip()
            if comment_id not in comments:
                raise ValueError(f"comment {comment_id!r} not in {comments_path.name}")
            not_toxic = lookup(bools, rec["not toxic"].strip().lower(), "'not toxic' value")
            judgements[comment_id].append(not not_toxic)
            annotation_comment[rec["annotation"].strip()] = comment_id
    spans: dict[str, list[ToxicSpan]] = defaultdict(list)
    for n, rec in read_csv(spans_path, out, required=("annotation", "type", "start", "end")):
        with out.row(spans_path, n):
            annotation = rec["annotation"].strip()
            comment_id = lookup(annotation_comment, annotation, "annotation")
            start, end = int(rec["start"]), int(rec["end"])
            if not 0 <= start < end:
                raise ValueError(f"bad span [{start}, {end})")
            spans[comment_id].append(ToxicSpan(start, end, span_type(rec["type"]), annotation))
    return comments, dict(judgements), dict(spans)


def _tsd_splits(folder: Path, out: Collector) -> dict[str, str]:
    """Comment text → split from the SemEval-2021 task files (trial → dev); a text in
    several files goes to the later one of train < dev < test, so test stays clean."""
    by_text: dict[str, str] = {}
    for split, name in (
        ("train", "tsd_train.csv"),
        ("dev", "tsd_trial.csv"),
        ("test", "tsd_test.csv"),
    ):
        path = folder / name
        if path.is_file():
            for _, rec in read_csv(path, out, required=("text",)):
                by_text[rec["text"]] = split
    return by_text


def span_runs(
    text_length: int, spans: list[ToxicSpan], annotators: int
) -> list[tuple[int, int, str, float]]:
    """Per-character annotator shares as ``(start, end, label, share)`` runs: for
    ``toxicity`` the share of the comment's ``annotators`` who put the character in any
    span, for each typed label the share who put it in a span of that type. Spans are
    cut at the text's end (a few in the release run past it)."""
    labels = ["toxicity", *sorted({t for t in SPAN_TYPES.values() if t})]
    counts = np.zeros((text_length, len(labels)), dtype=np.int32)
    by_annotation: dict[str, list[ToxicSpan]] = defaultdict(list)
    for span in spans:
        by_annotation[span.annotation].append(span)
    for marked in by_annotation.values():
        seen = np.zeros((text_length, len(labels)), dtype=bool)  # one vote per annotator
        for span in marked:
            end = min(span.end, text_length)
            if span.start >= end:
                continue
            seen[span.start : end, 0] = True
            label = SPAN_TYPES.get(span.type)
            if label:
                seen[span.start : end, labels.index(label)] = True
        counts += seen
    runs = []
    for k, label in enumerate(labels):
        column = counts[:, k]
        edges = np.flatnonzero(np.diff(np.concatenate([[0], column, [0]])))
        for start, end in pairwise(edges.tolist()):
            if column[start] > 0:
                runs.append((int(start), int(end), label, min(1.0, column[start] / annotators)))
    return runs


def load_toxic_spans(folder: Path, out: Collector) -> None:
    """Comment-level soft labels from the raw ToxicSpans judgements.

    toxicity = fraction of a comment's annotators who judged it toxic; insult,
    obscene, threat, identity_attack = fraction of its annotators who marked at
    least one span of that type; severe_toxicity = toxicity squared times the largest of
    the identity_attack, threat and obscene shares. Splits: comments whose text is in
    tsd_{train,trial,test}.csv follow those files (trial → dev); the others (mostly
    comments judged not toxic, which the task files leave out) are split 80/10/10
    by a seeded hash of the text, so duplicate texts stay together. The text is
    kept byte-for-byte (no unescaping), so span offsets stay valid. ``spans`` holds
    the annotators' shares per character (:func:`span_runs`); each annotator's own
    spans come from :func:`training.corpora.load_toxic_spans_spans`.
    """
    comments, judgements, spans = read_toxic_spans(folder, out)
    tsd = _tsd_splits(folder, out)
    for comment_id, text in comments.items():
        with out.row(folder / "comments.csv", comment_id):
            votes = judgements.get(comment_id)
            if not votes:
                raise ValueError("comment has no annotations")
            labels = {"toxicity": sum(votes) / len(votes)}
            for label in ("insult", "obscene", "threat", "identity_attack"):
                marked = {
                    s.annotation
                    for s in spans.get(comment_id, [])
                    if SPAN_TYPES.get(s.type) == label
                }
                labels[label] = len(marked) / len(votes)
            # the most toxic comments: every annotator judged it toxic, and its share of
            # identity-attack, threat or obscene spans (the kinds Perspective counts as
            # severe) says how surely
            labels["severe_toxicity"] = labels["toxicity"] ** 2 * max(
                labels["identity_attack"], labels["threat"], labels["obscene"]
            )
            split = tsd.get(text) or hash_split(text, salt=out.corpus)
            runs = span_runs(len(text), spans.get(comment_id, []), len(votes))
            out.add(id=comment_id, split=split, text=text, toxicity=labels, spans=runs)


# --------------------------------------------------------------------------- Jigsaw 2018

#: Jigsaw 2018 column → our label.
JIGSAW2018_COLUMNS = {
    "toxic": "toxicity",
    "severe_toxic": "severe_toxicity",
    "obscene": "obscene",
    "threat": "threat",
    "insult": "insult",
    "identity_hate": "identity_attack",
}


def load_jigsaw2018(folder: Path, out: Collector) -> None:
    """Jigsaw Toxic Comment Classification (2018), Kaggle layout: train.csv → train
    less a seeded 10 % dev holdout (by id); test.csv + test_labels.csv → test, minus
    the rows Kaggle never scored (labels -1), which are dropped and counted in notes."""
    train = folder / "train.csv"
    required = ("id", "comment_text", *JIGSAW2018_COLUMNS)
    for n, rec in read_csv(train, out, required=required):
        with out.row(train, n):
            labels = {ours: parse_float(rec[col], col) for col, ours in JIGSAW2018_COLUMNS.items()}
            out.add(
                id=rec["id"].strip(),
                split=hash_split(rec["id"].strip(), dev=0.1, test=0.0, salt=out.corpus),
                text=rec["comment_text"].strip(),
                toxicity=labels,
            )
    test, test_labels = folder / "test.csv", folder / "test_labels.csv"
    if not test.is_file():
        return
    scores: dict[str, dict[str, str]] = {
        rec["id"].strip(): rec
        for _, rec in read_csv(test_labels, out, required=("id", *JIGSAW2018_COLUMNS))
    }
    for n, rec in read_csv(test, out, required=("id", "comment_text")):
        with out.row(test, n):
            row = lookup(scores, rec["id"].strip(), "test id (not in test_labels.csv)")
            values = {ours: parse_float(row[col], col) for col, ours in JIGSAW2018_COLUMNS.items()}
            if any(v < 0 for v in values.values()):
                out.note("unscored test rows (-1) dropped")
                continue
            out.add(
                id=rec["id"].strip(),
                split="test",
                text=rec["comment_text"].strip(),
                toxicity=values,
            )


# --------------------------------------------------------------------------- Civil Comments

#: Civil Comments subtype columns that are ours by the same name (``sexual_explicit``
#: has no counterpart and is not folded into ``obscene``).
CIVIL_LABELS = ("severe_toxicity", "obscene", "threat", "insult", "identity_attack")

#: Identity-mention columns (fractions of raters), present for about a quarter of rows.
CIVIL_IDENTITIES = (
    "male", "female", "transgender", "other_gender", "heterosexual",
    "homosexual_gay_or_lesbian", "bisexual", "other_sexual_orientation", "christian",
    "jewish", "muslim", "hindu", "buddhist", "atheist", "other_religion", "black", "white",
    "asian", "latino", "other_race_or_ethnicity", "physical_disability",
    "intellectual_or_learning_disability", "psychiatric_or_mental_illness", "other_disability",
)  # fmt: skip

#: Values of the ``split`` column of all_data.csv → ours (as TFDS and the Hub map them).
_CIVIL_SPLITS = {"train": "train", "test_public": "dev", "test_private": "test"}


def civil_files(folder: Path) -> list[tuple[Path, str | None]]:
    """The Civil Comments files present, each with its split (None: a ``split`` column).

    Either ``all_data.csv`` (or TFDS's ``civil_comments.csv``) with a ``split`` column,
    or the Kaggle files ``train.csv`` + ``test_public_expanded.csv`` (dev) +
    ``test_private_expanded.csv`` (test).
    """
    for name in ("all_data.csv", "civil_comments.csv"):
        if (folder / name).is_file():
            return [(folder / name, None)]
    files: list[tuple[Path, str | None]] = [(folder / "train.csv", "train")]
    for name, split in (("test_public_expanded.csv", "dev"), ("test_private_expanded.csv", "test")):
        if (folder / name).is_file():
            files.append((folder / name, split))
    return files


def civil_labels(rec: dict[str, Any]) -> dict[str, float]:
    """Soft labels (fractions of raters) from one Civil Comments record; ``toxicity``
    comes from ``toxicity`` or Kaggle's ``target``; a blank subtype stays unknown."""
    tox = rec.get("toxicity", rec.get("target"))
    labels = {"toxicity": parse_float(tox, "toxicity")}
    for name in CIVIL_LABELS:
        value = rec.get(name)
        if value is not None and str(value).strip():
            labels[name] = parse_float(value, name)
    return labels


def load_civil_comments(folder: Path, out: Collector) -> None:
    """Civil Comments (Jigsaw Unintended Bias 2019): soft labels; ``target`` = the
    parent comment's text when the file has ``parent_text`` or a ``parent_id`` found
    in the loaded files (the raters did not see it: it is thread context, not part
    of the label); ``group`` = article_id when present."""
    parents: list[tuple[dict[str, Any], str]] = []
    texts: dict[str, str] = {}
    for path, fixed_split in civil_files(folder):
        for n, rec in read_csv(path, out, required=("id", "comment_text")):
            with out.row(path, n):
                split = fixed_split or lookup(_CIVIL_SPLITS, rec["split"].strip(), "split")
                comment_id = rec["id"].strip().removesuffix(".0")
                texts[comment_id] = rec["comment_text"]
                parent_id = (rec.get("parent_id") or "").strip().removesuffix(".0")
                out.add(
                    id=comment_id,
                    split=split,
                    group=(rec.get("article_id") or "").strip().removesuffix(".0"),
                    target=(rec.get("parent_text") or "").strip(),
                    text=rec["comment_text"].strip(),
                    toxicity=civil_labels(rec),
                )
                if parent_id and not rec.get("parent_text"):
                    parents.append((out.splits[split][-1], parent_id))
    for row, parent_id in parents:
        if parent_id in texts:
            row["target"] = texts[parent_id].strip()


def hub_civil_comments(hub_id: str, out: Collector) -> None:
    """The same from the Hub (``google/civil_comments``: text + the seven fractions)."""
    for part, dataset in datasets.load_dataset(hub_id).items():
        split = HUB_SPLITS[part]
        for n, rec in enumerate(dataset):
            with out.row(f"{hub_id}/{part}", n):
                out.add(
                    id=f"{split}-{n}",
                    split=split,
                    text=rec["text"].strip(),
                    toxicity=civil_labels(rec),
                )
