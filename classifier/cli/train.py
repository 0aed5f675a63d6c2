"""``threadguard train``: fine-tune a model from a recipe."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from classifier.cli._app import app, needs_train_extra


@app.command()
def train(
    config: Annotated[
        Path, typer.Argument(help="Training recipe (YAML), e.g. configs/default.yaml.")
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Model folder (default: the recipe's output_dir)."),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Override a recipe value: KEY=VALUE, dotted keys for sections (repeatable).",
        ),
    ] = None,
    fresh: Annotated[
        bool,
        typer.Option("--fresh", help="Ignore a checkpoint left in the output folder; start over."),
    ] = False,
) -> None:
    """Fine-tune a model from a recipe (needs the `train` extra). Resumes an interrupted run."""
    try:
        from training.config import load_config
        from training.trainer import train as run_training
    except ImportError as exc:
        raise needs_train_extra("training", exc) from None
    try:
        recipe = load_config(config, set_ or [])
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="CONFIG") from None
    try:
        result = run_training(recipe, output, resume=not fresh)
    except (OSError, ValueError) as exc:  # what the recipe's data or settings make impossible
        raise typer.BadParameter(str(exc), param_hint="CONFIG") from None
    typer.echo(
        f"trained {result.steps} steps; best {recipe.early_stopping_metric} = {result.best_metric} "
        f"at step {result.best_step}; model in {result.output_dir}",
        err=True,
    )


@app.command("fit-offsets")
def fit_offsets(
    model: Annotated[Path, typer.Argument(help="A saved model folder (changed in place).")],
    head: Annotated[
        list[str] | None,
        typer.Option(
            "--head",
            help="Stance head to fit (repeatable; default: the recipe's stance_offsets, "
            "else the comment head).",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write a fitted copy here instead of in place."),
    ] = None,
    data_root: Annotated[
        str | None,
        typer.Option(
            "--data-root", help="Corpora folder (default: the recipe's, or ../shared/data)."
        ),
    ] = None,
    replies: Annotated[
        bool,
        typer.Option(
            "--replies",
            help="Fit the comment head's reply offsets: applied at run time to replies to "
            "comments only, not folded into the head.",
        ),
    ] = False,
) -> None:
    """Fit per-class stance offsets on the dev splits of a head's corpora (needs the
    `train` extra); the trainer runs this itself for the heads a recipe's
    stance_offsets names, and for replies when its reply_offsets is true."""
    try:
        from training.offsets import fit_stance_offsets
    except ImportError as exc:
        raise needs_train_extra("fitting", exc) from None
    try:
        records = fit_stance_offsets(
            model,
            head,
            output_dir=output,
            data_root=data_root,
            inputs="replies" if replies else "all",
        )
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="MODEL") from None
    for r in records:
        shifts = ", ".join(f"{k} {v:+.1f}" for k, v in r["offsets"].items())
        typer.echo(
            f"{r['head']}{' (replies)' if replies else ''}: {shifts} (anchor {r['anchor']}); "
            "dev primary "
            f"{r['dev_before']:.4f} -> {r['dev_after']:.4f} on {', '.join(r['corpora'])} "
            f"({r['dev_rows']} rows)",
            err=True,
        )


@app.command("calibrate")
def calibrate(
    model: Annotated[
        Path | None,
        typer.Argument(
            help="A saved model folder with a comment model (changed in place); not with "
            "--feedback."
        ),
    ] = None,
    dataset: Annotated[
        list[str] | None,
        typer.Option(
            "--dataset",
            help="Corpus whose dev split to fit on (repeatable; default: c3, toxic_spans, "
            "context_toxicity).",
        ),
    ] = None,
    data_root: Annotated[
        str | None, typer.Option("--data-root", help="Corpora folder (default: ../shared/data).")
    ] = None,
    feedback: Annotated[
        Path | None,
        typer.Option(
            help="Instead: refit the site's moderation thresholds on the moderators' decisions "
            "that `threadguard serve --feedback FILE` stored (comments:suggestscore).",
        ),
    ] = None,
    policy: Annotated[
        Path | None,
        typer.Option(
            help="With --feedback: the policy in force, whose rules are refitted (default: "
            "the built-in policy)."
        ),
    ] = None,
    target: Annotated[
        str,
        typer.Option(
            help="With --feedback: precision=P (comments held are ones the moderators deleted, "
            "at least P of them) or budget=B (at most a fraction B held)."
        ),
    ] = "precision=0.8",
    model_version: Annotated[
        str | None,
        typer.Option(
            help="With --feedback: use the decisions on comments this model version scored "
            "(default: the newest decision's)."
        ),
    ] = None,
    min_decisions: Annotated[
        int,
        typer.Option(
            min=1, help="With --feedback: decisions needed each way before a rule is refitted."
        ),
    ] = 20,
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="With --feedback: the policy file written (YAML)."),
    ] = Path("policy-feedback.yaml"),
) -> None:
    """Fit each toxicity label's Platt scaling on news-comment dev splits and save it in
    the comment model (needs the `train` extra), so that 0.5 means more likely toxic
    than not; with a span head, also choose its span threshold on SemEval-2021 Task 5's
    dev file. With --feedback, instead refit a policy's thresholds on the site's own
    moderators' decisions (see docs/perspective.md)."""
    if feedback is not None:
        _calibrate_feedback(feedback, policy, target, model_version, min_decisions, output)
        return
    if model is None:
        raise typer.BadParameter("give a model folder, or --feedback FILE", param_hint="MODEL")
    try:
        from training.calibrate import NEWS_DEV, fit_calibration, fit_span_threshold
    except ImportError as exc:
        raise needs_train_extra("calibrating", exc) from None
    try:
        saved = fit_calibration(model, tuple(dataset or NEWS_DEV), data_root=data_root)
    except (ValueError, FileNotFoundError) as exc:
        raise typer.BadParameter(str(exc)) from None
    for label, found in saved["dev"].items():
        typer.echo(
            f"{label}: dev n={found['n']} positives={found['positives']} "
            f"ECE {found['ece_before']:.3f} -> {found['ece_after']:.3f}"
        )
    if saved["skipped"]:
        typer.echo(f"left uncalibrated (too few dev positives): {', '.join(saved['skipped'])}")
    if saved["span_head"]:
        try:
            spans = fit_span_threshold(model, data_root=data_root)
        except (ValueError, FileNotFoundError) as exc:
            raise typer.BadParameter(str(exc)) from None
        typer.echo(
            f"span threshold {spans['threshold']:.2f}: SemEval-2021 Task 5 F1 "
            f"{spans['dev_f1']:.3f} on {spans['n']} dev posts"
        )


def _calibrate_feedback(
    path: Path,
    policy_path: Path | None,
    target_text: str,
    model_version: str | None,
    min_decisions: int,
    output: Path,
) -> None:
    """``calibrate --feedback``: the site's thresholds from its moderators' decisions."""
    try:
        import yaml

        from classifier.moderation.feedback import read_feedback
        from classifier.moderation.policy import Policy
        from training.feedback import fit_feedback_policy
        from training.metrics import CalibrationTarget
    except ImportError as exc:
        raise needs_train_extra("calibrating", exc) from None
    try:
        target = CalibrationTarget.parse(target_text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--target") from None
    try:
        policy = Policy.load(policy_path)
        records = list(read_feedback(path))
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from None
    fitted, report = fit_feedback_policy(
        records, policy, target, model_version=model_version, min_decisions=min_decisions
    )
    typer.echo(
        f"{report['decisions']} decisions on comments scored by model "
        f"{report['model_version']} ({len(records)} records in {path})"
    )
    for label, found in report["labels"].items():
        change = (
            f"{found['kept']:.3f} -> {found['threshold']:.3f}"
            if "reason" not in found and found.get("precision") is not None
            else f"kept {found['kept']:.3f}: {found.get('reason', 'target not met')}"
        )
        typer.echo(f"{label}: n={found['n']} deleted={found['positives']} {change}")
    header = (
        f"# refitted by threadguard calibrate --feedback {path} --target {target_text}\n"
        f"# on {report['decisions']} moderators' decisions (model {report['model_version']})\n"
    )
    output.write_text(header + yaml.safe_dump(fitted, sort_keys=False), encoding="utf-8")
    typer.echo(f"policy written to {output} (threadguard serve --policy {output})", err=True)
