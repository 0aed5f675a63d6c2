"""Toxic-span evaluation: SemEval-2021 Task 5's gold and metric, and two baselines.

The task's metric (:func:`classifier.spans.span_f1`) is an F1 over the character
offsets of each post, averaged over posts; a post with no gold span scores 1 only
when nothing is predicted. Its gold is the official ``tsd_{train,trial,test}.csv``
files (a Python-list string of character offsets per post), which differ from a
simple majority of the raw ToxicSpans annotations for about a third of the test
posts, so figures that claim the task's metric read those files
(:func:`read_tsd`, :func:`official_gold`).

Two baselines put the model's span head in context, both fitted on ``tsd_train`` or
the model alone and tuned on ``tsd_trial`` only:

* :class:`LexiconBaseline`: the words most often inside a gold span in ``tsd_train``
  (by word-level precision), every occurrence of them marked;
* :class:`Attribution`: gradient × input saliency of the comment model's toxicity
  logit per token, whole words above a threshold: what the sentence-level head
  already "points at" without a span head.

:func:`random_words` is the reference every span system should beat.
"""

from __future__ import annotations

import ast
import csv
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from classifier.model.constants import WINDOW_OVERLAP
from classifier.model.spans import Span, decode_spans, span_chars, span_f1
from training.bootstrap import bootstrap_mean, paired_difference, percentile_ci
from training.corpora import corpus_folder

if TYPE_CHECKING:
    from classifier.model.network import ThreadguardModel

logger = logging.getLogger(__name__)

#: The SemEval-2021 Task 5 file of each of our splits (the task's trial set is our dev).
TSD_FILES: dict[str, str] = {
    "train": "tsd_train.csv",
    "dev": "tsd_trial.csv",
    "test": "tsd_test.csv",
}

#: Published reference points on tsd_test (SemEval-2021 Task 5, Pavlopoulos et al. 2021):
#: the organisers' random baseline and the best system (HITSZ-HLT).
PUBLISHED_RANDOM_F1 = 0.17
PUBLISHED_BEST_F1 = 0.7083
PUBLISHED_BEST_SYSTEM = "HITSZ-HLT"

#: A word as the baselines see it: letters and digits, with inner apostrophes and the
#: asterisks of masked profanity ("don't", "f*ck") kept inside.
WORD = re.compile(r"\w+(?:[*'’]+\w+)*")

#: Offsets of one post's characters (sorted or not).
Chars = Sequence[int]


@dataclass(frozen=True)
class GoldPost:
    """One post of a SemEval-2021 Task 5 file: its text and gold character offsets."""

    text: str
    gold: tuple[int, ...]


def tsd_path(split: str, root: str | Path | None = None) -> Path:
    """The SemEval-2021 Task 5 file of ``split`` in the ToxicSpans folder under ``root``."""
    if split not in TSD_FILES:
        raise ValueError(
            f"no SemEval-2021 Task 5 file for split {split!r}; known: {list(TSD_FILES)}"
        )
    return corpus_folder("toxic_spans", root) / TSD_FILES[split]


def read_tsd(path: str | Path) -> list[GoldPost]:
    """The posts of a task file (columns ``spans``, ``text``), texts byte-for-byte as the
    corpus adapter reads them (no newline translation), so offsets index them."""
    posts = []
    with Path(path).open(newline="", encoding="utf-8-sig") as handle:
        for n, record in enumerate(csv.DictReader(handle), start=1):
            offsets = ast.literal_eval(record["spans"])
            if not isinstance(offsets, list) or not all(isinstance(i, int) for i in offsets):
                raise ValueError(f"{path}, row {n}: spans is not a list of offsets")
            posts.append(GoldPost(record["text"], tuple(sorted(set(offsets)))))
    return posts


def official_gold(
    texts: Sequence[str], split: str, root: str | Path | None = None
) -> list[tuple[int, ...] | None] | None:
    """Each text's official gold offsets from ``split``'s task file (None for a text not
    in it: ToxicSpans' comments the task left out); None when the file is missing."""
    path = tsd_path(split, root) if split in TSD_FILES else None
    if path is None or not path.is_file():
        return None
    by_text = {post.text: post.gold for post in read_tsd(path)}
    return [by_text.get(text) for text in texts]


def post_f1(predicted: Sequence[Chars], gold: Sequence[Chars]) -> np.ndarray:
    """SemEval-2021 Task 5's per-post F1 of each prediction against its gold."""
    if len(predicted) != len(gold):
        raise ValueError(f"{len(predicted)} predictions for {len(gold)} posts")
    return np.asarray([span_f1(p, g) for p, g in zip(predicted, gold, strict=True)], dtype=float)


def summarise(
    predicted: Sequence[Chars], gold: Sequence[Chars], n_resamples: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """The task's F1 (mean over posts) with a 95 % bootstrap interval; the same over the
    posts with a gold span; and the share of posts without one that are predicted
    empty (the only way such a post scores). ``samples`` holds the bootstrap means over
    all posts, for paired comparisons (:func:`compare`)."""
    f1 = post_f1(predicted, gold)
    has = np.asarray([len(g) > 0 for g in gold], dtype=bool)
    empty = np.asarray([len(p) == 0 for p in predicted], dtype=bool)
    samples = bootstrap_mean(f1, n_resamples, seed)
    with_gold = bootstrap_mean(f1[has], n_resamples, seed)
    no_gold = bootstrap_mean(empty[~has].astype(float), n_resamples, seed)
    return {
        "n": len(f1),
        "f1": float(f1.mean()) if len(f1) else None,
        "ci": percentile_ci(samples),
        "with_gold": {
            "n": int(has.sum()),
            "f1": float(f1[has].mean()) if has.any() else None,
            "ci": percentile_ci(with_gold),
        },
        "no_gold": {
            "n": int((~has).sum()),
            "empty_share": float(empty[~has].mean()) if (~has).any() else None,
            "ci": percentile_ci(no_gold),
        },
        "predicted_empty_share": float(empty.mean()) if len(empty) else None,
        "samples": samples,
    }


def compare(reference: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """``other``'s F1 minus ``reference``'s (two :func:`summarise` results on the same
    posts and seed), with the paired bootstrap interval and p-value."""
    return paired_difference(
        reference["samples"], other["samples"], float(other["f1"]) - float(reference["f1"])
    )


def runs(chars: Iterable[int]) -> list[tuple[int, int]]:
    """Character offsets as sorted ``(start, end)`` runs of consecutive offsets."""
    out: list[tuple[int, int]] = []
    for i in sorted(set(chars)):
        if out and out[-1][1] == i:
            out[-1] = (out[-1][0], i + 1)
        else:
            out.append((i, i + 1))
    return out


def tune_threshold(
    predict: Callable[[float], Sequence[Chars]], gold: Sequence[Chars], grid: Iterable[float]
) -> tuple[float, float]:
    """The threshold of ``grid`` whose predictions (``predict(threshold)``) have the
    highest mean span F1 on ``gold`` (the first of equals), and that F1."""
    best: tuple[float, float] | None = None
    for threshold in grid:
        value = float(post_f1(predict(float(threshold)), gold).mean())
        if best is None or value > best[1] + 1e-12:
            best = (float(threshold), value)
    if best is None:
        raise ValueError("empty threshold grid")
    return best


#: Longest text an example of the evaluation report shows (spans past it are cut).
EXAMPLE_CHARS = 400


def _clip_runs(found: Iterable[tuple[int, int]], limit: int) -> list[list[int]]:
    return [[s, min(e, limit)] for s, e in found if s < limit]


def span_examples(
    ids: Sequence[str],
    texts: Sequence[str],
    predicted: Sequence[Sequence[Span]],
    gold: Sequence[Chars],
    n: int = 4,
) -> list[dict[str, Any]]:
    """A few posts for a report, in corpus order: the first ``n - 1`` with a gold span
    and the first without one where spans were predicted (a false alarm), each with its
    text (at most :data:`EXAMPLE_CHARS`), predicted spans ``[start, end, label]``, gold
    runs ``[start, end]`` and F1."""
    with_gold = [i for i, g in enumerate(gold) if g][: max(n - 1, 0)]
    alarms = [i for i, g in enumerate(gold) if not g and predicted[i]][:1]
    out = []
    for i in sorted(with_gold + alarms):
        text = texts[i]
        limit = min(len(text), EXAMPLE_CHARS)
        shown = [
            [s["start"], min(s["end"], limit), s["label"]]
            for s in predicted[i]
            if s["start"] < limit
        ]
        out.append(
            {
                "id": ids[i],
                "text": text[:limit] + ("…" if len(text) > limit else ""),
                "predicted": shown,
                "gold": _clip_runs(runs(gold[i]), limit),
                "f1": span_f1(span_chars(predicted[i]), gold[i]),
            }
        )
    return out


def evaluate_spans(
    ids: Sequence[str],
    texts: Sequence[str],
    predicted: Sequence[Sequence[Span]],
    split: str,
    root: str | Path | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    n_examples: int = 4,
) -> dict[str, Any]:
    """``threadguard evaluate``'s span figures for ToxicSpans rows: the task's F1 and
    the rest of :func:`summarise` (without its resamples) over the rows whose text is in
    ``split``'s task file, against its official gold, and :func:`span_examples`; a
    ``skipped`` reason when the file or such rows are missing."""
    gold = official_gold(texts, split, root)
    if gold is None:
        name = TSD_FILES.get(split, f"a task file for {split!r}")
        return {"skipped": f"no {name} in the ToxicSpans folder: no official span gold"}
    keep = [i for i, g in enumerate(gold) if g is not None]
    if not keep:
        return {"skipped": f"no evaluated row is in {TSD_FILES[split]}"}
    chosen_gold = [cast(tuple[int, ...], gold[i]) for i in keep]
    chosen = [predicted[i] for i in keep]
    found = summarise([span_chars(p) for p in chosen], chosen_gold, n_resamples, seed)
    del found["samples"]
    found["gold"] = TSD_FILES[split]
    found["examples"] = span_examples(
        [ids[i] for i in keep], [texts[i] for i in keep], chosen, chosen_gold, n_examples
    )
    return found


# --------------------------------------------------------------------------- lexicon


def words(text: str) -> list[tuple[int, int, str]]:
    """The :data:`WORD` matches of ``text``: ``(start, end, lower-cased word)``."""
    return [(m.start(), m.end(), m.group().lower()) for m in WORD.finditer(text)]


@dataclass
class LexiconBaseline:
    """Words most often inside a gold span, and every occurrence of them marked.

    :meth:`fit` counts, over a task file's posts, how often each word occurs and how
    often it lies inside a gold span (most of its characters are gold): its word-level
    precision. The lexicon is the words seen at least ``min_count`` times whose
    precision reaches :attr:`threshold`, which :meth:`tune` chooses on other posts.
    """

    precision: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    min_count: int = 3
    threshold: float = 0.5

    @classmethod
    def fit(cls, posts: Sequence[GoldPost], min_count: int = 3) -> LexiconBaseline:
        """Word-level precision of every word seen ``min_count`` times in ``posts``."""
        seen: Counter[str] = Counter()
        toxic: Counter[str] = Counter()
        for post in posts:
            gold = set(post.gold)
            for start, end, word in words(post.text):
                seen[word] += 1
                inside = sum(1 for i in range(start, end) if i in gold)
                if 2 * inside > end - start:
                    toxic[word] += 1
        precision = {w: toxic[w] / n for w, n in seen.items() if n >= min_count}
        counts = {w: seen[w] for w in precision}
        return cls(precision, counts, min_count)

    def vocabulary(self, threshold: float | None = None) -> set[str]:
        """The words whose precision reaches ``threshold`` (default :attr:`threshold`)."""
        cut = self.threshold if threshold is None else threshold
        return {w for w, p in self.precision.items() if p >= cut and p > 0}

    def predict(self, texts: Sequence[str], threshold: float | None = None) -> list[list[int]]:
        """Each text's offsets covered by an occurrence of a lexicon word."""
        vocab = self.vocabulary(threshold)
        return [
            [i for start, end, word in words(text) if word in vocab for i in range(start, end)]
            for text in texts
        ]

    def tune(self, posts: Sequence[GoldPost], grid: Iterable[float] | None = None) -> float:
        """Set :attr:`threshold` to the precision cut with the best span F1 on ``posts``
        (default grid 0.05 … 0.95); returns that F1."""
        grid = np.round(np.arange(0.05, 0.96, 0.05), 2) if grid is None else grid
        texts = [p.text for p in posts]
        self.threshold, value = tune_threshold(
            lambda t: self.predict(texts, t), [p.gold for p in posts], grid
        )
        return value

    def top_words(self, n: int = 20) -> list[tuple[str, float, int]]:
        """The lexicon's words by precision, then count: ``(word, precision, count)``."""
        vocab = sorted(self.vocabulary(), key=lambda w: (-self.precision[w], -self.counts[w], w))
        return [(w, self.precision[w], self.counts[w]) for w in vocab[:n]]


def random_words(texts: Sequence[str], rate: float = 0.5, seed: int = 0) -> list[list[int]]:
    """Each :data:`WORD` of each text marked with probability ``rate`` (seeded): a
    reference like the task organisers' random baseline."""
    rng = np.random.default_rng(seed)
    out = []
    for text in texts:
        found = words(text)
        keep = rng.random(len(found)) < rate
        out.append([i for (s, e, _), k in zip(found, keep, strict=True) if k for i in range(s, e)])
    return out


# --------------------------------------------------------------------------- attribution


@dataclass
class TokenScores:
    """One text's tokens (offsets and word ids, as :meth:`InputEncoder.alignment` gives
    them) and a score per token."""

    offsets: list[tuple[int, int]]
    word_ids: list[int | None]
    scores: np.ndarray


class Attribution:
    """Gradient × input saliency of a comment model's toxicity logit, per token.

    Each text is read as the comment model reads it for scoring (alone, in windows of
    :meth:`InputEncoder.windows`); the score of a token is the dot product of the
    gradient of the ``label`` logit with respect to its word embedding and that
    embedding (positive: the token pushes toward toxic), the highest over the windows
    that read it. The token positions of a window are those of its ``comment_mask``
    (after ``[CLS]``), matched to the text's tokens as the runtime matches span
    probabilities, so the offsets are character offsets into the text as given.
    """

    def __init__(self, model: ThreadguardModel, label: str = "toxicity", batch_size: int = 16):
        if model.config.toxicity_input == "comment":
            raise ValueError("attribution reads one pass; this model scores toxicity in a second")
        if label not in model.toxicity_labels:
            raise ValueError(f"the model has no {label!r} toxicity output")
        self.model = model.eval()
        self.model.requires_grad_(False)  # only the embeddings' gradient is wanted
        self.column = list(model.toxicity_labels).index(label)
        self.batch_size = batch_size

    def token_scores(self, texts: Sequence[str]) -> list[TokenScores]:
        """Every text's tokens with their saliency (see the class)."""
        import torch

        encoder = self.model.input_encoder
        windows = encoder.windows(list(texts), WINDOW_OVERLAP)
        step = encoder.window_step(WINDOW_OVERLAP)
        # where each window starts among its text's tokens
        firsts: list[int] = []
        seen: Counter[int] = Counter()
        for owner, _ in windows:
            firsts.append(seen[owner] * step)
            seen[owner] += 1
        out = [
            TokenScores(offsets, word_ids, np.full(len(offsets), -np.inf, dtype=np.float32))
            for offsets, word_ids in encoder.alignment(list(texts))
        ]
        captured: list[torch.Tensor] = []

        def keep(_module: Any, _args: Any, output: torch.Tensor) -> torch.Tensor:
            # the word embeddings as a leaf of their own: the gradient stops there
            leaf = output.detach().requires_grad_(True)
            captured.append(leaf)
            return leaf

        order = sorted(range(len(windows)), key=lambda i: len(windows[i][1]))
        embeddings = cast(Any, self.model.encoder).get_input_embeddings()
        handle = embeddings.register_forward_hook(keep)
        try:
            for start in range(0, len(order), self.batch_size):
                chosen = order[start : start + self.batch_size]
                batch = encoder.collate([windows[i][1] for i in chosen])
                captured.clear()
                with torch.enable_grad():
                    logits = self.model(**batch).toxicity_logits
                    assert logits is not None
                    logits[:, self.column].sum().backward()
                leaf = captured[0]
                assert leaf.grad is not None
                saliency = (leaf.grad * leaf).sum(dim=-1).detach().cpu().numpy()
                mask = batch["comment_mask"].bool().cpu().numpy()
                for row, i in enumerate(chosen):
                    own = saliency[row][mask[row]]
                    target = out[windows[i][0]].scores[firsts[i] : firsts[i] + len(own)]
                    np.maximum(target, own[: len(target)], out=target)
        finally:
            handle.remove()
        return out

    @staticmethod
    def spans(
        scored: Sequence[TokenScores], threshold: float, normalise: bool = False
    ) -> list[list[int]]:
        """Each text's offsets of the whole words whose highest token score reaches
        ``threshold`` (neighbouring words joined, as the runtime decodes the span head);
        with ``normalise``, scores are first divided by the text's highest one."""
        out = []
        for text in scored:
            values = text.scores
            if normalise and len(values):
                top = float(values.max())
                values = values / top if top > 0 else np.zeros_like(values)
            found = decode_spans(
                text.offsets, text.word_ids, values[:, None], ("toxicity",), threshold
            )
            out.append([i for s in found for i in range(s["start"], s["end"])])
        return out

    @staticmethod
    def grid(scored: Sequence[TokenScores], normalise: bool) -> np.ndarray:
        """Thresholds worth trying: quantiles of the (normalised) token scores, from the
        median up, where the few toxic words of a post are."""
        if normalise:
            return np.round(np.arange(0.05, 1.001, 0.05), 2)
        finite = np.concatenate([s.scores[np.isfinite(s.scores)] for s in scored] or [[0.0]])
        levels = np.concatenate([np.linspace(0.5, 0.99, 50), [0.995, 0.998, 0.999]])
        return np.unique(np.quantile(finite, levels))

    def tune(self, scored: Sequence[TokenScores], gold: Sequence[Chars]) -> dict[str, Any]:
        """The threshold (raw scores, or normalised per post) with the best span F1 on
        ``gold``: ``{"threshold", "normalise", "f1", "raw_f1", "normalised_f1"}``."""
        found = {
            normalise: tune_threshold(
                partial(self.spans, scored, normalise=normalise), gold, self.grid(scored, normalise)
            )
            for normalise in (False, True)
        }
        normalise = found[True][1] > found[False][1]
        return {
            "threshold": found[normalise][0],
            "normalise": normalise,
            "f1": found[normalise][1],
            "raw_f1": found[False][1],
            "normalised_f1": found[True][1],
        }


__all__ = [
    "PUBLISHED_BEST_F1",
    "PUBLISHED_BEST_SYSTEM",
    "PUBLISHED_RANDOM_F1",
    "TSD_FILES",
    "Attribution",
    "GoldPost",
    "LexiconBaseline",
    "TokenScores",
    "compare",
    "evaluate_spans",
    "official_gold",
    "post_f1",
    "random_words",
    "read_tsd",
    "runs",
    "span_examples",
    "summarise",
    "tsd_path",
    "tune_threshold",
    "words",
]
