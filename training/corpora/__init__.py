"""Corpus adapters: every public corpus threadguard trains or evaluates on, read
from its official layout into the one common example format of :mod:`training.data`.

>>> ds = load_corpus("semeval2016_stance")            # DatasetDict train/dev/test
>>> test = load_corpus("fnc1", split="test")           # one Dataset
>>> load_corpus("hateval2019", hub_id="cardiffnlp/tweet_eval")  # from the Hub

The data root defaults to ``<project>/../shared/data``; ``$THREADGUARD_DATA`` or
``root=`` override it. Each corpus lives in ``<root>/<folder>``. A malformed row is
logged (file and row) and skipped, never fatal; :func:`read_corpus` returns the
counts. docs/corpora.md documents each corpus's mapping into our labels.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import datasets

from training.corpora import contrast, jigsaw, stance, threats, toxicity
from training.corpora._common import (
    DATA_ENV,
    Collector,
    Rows,
    default_data_root,
    hash_fraction,
    hash_split,
    read_csv,
    resolve_root,
)
from training.corpora.jigsaw import CIVIL_IDENTITIES, ToxicSpan
from training.data import SPLITS, to_dataset

logger = logging.getLogger("training.corpora")

__all__ = [
    "CORPORA",
    "DATA_ENV",
    "CorpusLoad",
    "CorpusSpec",
    "ToxicSpan",
    "civil_comments_identities",
    "corpus_folder",
    "default_data_root",
    "hash_fraction",
    "hash_split",
    "load_corpus",
    "load_toxic_spans_spans",
    "madlibs_identity_terms",
    "read_corpus",
]


@dataclass(frozen=True)
class CorpusSpec:
    """A registered corpus: where it lives, how to read it, what it is for.

    ``loader(folder, collector, **options)`` reads the local folder;
    ``hub_loader(hub_id, collector, **options)`` (optional) reads the same corpus
    from the Hugging Face Hub, ``hub_id`` being its usual Hub name.
    """

    name: str
    task: Literal["stance", "toxicity"]
    folder: str
    loader: Callable[..., None]
    description: str
    eval_only: bool = False
    hub_loader: Callable[..., None] | None = None
    hub_id: str | None = None


def _spec(name: str, task: Literal["stance", "toxicity"], loader: Callable[..., None],
          description: str, *, folder: str | None = None, **kw: Any) -> CorpusSpec:  # fmt: skip
    return CorpusSpec(name, task, folder or name, loader, description, **kw)


#: Every corpus adapter, by name.
CORPORA: dict[str, CorpusSpec] = {
    s.name: s
    for s in (
        _spec("rumoureval2019", "stance", stance.load_rumoureval2019,
              "SemEval-2019 Task 7A: Twitter and Reddit replies vs. their parent post"),
        _spec("fnc1", "stance", stance.load_fnc1,
              "Fake News Challenge stage 1: article body vs. headline"),
        _spec("arc", "stance", stance.load_arc,
              "ARC in FNC-1 format: reader post vs. claim"),
        _spec("semeval2016_stance", "stance", stance.load_semeval2016_stance,
              "SemEval-2016 Task 6A (TweetEval): tweet vs. target phrase",
              hub_loader=stance.hub_semeval2016_stance, hub_id="cardiffnlp/tweet_eval"),
        _spec("olid", "toxicity", toxicity.load_olid,
              "OLID / OffensEval 2019: offensive tweets, targeted insult, target type"),
        _spec("davidson", "toxicity", toxicity.load_davidson,
              "Davidson et al. 2017: hate / offensive / neither tweets, annotator counts",
              hub_loader=toxicity.hub_davidson, hub_id="tdavidson/hate_speech_offensive"),
        _spec("hateval2019", "toxicity", toxicity.load_hateval2019,
              "SemEval-2019 Task 5 (TweetEval): hate against immigrants and women",
              hub_loader=toxicity.hub_hateval2019, hub_id="cardiffnlp/tweet_eval"),
        _spec("youtube_spam", "toxicity", toxicity.load_youtube_spam,
              "UCI YouTube Spam Collection: comments under five music videos"),
        _spec("toxic_spans", "toxicity", jigsaw.load_toxic_spans,
              "ToxicSpans: Civil Comments news comments, per-annotator typed toxic spans"),
        _spec("c3", "toxicity", toxicity.load_c3,
              "C3: Globe and Mail opinion-article comments, crowd toxicity ratings 1-4"),
        _spec("hatexplain", "toxicity", toxicity.load_hatexplain,
              "HateXplain: Gab and Twitter posts, hate / offensive / normal"),
        _spec("context_toxicity", "toxicity", toxicity.load_context_toxicity,
              "Pavlopoulos et al. 2020: Wikipedia talk comments rated with the parent shown"),
        _spec("context_toxicity_gn", "toxicity", toxicity.load_context_toxicity_gn,
              "Pavlopoulos et al. 2020: Wikipedia talk comments rated without the parent",
              folder="context_toxicity"),
        _spec("ethos", "toxicity", toxicity.load_ethos,
              "ETHOS binary: YouTube and Reddit comments, fraction of annotators saying hate"),
        _spec("bias_madlibs", "toxicity", toxicity.load_bias_madlibs,
              "Dixon et al. 2018 identity-term madlibs (evaluation only: unintended bias)",
              eval_only=True),
        _spec("news_threats", "toxicity", threats.load_news_threats,
              "News-site comments labelled threat or benign (weak supervision)"),
        _spec("gab_hate", "toxicity", threats.load_gab_hate,
              "Gab Hate Corpus: hate, calls for violence, vulgarity (majority votes)"),
        _spec("contrast", "toxicity", contrast.load_contrast,
              "threadguard's own contrast sentences (training/corpora/contrast.py, no files)",
              folder="."),
        _spec("jigsaw2018", "toxicity", jigsaw.load_jigsaw2018,
              "Jigsaw Toxic Comment Classification 2018: Wikipedia talk comments, six labels"),
        _spec("civil_comments", "toxicity", jigsaw.load_civil_comments,
              "Civil Comments / Jigsaw Unintended Bias 2019: news comments, rater fractions",
              hub_loader=jigsaw.hub_civil_comments, hub_id="google/civil_comments"),
    )
}  # fmt: skip


@dataclass
class CorpusLoad:
    """The rows of one corpus by split, with what was skipped or noted on the way.

    ``skipped``: malformed rows per file (each was logged with its row);
    ``notes``: deliberate drops and fallbacks, e.g. unscored test rows.
    """

    name: str
    splits: Rows
    skipped: Counter[str] = field(default_factory=Counter)
    notes: Counter[str] = field(default_factory=Counter)

    @property
    def n_skipped(self) -> int:
        """Total number of malformed rows skipped."""
        return sum(self.skipped.values())


def _spec_for(name: str) -> CorpusSpec:
    try:
        return CORPORA[name]
    except KeyError:
        raise ValueError(f"unknown corpus {name!r}; known corpora: {sorted(CORPORA)}") from None


def corpus_folder(name: str, root: str | Path | None = None) -> Path:
    """The folder corpus ``name`` is read from under ``root`` (default data root if None)."""
    return resolve_root(root) / _spec_for(name).folder


def _dedupe_ids(load: CorpusLoad) -> None:
    """Make ids unique within the corpus (a few releases repeat a comment id) by
    suffixing repeats with ``#2``, ``#3``, ...; counted in ``notes``."""
    seen: Counter[str] = Counter()
    for split in SPLITS:
        for row in load.splits.get(split, []):
            seen[row["id"]] += 1
            if seen[row["id"]] > 1:
                row["id"] = f"{row['id']}#{seen[row['id']]}"
                load.notes["duplicate ids suffixed"] += 1


def read_corpus(
    name: str, root: str | Path | None = None, *, hub_id: str | None = None, **options: Any
) -> CorpusLoad:
    """Read corpus ``name`` into rows of the common format, by split.

    ``hub_id``: read it from the Hugging Face Hub instead of ``root`` (only corpora
    with a Hub loader). ``options`` go to the loader (e.g. ``soft=False`` for
    davidson). Raises ValueError for an unknown name, FileNotFoundError when the
    corpus folder (or one of its required files) is missing.
    """
    spec = _spec_for(name)
    out = Collector(name)
    if hub_id is not None:
        if spec.hub_loader is None:
            raise ValueError(f"corpus {name!r} has no Hub loader; read it from a local folder")
        spec.hub_loader(hub_id, out, **options)
    else:
        folder = corpus_folder(name, root)
        if not folder.is_dir():
            raise FileNotFoundError(
                f"corpus {name!r}: folder {folder} does not exist "
                f"(pass root= or set ${DATA_ENV} to the folder holding {spec.folder}/)"
            )
        spec.loader(folder, out, **options)
    load = CorpusLoad(name, {s: out.splits[s] for s in SPLITS if s in out.splits})
    load.skipped, load.notes = out.skipped, out.notes
    _dedupe_ids(load)
    sizes = ", ".join(f"{s} {len(rows)}" for s, rows in load.splits.items())
    logger.info("%s: %s", name, sizes or "no rows")
    if load.n_skipped:
        logger.warning(
            "%s: skipped %d malformed rows: %s", name, load.n_skipped, dict(load.skipped)
        )
    for what, n in load.notes.items():
        logger.info("%s: %s: %d", name, what, n)
    return load


def load_corpus(
    name: str,
    root: str | Path | None = None,
    split: str | None = None,
    *,
    hub_id: str | None = None,
    **options: Any,
) -> datasets.DatasetDict | datasets.Dataset:
    """Load corpus ``name`` in the common format.

    Returns a DatasetDict keyed by the splits the corpus has (``train``/``dev``/
    ``test``; evaluation-only corpora have only ``test``), or one Dataset when
    ``split`` is given. See :func:`read_corpus` for ``root``, ``hub_id``, ``options``.
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"split {split!r} is not one of {SPLITS}")
    load = read_corpus(name, root, hub_id=hub_id, **options)
    if split is not None:
        if split not in load.splits:
            raise ValueError(f"corpus {name!r} has no {split!r} split; it has {list(load.splits)}")
        return to_dataset(load.splits[split])
    return datasets.DatasetDict({s: to_dataset(rows) for s, rows in load.splits.items()})


# --------------------------------------------------------------------------- side tables


def load_toxic_spans_spans(root: str | Path | None = None) -> dict[str, list[ToxicSpan]]:
    """Every annotator's typed span per ToxicSpans comment id (the ``id`` column of
    ``load_corpus("toxic_spans")``). Offsets index the comment text as loaded;
    ``end`` is exclusive. A handful of spans in the release run past the text end."""
    folder = corpus_folder("toxic_spans", root)
    if not folder.is_dir():
        raise FileNotFoundError(f"corpus 'toxic_spans': folder {folder} does not exist")
    _, _, spans = jigsaw.read_toxic_spans(folder, Collector("toxic_spans"))
    return spans


def madlibs_identity_terms(
    root: str | Path | None = None, *, include_occupations: bool = False
) -> dict[str, str]:
    """Row id of ``load_corpus("bias_madlibs")`` → the sentence's identity term, for
    subgroup AUC (the same term is the row's ``group``). Rows of the
    ``you_occupation`` template carry an occupation, not an identity, and are left
    out unless ``include_occupations``."""
    rows = read_corpus("bias_madlibs", root).splits.get("test", [])
    return {
        row["id"]: row["group"]
        for row in rows
        if row["group"] and (include_occupations or not row["id"].startswith("you_occupation-"))
    }


def civil_comments_identities(root: str | Path | None = None) -> dict[str, dict[str, float]]:
    """Comment id → identity-mention fractions for the Civil Comments rows that have
    them (about a quarter), for subgroup metrics; rows without them are left out."""
    folder = corpus_folder("civil_comments", root)
    if not folder.is_dir():
        raise FileNotFoundError(f"corpus 'civil_comments': folder {folder} does not exist")
    out = Collector("civil_comments")
    identities: dict[str, dict[str, float]] = {}
    for path, _ in jigsaw.civil_files(folder):
        for _, rec in read_csv(path, out, required=("id",)):
            values = {k: rec[k].strip() for k in CIVIL_IDENTITIES if (rec.get(k) or "").strip()}
            if values:
                with out.row(path, rec["id"]):
                    identities[rec["id"].strip().removesuffix(".0")] = {
                        k: float(v) for k, v in values.items()
                    }
    return identities
