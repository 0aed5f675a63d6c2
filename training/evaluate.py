"""Model evaluation runs: score corpora with models and baselines, measure, report.

>>> report = run_evaluation(["runs/model", "baseline:tfidf"], ["olid", "fnc1:test"], "runs/eval")

Each dataset's split is scored by each model (transformer models through
:meth:`classifier.inference.Predictor.predict_arrays`, the path ``threadguard
score`` uses; baselines from :mod:`training.baselines`), measured with the
metrics each task's literature uses (scikit-learn does the arithmetic), bootstrapped
on its primary metric, and written by :mod:`training.report` as ``report.json``,
``report.md`` and PNG plots. docs/evaluation.md explains every figure.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import platform
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import datasets
import numpy as np

from classifier.labels import CONSTRUCTIVE_LABELS, STANCE_LABELS, TOXICITY_LABELS
from training.baselines import Scorer, Scores, resolve_model
from training.bootstrap import (
    PrimaryData,
    bootstrap_samples,
    constructive_metrics,
    paired_difference,
    percentile_ci,
)
from training.corpora import (
    CORPORA,
    civil_comments_identities,
    corpus_folder,
    madlibs_identity_terms,
    read_corpus,
)
from training.corpora._common import resolve_root
from training.data import SPLITS, to_dataset
from training.metrics import (
    IDENTITY_THRESHOLD,
    CalibrationTarget,
    bias_metrics,
    primary_for,
    stance_metrics,
    toxicity_metrics,
)
from training.span_eval import evaluate_spans
from training.thresholds import best_f1_threshold, choose_threshold

logger = logging.getLogger(__name__)


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


# --------------------------------------------------------------------------- one result


@dataclass
class Settings:
    """Options of an evaluation run (see :func:`run_evaluation`)."""

    data_root: str | Path | None = None
    max_examples: int | None = None
    bootstrap: int = 1000
    seed: int = 0
    threshold: float = 0.5
    label_thresholds: dict[str, float] = field(default_factory=dict)
    calibrate: CalibrationTarget | None = None
    tune_thresholds: bool = False
    actions: dict[str, str] = field(default_factory=dict)
    default_action: str = "review"
    batch_size: int = 32
    device: str = "cpu"
    plots: bool = True
    n_errors: int = 20
    command: list[str] | None = None

    def threshold_for(self, label: str) -> float:
        """The decision threshold of ``label``."""
        return self.label_thresholds.get(label, self.threshold)


def _clip(text: str, n: int = 300) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


@dataclass
class Measured:
    """Metrics of one (model, dataset), plus what plots and bootstrap need."""

    result: dict[str, Any]
    primary: PrimaryData | None = None
    stance_cm: tuple[list[str], np.ndarray] | None = None
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def measure(
    corpus: str,
    data: datasets.Dataset,
    scores: Scores,
    settings: Settings,
    subgroups: Mapping[str, np.ndarray] | None = None,
) -> Measured:
    """Every metric of one model on one split (``result`` is JSON-ready)."""
    primary = primary_for(corpus)
    result: dict[str, Any] = {}
    out = Measured(result)
    texts, targets, ids = data["text"], data["target"], data["id"]
    # stance, over the corpus's classes the model has
    stance = np.asarray(data["stance"])
    has = np.flatnonzero(stance >= 0)
    if len(has):
        found_classes = {c for row in data["stance_classes"] for c in row}
        classes = sorted(found_classes or set(scores.stance_labels), key=STANCE_LABELS.index)
        cols = [scores.stance_labels.index(c) for c in classes if c in scores.stance_labels]
        if scores.stance is None or not cols:
            result["stance"] = {"skipped": "the model has no stance output"}
        else:
            probs = scores.stance[has][:, cols]
            probs = probs / np.clip(probs.sum(axis=1, keepdims=True), 1e-12, None)
            names = [scores.stance_labels[c] for c in cols]
            pred_i = np.argmax(probs, axis=1)
            pred = [names[i] for i in pred_i]
            gold = [STANCE_LABELS[s] for s in stance[has]]
            found = stance_metrics(gold, pred, classes, corpus)
            found["missing_classes"] = [c for c in classes if c not in names]
            wrong = np.flatnonzero(np.asarray(gold) != np.asarray(pred))
            conf = probs[np.arange(len(has)), pred_i]
            order = wrong[np.argsort(-conf[wrong], kind="stable")][: settings.n_errors]
            found["confident_errors"] = [
                {"id": ids[has[i]], "text": _clip(texts[has[i]]), "target": _clip(targets[has[i]]),
                 "gold": gold[i], "predicted": pred[i], "confidence": float(conf[i])}
                for i in order
            ]  # fmt: skip
            result["stance"] = found
            out.stance_cm = (classes, np.asarray(found["confusion_matrix"]))
            if primary.label is None:
                index = {c: k for k, c in enumerate(classes)}
                labels = (
                    (index["support"], index["deny"]) if primary.kind == "f1_avg" else
                    tuple(range(len(classes)))
                )  # fmt: skip
                out.primary = PrimaryData(
                    primary.kind,
                    np.asarray([index[g] for g in gold]),
                    pred=np.asarray([index[p] for p in pred]),
                    labels=labels,
                    n_classes=len(classes),
                )
    # toxicity, per label the corpus annotates
    tox: dict[str, Any] = {}
    for label in TOXICITY_LABELS:
        values = np.asarray(data[label], dtype=np.float32)
        known = np.flatnonzero(values >= 0)
        if not len(known):
            continue
        if label not in scores.toxicity_labels or scores.toxicity is None:
            tox[label] = {"skipped": "the model does not predict this label"}
            continue
        y = (values[known] >= 0.5).astype(int)
        prob = scores.toxicity[known, scores.toxicity_labels.index(label)].astype(float)
        threshold = settings.threshold_for(label)
        found = toxicity_metrics(y, prob, threshold)
        if label == (primary.label or "toxicity"):
            if subgroups is not None:
                found["bias"] = bias_metrics(y, prob, {k: m[known] for k, m in subgroups.items()})
            pred = prob >= threshold
            wrong = np.flatnonzero(pred != y.astype(bool))
            conf = np.where(pred, prob, 1 - prob)
            order = wrong[np.argsort(-conf[wrong], kind="stable")][: settings.n_errors]
            found["confident_errors"] = [
                {"id": ids[known[i]], "text": _clip(texts[known[i]]), "gold": float(values[known[i]]),
                 "score": float(prob[i]), "predicted": bool(pred[i])}
                for i in order
            ]  # fmt: skip
        tox[label] = found
        out.curves[label] = (y, prob)
        if label == primary.label:
            if primary.kind == "roc_auc":
                out.primary = PrimaryData("roc_auc", y, prob=prob) if 0 < y.sum() < len(y) else None
            else:
                pred_int = (prob >= threshold).astype(int)
                out.primary = PrimaryData(
                    primary.kind, y, pred=pred_int, labels=(0, 1), n_classes=2
                )
    if tox:
        result["toxicity"] = tox
    value = out.primary.value() if out.primary is not None else None
    result["primary"] = {"metric": primary.title, "value": value, "ci": None}
    return out


def measure_heads(
    split: str, data: datasets.Dataset, scores: Scores, settings: Settings
) -> dict[str, Any]:
    """Figures of a model's span and constructiveness heads, where it gave them
    (:meth:`training.baselines.TransformerScorer.score`; nothing otherwise):
    ``spans``, SemEval-2021 Task 5's span F1 against the official gold of ``split``
    (:func:`training.span_eval.evaluate_spans`), and ``constructive``, the ROC-AUC and F1
    of C3's constructive_binary at the ``constructive`` decision threshold (default
    0.5) and the AUC of each characteristic (:func:`training.bootstrap.constructive_metrics`),
    with bootstrap intervals as the settings say."""
    out: dict[str, Any] = {}
    if scores.spans is not None:
        out["spans"] = evaluate_spans(
            data["id"], data["text"], scores.spans, split, settings.data_root,
            settings.bootstrap, settings.seed,
        )  # fmt: skip
    if scores.constructive is not None and scores.constructive_labels:
        gold = {n: np.asarray(data[n], dtype=float) for n in CONSTRUCTIVE_LABELS}
        if (gold["constructive"] >= 0).any():
            out["constructive"] = constructive_metrics(
                gold, scores.constructive, scores.constructive_labels,
                settings.threshold_for("constructive"), settings.bootstrap, settings.seed,
            )  # fmt: skip
    return out


# --------------------------------------------------------------------------- the run


def _versions() -> dict[str, Any]:
    import sklearn
    import torch
    import transformers

    from classifier import __version__

    return {
        "threadguard": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "datasets": datasets.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


def _unique_names(scorers: Sequence[Scorer]) -> list[str]:
    names: list[str] = []
    for s in scorers:
        name, k = s.name, 2
        while name in names:
            name, k = f"{s.name}-{k}", k + 1
        names.append(name)
    return names


#: Dev-split scores already computed in a run, by (model name, corpus): calibration and the
#: dev-tuned thresholds both need them.
DevScores = dict[tuple[str, str], tuple[datasets.Dataset, Scores]]


def score_dev(
    name: str,
    scorer: Scorer,
    corpus: str,
    cache: CorpusCache,
    settings: Settings,
    memo: DevScores,
) -> tuple[datasets.Dataset, Scores] | None:
    """``corpus``'s dev split (subsampled as the settings say) and ``scorer``'s scores on
    it, computed once per run; None when the corpus has no dev split."""
    if (name, corpus) not in memo:
        dev = cache(corpus).get("dev")
        if dev is None:
            return None
        dev = subsample(dev, settings.max_examples, settings.seed)
        memo[name, corpus] = (dev, scorer.score(corpus, dev, cache))
    return memo[name, corpus]


def calibrate(
    names: Sequence[str],
    scorers: Sequence[Scorer],
    dataset_names: Sequence[str],
    cache: CorpusCache,
    settings: Settings,
    memo: DevScores | None = None,
) -> dict[str, Any]:
    """Per-label thresholds on each dataset's dev split, per model and dataset, and
    pooled over all dev splits (the first model's pooled ones go to thresholds.yaml)."""
    assert settings.calibrate is not None
    target = settings.calibrate
    memo = {} if memo is None else memo
    per: dict[str, dict[str, Any]] = {}
    pooled: dict[str, dict[str, Any]] = {}
    used: dict[str, None] = {}
    for name, scorer in zip(names, scorers, strict=True):
        per[name] = {}
        gathered: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        for corpus in dict.fromkeys(dataset_names):
            dev = cache(corpus).get("dev")
            labels = [
                n for n in TOXICITY_LABELS if dev is not None and max(dev[n], default=-1) >= 0
            ]
            scored = score_dev(name, scorer, corpus, cache, settings, memo) if labels else None
            if scored is None:
                continue
            dev, scores = scored
            for j, label in enumerate(scores.toxicity_labels):
                values = np.asarray(dev[label], dtype=np.float32)
                known = values >= 0
                if scores.toxicity is None or not known.any():
                    continue
                y, prob = (values[known] >= 0.5).astype(int), scores.toxicity[known, j]
                per[name].setdefault(corpus, {})[label] = choose_threshold(y, prob, target)
                gathered.setdefault(label, []).append((y, prob))
                used.setdefault(f"{corpus}:dev", None)
        pooled[name] = {
            label: choose_threshold(
                np.concatenate([g[0] for g in parts]), np.concatenate([g[1] for g in parts]), target
            )
            for label, parts in gathered.items()
        }
    return {
        "target": dataclasses.asdict(target),
        "dev_datasets": list(used),
        "per_dataset": per,
        "pooled": pooled,
    }


def tuned_primary(
    corpus: str,
    scored: tuple[datasets.Dataset, Scores] | None,
    found: Measured,
    settings: Settings,
) -> dict[str, Any] | None:
    """A binary macro-F1 primary at the threshold that maximizes it on ``corpus``'s dev
    split (:func:`~training.thresholds.best_f1_threshold`; ``scored``: that split and the
    model's scores on it, :func:`score_dev`), with its bootstrap CI; None when the corpus
    has no dev split or the model no score for the label.

    The threshold is chosen on dev only, so the figure is a test figure; it shows how
    much of a gap is the decision threshold (a corpus's notion of "offensive" or "hate"
    is not the model's 0.5) rather than the ranking.
    """
    label = primary_for(corpus).label
    if scored is None or label is None or label not in found.curves:
        return None
    dev, scores = scored
    if scores.toxicity is None or label not in scores.toxicity_labels:
        return None
    values = np.asarray(dev[label], dtype=np.float32)
    known = values >= 0
    prob = scores.toxicity[known, scores.toxicity_labels.index(label)]
    threshold, dev_value = best_f1_threshold((values[known] >= 0.5).astype(int), prob)
    y, test_prob = found.curves[label]
    data = PrimaryData(
        "binary_macro_f1", y, pred=(test_prob >= threshold).astype(int), labels=(0, 1), n_classes=2
    )
    out: dict[str, Any] = {
        "threshold": threshold,
        "dev_value": dev_value,
        "value": data.value(),
        "ci": None,
    }
    if settings.bootstrap > 0:
        out["ci"] = percentile_ci(bootstrap_samples(data, settings.bootstrap, settings.seed))
    return out


def run_evaluation(
    models: Sequence[str],
    dataset_specs: Sequence[str],
    report_dir: str | Path,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Score every dataset split with every model; write the report; return it.

    Raises :class:`EvaluationError` for an unknown model or dataset, a missing
    corpus folder or split.
    """
    from training import report as reporting

    settings = settings or Settings()
    if not models:
        raise EvaluationError("give at least one --model", "--model")
    if not dataset_specs:
        raise EvaluationError("give at least one --dataset", "--dataset")
    parsed = [parse_dataset(d) for d in dataset_specs]
    scorers: list[Scorer] = []
    for spec in models:
        try:
            scorers.append(resolve_model(spec, settings.batch_size, settings.device))
        except (OSError, ValueError) as exc:
            raise EvaluationError(str(exc), "--model") from None
    names = _unique_names(scorers)
    cache = CorpusCache(settings.data_root)
    for corpus, split in parsed:  # fail early on a missing corpus or split
        cache.split(corpus, split)
    out_dir = Path(report_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    report: dict[str, Any] = {
        "command": list(settings.command if settings.command is not None else sys.argv),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": _versions(),
        "data_root": str(cache.root.resolve()),
        "settings": {
            "threshold": settings.threshold,
            "label_thresholds": settings.label_thresholds,
            "bootstrap": settings.bootstrap,
            "confidence_level": 0.95,
            "seed": settings.seed,
            "max_examples": settings.max_examples,
            "calibrate": dataclasses.asdict(settings.calibrate) if settings.calibrate else None,
            "tune_thresholds": settings.tune_thresholds,
        },
        **{k: [] for k in ("models", "datasets", "results", "comparisons", "plots")},
    }
    dev_scores: DevScores = {}
    for corpus, split in parsed:
        data = subsample(cache.split(corpus, split), settings.max_examples, settings.seed)
        key = f"{corpus}:{split}"
        logger.info("%s: %d rows", key, len(data))
        primary = primary_for(corpus)
        report["datasets"].append({
            "name": key, "corpus": corpus, "split": split, "task": CORPORA[corpus].task,
            "rows": len(data), "rows_in_split": len(cache.split(corpus, split)),
            "sha256": data_fingerprint(data), "primary_metric": primary.title,
            "primary_label": primary.label, **cache.info[corpus],
        })  # fmt: skip
        subgroups = identity_subgroups(corpus, data, cache.root)
        measured: dict[str, Measured] = {}
        samples: dict[str, np.ndarray] = {}
        for name, scorer in zip(names, scorers, strict=True):
            logger.info("%s: scoring with %s", key, name)
            scores = scorer.score(corpus, data, cache)
            found = measure(corpus, data, scores, settings, subgroups)
            found.result.update(measure_heads(split, data, scores, settings))
            measured[name] = found
            if found.primary is not None and settings.bootstrap > 0:
                samples[name] = bootstrap_samples(found.primary, settings.bootstrap, settings.seed)
                found.result["primary"]["ci"] = percentile_ci(samples[name])
            if settings.tune_thresholds and primary.kind == "binary_macro_f1" and split != "dev":
                scored = score_dev(name, scorer, corpus, cache, settings, dev_scores)
                tuned = tuned_primary(corpus, scored, found, settings)
                if tuned is not None:
                    found.result["primary_tuned"] = tuned
            report["results"].append({"model": name, "dataset": key, **found.result})
        first = names[0]
        for name in names[1:]:
            a, b = (
                measured[first].result["primary"]["value"],
                measured[name].result["primary"]["value"],
            )
            if a is None or b is None:
                continue
            comparison: dict[str, Any] = {"dataset": key, "model": name, "reference": first}
            if first in samples and name in samples:
                comparison.update(paired_difference(samples[first], samples[name], b - a))
            else:
                comparison.update({"difference": b - a, "ci": None, "p_value": None})
            report["comparisons"].append(comparison)
        if settings.plots:
            report["plots"] += reporting.plot_dataset(out_dir, key, measured)
    report["models"] = [{**s.describe(), "name": n} for n, s in zip(names, scorers, strict=True)]
    if settings.calibrate is not None:
        thresholds = calibrate(names, scorers, [c for c, _ in parsed], cache, settings, dev_scores)
        report["thresholds"] = thresholds
        reporting.write_thresholds(out_dir, thresholds, names, settings)
    reporting.write_report(out_dir, report)
    return report
