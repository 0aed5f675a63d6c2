"""What averaging several models' probabilities (a seed ensemble) gains, on dev splits.

Each model scores each dev split once. Then every ensemble of k of the models (all
combinations, or a fixed random sample of them when there are more than
``--max-combinations``) averages their stance and toxicity probabilities, and the split's
primary metric is printed for the single models and for the k-ensembles: mean, lowest and
highest. Only dev splits are read, because the question it answers, whether a recipe of
several trainings is worth its cost, is a choice of recipe, which test splits must not make.

    python benchmarks/seed_ensemble.py classifier/default_model runs/default-v14 \\
        runs/default-v15 --dataset olid --dataset rumoureval2019 --sizes 2 3
"""

from __future__ import annotations

import argparse
import functools
import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import datasets
import numpy as np

from classifier.model.network import ThreadguardModel
from classifier.model.torch_predictor import load_model
from training.corpora import load_corpus
from training.dev import predict_dataset
from training.metrics import dev_metrics

Probs = tuple[np.ndarray, np.ndarray]  # stance [N, S], toxicity [N, T]


@dataclass(frozen=True)
class Summary:
    """The primary metric over a set of models or ensembles of one size."""

    count: int
    mean: float
    low: float
    high: float


def ensembles(
    probs: Sequence[Probs],
    size: int,
    metric: Callable[[np.ndarray, np.ndarray], float],
    max_combinations: int = 200,
    seed: int = 0,
) -> Summary:
    """``metric`` of every ``size``-member average of ``probs`` (a seeded sample of the
    combinations when there are more than ``max_combinations``)."""
    if not 1 <= size <= len(probs):
        raise ValueError(
            f"ensemble size {size} is not between 1 and {len(probs)}, the models given"
        )
    combos = list(itertools.combinations(range(len(probs)), size))
    if len(combos) > max_combinations:
        combos = random.Random(seed).sample(combos, max_combinations)
    values = []
    for combo in combos:
        stance = np.mean([probs[i][0] for i in combo], axis=0)
        toxicity = np.mean([probs[i][1] for i in combo], axis=0)
        values.append(metric(stance, toxicity))
    return Summary(len(values), float(np.mean(values)), min(values), max(values))


def _primary(
    dev: datasets.Dataset,
    corpus: str,
    model: ThreadguardModel,
    stance: np.ndarray,
    toxicity: np.ndarray,
) -> float:
    """The dev split's primary metric for these probabilities, under ``model``'s labels."""
    found = dev_metrics(dev, stance, toxicity, model.stance_labels, model.toxicity_labels, corpus)
    return float(found["primary"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="model folders (two or more)")
    parser.add_argument("--dataset", action="append", default=[], help="corpus with a dev split")
    parser.add_argument("--sizes", type=int, nargs="+", default=[2, 3], help="ensemble sizes")
    parser.add_argument("--max-combinations", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    if len(args.models) < 2:
        parser.error("give two or more models")

    models = [load_model(path) for path in args.models]
    first = models[0]
    for path, model in zip(args.models, models, strict=True):
        if (model.stance_labels, model.toxicity_labels) != (
            first.stance_labels,
            first.toxicity_labels,
        ):
            raise ValueError(f"{path}: its labels differ from {args.models[0]}'s")

    print(f"{len(models)} models: {', '.join(args.models)}")
    for name in args.dataset:
        dev = load_corpus(name, split="dev")
        probs = [
            predict_dataset(model, dev, args.batch_size, model.config.head_for(name))
            for model in models
        ]

        metric = functools.partial(_primary, dev, name, first)
        singles = [metric(*p) for p in probs]
        baseline = float(np.mean(singles))
        print(f"## {name} dev ({len(dev)} rows)")
        print("single models: " + ", ".join(f"{v:.4f}" for v in singles))
        rows = [(1, Summary(len(singles), baseline, min(singles), max(singles)))]
        rows += [(k, ensembles(probs, k, metric, args.max_combinations)) for k in args.sizes]
        for size, s in rows:
            print(
                f"{size} model{'s' if size > 1 else ''}: mean {s.mean:.4f} "
                f"({s.low:.4f}–{s.high:.4f}, {s.count} sets), {s.mean - baseline:+.4f} on a single model"
            )


if __name__ == "__main__":
    main()
