"""Model evaluation runs: score corpora with models and baselines, measure, report.

>>> report = run_evaluation(["runs/model", "baseline:tfidf"], ["olid", "fnc1:test"], "runs/eval")

Each dataset's split is scored by each model (transformer models through
:meth:`classifier.model.predictor.BatchPredictor.score_arrays`, the path ``threadguard
score`` uses; baselines from :mod:`training.baselines`), measured with the
metrics each task's literature uses (scikit-learn does the arithmetic), bootstrapped
on its primary metric, and written by :mod:`training.report` as ``report.json``,
``report.md`` and PNG plots. docs/evaluation.md explains every figure.

This module is the driver: the run, its dev-split figures (calibrated and dev-tuned
thresholds) and the comparisons between models. The datasets it reads are
:mod:`training.eval_datasets`'s; one model on one split is measured by
:mod:`training.measure`.
"""

from __future__ import annotations

import dataclasses
import logging
import platform
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import datasets
import numpy as np

from classifier.labels import TOXICITY_LABELS
from training.baselines import Scorer, Scores, resolve_model
from training.bootstrap import (
    PrimaryData,
    bootstrap_samples,
    paired_difference,
    percentile_ci,
)
from training.corpora import CORPORA
from training.eval_datasets import (
    CorpusCache,
    EvaluationError,
    data_fingerprint,
    identity_subgroups,
    parse_dataset,
    subsample,
)
from training.measure import Measured, Settings, measure, measure_heads
from training.metrics import primary_for
from training.thresholds import best_f1_threshold, choose_threshold

logger = logging.getLogger(__name__)


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
