"""Threat supervision (model v0.6): news-site threats, the Gab Hate Corpus.

v0.5 learned ``threat`` only from ToxicSpans' Threat spans (about 100 training comments)
and never saw a calibration split with enough threats, so a plain "I will find where you
live and hurt you" scored 0.15. These adapters add the threat data docs/corpora.md lists:

- ``news_threats``: comments from news sites labelled as threats, and benign ones. Its
  provenance is undocumented and some "threats" only mention violence, so a recipe gives
  it a weight of its own (weak supervision). Seeded 80/10/10 split by text.
- ``gab_hate``: the Gab Hate Corpus, majority votes of trained annotators: ``cv`` (call
  for violence) → threat, ``hd`` (assault on dignity: hate) → identity_attack, any of
  ``hd``/``cv``/``vo`` → toxicity. The authors' train/test split; a seeded tenth of train
  is dev.

Both also give ``severe_toxicity``, the label Perspective's SEVERE_TOXICITY maps to: a call
for violence or a threat is severe; a benign comment is not.
"""

from __future__ import annotations

from pathlib import Path

from training.corpora._common import Collector, hash_split, lookup, read_csv

_BINARY = {"0": 0.0, "1": 1.0}


def load_news_threats(folder: Path, out: Collector) -> None:
    """``threat.csv`` (label 5) → threat 1, severe_toxicity 1; ``safe.csv`` (label 0) →
    every toxicity label 0. Toxicity of a threat row is left unknown: the corpus only
    says whether it threatens. Seeded 80/10/10 by text, so a repeated text stays in one split."""
    for name, expected in (("threat.csv", "5"), ("safe.csv", "0")):
        path = folder / name
        for n, rec in read_csv(path, out, required=("text", "label")):
            with out.row(path, n):
                label = rec["label"].strip()
                if label != expected:
                    raise ValueError(f"label {label!r} in {name}, expected {expected!r}")
                text = rec["text"].strip()
                if expected == "5":
                    labels = {"threat": 1.0, "severe_toxicity": 1.0}
                else:
                    labels = {
                        "toxicity": 0.0,
                        "severe_toxicity": 0.0,
                        "threat": 0.0,
                        "insult": 0.0,
                        "identity_attack": 0.0,
                        "obscene": 0.0,
                    }
                out.add(
                    id=f"{name.removesuffix('.csv')}-{n}",
                    split=hash_split(text, salt=out.corpus),
                    text=text,
                    toxicity=labels,
                )


def gab_labels(hd: float, cv: float, vo: float) -> dict[str, float]:
    """Our labels for one Gab Hate Corpus post from its majority votes."""
    labels = {
        "toxicity": max(hd, cv, vo),
        "threat": cv,
        "identity_attack": hd,
    }
    # a call for violence is severe; a post with no label at all is not; hate or vulgarity
    # alone says nothing about severity
    if cv:
        labels["severe_toxicity"] = 1.0
    elif not (hd or vo):
        labels["severe_toxicity"] = 0.0
    return labels


def load_gab_hate(folder: Path, out: Collector) -> None:
    """``ghc_train.tsv`` → train (a seeded tenth → dev), ``ghc_test.tsv`` → test."""
    for name, official in (("ghc_train.tsv", "train"), ("ghc_test.tsv", "test")):
        path = folder / name
        for n, rec in read_csv(path, out, required=("text", "hd", "cv", "vo"), delimiter="\t"):
            with out.row(path, n):
                hd, cv, vo = (lookup(_BINARY, rec[k].strip(), k) for k in ("hd", "cv", "vo"))
                text = rec["text"].strip()
                split = (
                    hash_split(text, dev=0.1, test=0.0, salt=out.corpus)
                    if official == "train"
                    else "test"
                )
                out.add(
                    id=f"{official}-{n}", split=split, text=text, toxicity=gab_labels(hd, cv, vo)
                )
