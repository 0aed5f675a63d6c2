"""``threadguard evaluate``: score corpora with models and baselines; write a report."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from classifier.cli._app import app, needs_train_extra


def _label_values(values: list[str], what: str, option: str) -> tuple[dict[str, str], str | None]:
    """``LABEL=VALUE`` entries by label, and a bare ``VALUE`` (for every label)."""
    per: dict[str, str] = {}
    bare: str | None = None
    for value in values:
        label, sep, rest = value.partition("=")
        if not sep:
            bare = value.strip()
        elif label.strip() and rest.strip():
            per[label.strip()] = rest.strip()
        else:
            raise typer.BadParameter(f"expected {what}, got {value!r}", param_hint=option)
    return per, bare


@app.command()
def evaluate(
    model: Annotated[
        list[str],
        typer.Option(
            "--model",
            "-m",
            help="A saved model folder, a Hub id of one, or baseline:majority, baseline:tfidf, "
            "baseline:profanity (repeatable; the first is the reference).",
        ),
    ],
    dataset: Annotated[
        list[str],
        typer.Option(
            "--dataset", "-d", help="A corpus, NAME[:split], split test by default (repeatable)."
        ),
    ],
    report: Annotated[
        Path | None,
        typer.Option("--report", "-o", help="Report folder (default: runs/eval-YYYYMMDD-HHMMSS)."),
    ] = None,
    data_root: Annotated[
        Path | None,
        typer.Option(
            help="Folder holding the corpora (default: $THREADGUARD_DATA or ../shared/data)."
        ),
    ] = None,
    max_examples: Annotated[
        int | None, typer.Option(min=1, help="Score a seeded random subset of each split.")
    ] = None,
    bootstrap: Annotated[
        int, typer.Option(min=0, help="Bootstrap resamples for the CIs (0: none).")
    ] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the subsets and resamples.")] = 0,
    threshold: Annotated[
        list[str] | None,
        typer.Option(
            "--threshold",
            help="Decision threshold for the F1 figures: T for every label, or LABEL=T (repeatable).",
        ),
    ] = None,
    calibrate: Annotated[
        str | None,
        typer.Option(
            help="Choose per-label thresholds on each dataset's dev split: precision=P (at least "
            "P precision) or budget=B (at most a fraction B of comments held); writes thresholds.yaml."
        ),
    ] = None,
    tune_thresholds: Annotated[
        bool,
        typer.Option(
            "--tune-thresholds",
            help="Also give binary macro-F1 primaries (OLID, HatEval) at the threshold that "
            "maximizes them on each corpus's dev split, per model.",
        ),
    ] = False,
    action: Annotated[
        list[str] | None,
        typer.Option(
            help="Action written to thresholds.yaml: ACTION for every label or LABEL=ACTION "
            "(repeatable; default review)."
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Examples per forward pass.")] = 32,
    device: Annotated[str, typer.Option(help="torch device for transformer models.")] = "cpu",
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Write PNG plots.")] = True,
) -> None:
    """Score each dataset's split with each model and write report.json, report.md and plots.

    Needs the `train` extra (scikit-learn, matplotlib, alt-profanity-check).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        from training.evaluate import EvaluationError, Settings, run_evaluation
        from training.metrics import CalibrationTarget
        from training.report import summary_table
    except ImportError as exc:
        raise needs_train_extra("evaluation", exc) from None
    per_label, every = _label_values(threshold or [], "T or LABEL=T", "--threshold")
    try:
        label_thresholds = {k: float(v) for k, v in per_label.items()}
        default_threshold = float(every) if every is not None else 0.5
    except ValueError:
        raise typer.BadParameter("thresholds must be numbers", param_hint="--threshold") from None
    actions, default_action = _label_values(action or [], "ACTION or LABEL=ACTION", "--action")
    try:
        target = CalibrationTarget.parse(calibrate) if calibrate else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--calibrate") from None
    out = report or Path("runs") / f"eval-{datetime.now():%Y%m%d-%H%M%S}"
    settings = Settings(
        data_root=data_root,
        max_examples=max_examples,
        bootstrap=bootstrap,
        seed=seed,
        threshold=default_threshold,
        label_thresholds=label_thresholds,
        calibrate=target,
        tune_thresholds=tune_thresholds,
        actions=actions,
        default_action=default_action or "review",
        batch_size=batch_size,
        device=device,
        plots=plots,
        command=list(sys.argv),
    )
    try:
        result = run_evaluation(model, dataset, out, settings)
    except EvaluationError as exc:
        raise typer.BadParameter(str(exc), param_hint=exc.param) from None
    typer.echo("\n".join(summary_table(result)))
    typer.echo(f"report in {out}", err=True)
