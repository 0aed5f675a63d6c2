"""Writing an evaluation report: ``report.json``, ``report.md``, PNG plots and
``thresholds.yaml`` (see :func:`training.evaluate.run_evaluation`).

Plots are drawn on :class:`matplotlib.figure.Figure` objects and saved with the
Agg canvas, so no pyplot state or display is involved.

The Markdown tables of ``report.md`` are :mod:`training.report_tables`'s; this module
draws the plots, writes the thresholds files, and assembles and writes the report.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import ConfusionMatrixDisplay, precision_recall_curve, roc_curve

from training.report_tables import (
    _constructive_section,
    _errors_section,
    _f,
    _p,
    _spans_section,
    _stance_section,
    _table,
    _toxicity_section,
    summary_table,
)

if TYPE_CHECKING:
    from training.measure import Measured, Settings


def slug(text: str) -> str:
    """A file-name-safe form of ``text``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


def _jsonable(value: Any) -> Any:
    """Plain JSON values: numpy scalars and arrays turned into Python ones, NaN and
    infinities into None."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


# --------------------------------------------------------------------------- plots


def _save(fig: Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=100)


def plot_dataset(out_dir: Path, dataset: str, measured: Mapping[str, Measured]) -> list[str]:
    """Confusion matrices (one per model) and, per toxicity label, ROC, PR and
    reliability curves with every model overlaid; returns paths relative to ``out_dir``."""
    folder = Path("plots") / slug(dataset)
    written: list[str] = []
    for name, found in measured.items():
        if found.stance_cm is None:
            continue
        classes, cm = found.stance_cm
        fig = Figure(figsize=(4.8, 4.2), layout="constrained")
        ax = fig.add_subplot()
        ConfusionMatrixDisplay(cm, display_labels=classes).plot(ax=ax, colorbar=False)
        ax.set_title(f"{dataset}\n{name}", fontsize=9)
        rel = folder / f"confusion-{slug(name)}.png"
        _save(fig, out_dir / rel)
        written.append(str(rel))
    labels = list(dict.fromkeys(label for f in measured.values() for label in f.curves))
    for label in labels:
        curves = {n: f.curves[label] for n, f in measured.items() if label in f.curves}
        both = {n: c for n, c in curves.items() if 0 < c[0].sum() < len(c[0])}
        if both:
            fig = Figure(figsize=(4.8, 4.2), layout="constrained")
            ax = fig.add_subplot()
            for name, (y, prob) in both.items():
                fpr, tpr, _ = roc_curve(y, prob)
                ax.plot(fpr, tpr, label=name)
            ax.plot([0, 1], [0, 1], ":", color="grey", linewidth=1)
            ax.set(xlabel="false positive rate", ylabel="true positive rate")
            ax.set_title(f"ROC, {label}: {dataset}", fontsize=9)
            ax.legend(fontsize=7, loc="lower right")
            rel = folder / f"roc-{label}.png"
            _save(fig, out_dir / rel)
            written.append(str(rel))
            fig = Figure(figsize=(4.8, 4.2), layout="constrained")
            ax = fig.add_subplot()
            for name, (y, prob) in both.items():
                precision, recall, _ = precision_recall_curve(y, prob)
                ax.step(recall, precision, where="post", label=name)
            base = next(iter(both.values()))[0].mean()
            ax.axhline(base, linestyle=":", color="grey", linewidth=1)
            ax.set(xlabel="recall", ylabel="precision", ylim=(0, 1.02))
            ax.set_title(f"precision-recall, {label}: {dataset}", fontsize=9)
            ax.legend(fontsize=7, loc="upper right")
            rel = folder / f"pr-{label}.png"
            _save(fig, out_dir / rel)
            written.append(str(rel))
        fig = Figure(figsize=(4.8, 4.2), layout="constrained")
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], ":", color="grey", linewidth=1)
        for name, found in measured.items():
            metrics = found.result.get("toxicity", {}).get(label, {})
            points = metrics.get("reliability")
            if points:
                ax.plot(points["prob_pred"], points["prob_true"], "o-", markersize=3,
                        label=f"{name} (ECE {metrics['ece']:.3f})")  # fmt: skip
        ax.set(xlabel="mean predicted probability", ylabel="fraction positive",
               xlim=(0, 1), ylim=(0, 1))  # fmt: skip
        ax.set_title(f"reliability, {label}: {dataset}", fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
        rel = folder / f"reliability-{label}.png"
        _save(fig, out_dir / rel)
        written.append(str(rel))
    return written


# --------------------------------------------------------------------------- thresholds


def _num(value: float, digits: int = 4) -> str:
    return f"{value:.{digits}g}" if digits > 4 else f"{round(value, digits)}"


def thresholds_yaml(
    chosen: Mapping[str, Mapping[str, Any]], actions: Mapping[str, str], default: str, header: str
) -> str:
    """The thresholds file the moderation policy reads: one flow mapping per label."""
    lines = [f"# {header}", "labels:"]
    skipped = []
    for label, found in chosen.items():
        if found.get("threshold") is None:
            skipped.append(f"# {label}: not calibrated: {found.get('reason', 'no threshold')}")
            continue
        lines.append(
            f"  {label}: {{threshold: {_num(found['threshold'], 6)}, "
            f"action: {actions.get(label, default)}, precision: {_num(found['precision'])}, "
            f"recall: {_num(found['recall'])}, held_fraction: {_num(found['held_fraction'])}}}"
        )
    if len(lines) == 2:
        lines[-1] = "labels: {}"
    return "\n".join(lines + skipped) + "\n"


def write_thresholds(
    out_dir: Path, thresholds: Mapping[str, Any], names: Sequence[str], settings: Settings
) -> list[str]:
    """``thresholds.yaml`` for the first model (pooled over the dev splits) and
    ``thresholds/<model>.yaml`` for every model; returns the paths written."""
    target = thresholds["target"]
    where = ", ".join(thresholds["dev_datasets"]) or "no dev split"
    written = []
    for i, name in enumerate(names):
        header = (
            f"written by threadguard evaluate --calibrate {target['kind']}={target['value']} "
            f"on {where} (model {name})"
        )
        text = thresholds_yaml(
            thresholds["pooled"][name], settings.actions, settings.default_action, header
        )
        paths = [Path("thresholds") / f"{slug(name)}.yaml"] + ([Path("thresholds.yaml")] if i == 0 else [])  # fmt: skip
        for rel in paths:
            (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            (out_dir / rel).write_text(text, encoding="utf-8")
            written.append(str(rel))
    return written


# --------------------------------------------------------------------------- report.md


def _model_line(m: Mapping[str, Any]) -> str:
    if m.get("kind") == "transformer":
        return (
            f"- **{m['name']}**: threadguard model `{m['path']}` (sha256 {m['sha256'][:12]}…), "
            f"encoder `{(m.get('model_config') or {}).get('encoder')}`, "
            f"stance {', '.join(m['stance_labels'])}; toxicity {', '.join(m['toxicity_labels'])}"
        )
    trained = m.get("trained_on") or {}
    on = "; ".join(f"{k} ← {v['corpus']}:{v['split']} ({v['rows']:,} rows)" for k, v in trained.items())  # fmt: skip
    versions = ", ".join(f"{k} {v}" for k, v in (m.get("versions") or {}).items())
    return f"- **{m['name']}**: built-in baseline ({versions})" + (f"; fitted: {on}" if on else "")


def markdown(report: Mapping[str, Any]) -> str:
    """``report.md``: summary, comparisons, then one section per dataset."""
    s = report["settings"]
    lines = [
        "# threadguard evaluation",
        "",
        f"`{' '.join(report['command'])}`",
        "",
        f"Created {report['created']} · threadguard {report['versions']['threadguard']} · "
        f"data root `{report['data_root']}` · decision threshold {s['threshold']}"
        + (f" (per label: {s['label_thresholds']})" if s["label_thresholds"] else "")
        + (f" · at most {s['max_examples']:,} examples per split" if s["max_examples"] else "")
        + (
            f" · 95 % percentile bootstrap CIs over {s['bootstrap']:,} resamples (seed {s['seed']})"
            if s["bootstrap"]
            else " · no bootstrap"
        ),
        "",
        "## Summary",
        "",
        *summary_table(report),
    ]
    if report["comparisons"]:
        lines += ["## Differences from " + report["models"][0]["name"], ""]
        lines += _table(
            ["dataset", "model", "difference", "95 % CI", "p"],
            [[c["dataset"], c["model"], f"{c['difference']:+.3f}",
              f"[{_f(c['ci'][0])}, {_f(c['ci'][1])}]" if c.get("ci") else "—", _p(c.get("p_value"))]
             for c in report["comparisons"]],
        )  # fmt: skip
        lines += ["A difference whose CI excludes 0 is unlikely to be resampling noise.", ""]
    lines += ["## Models", "", *(_model_line(m) for m in report["models"]), ""]
    if report.get("thresholds"):
        lines += ["## Thresholds", "", "Chosen on the dev splits "
                  f"{', '.join(report['thresholds']['dev_datasets'])}: see `thresholds.yaml`.", ""]  # fmt: skip
    for d in report["datasets"]:
        results = [r for r in report["results"] if r["dataset"] == d["name"]]
        lines += [f"## {d['name']}", "",
                  f"{d['rows']:,} rows (of {d['rows_in_split']:,}) · primary: {d['primary_metric']} "
                  f"· sha256 {d['sha256'][:12]}…", ""]  # fmt: skip
        lines += _stance_section(results)
        lines += _toxicity_section(results)
        lines += _spans_section(results)
        lines += _constructive_section(results)
        plots = [p for p in report["plots"] if p.startswith(f"plots/{slug(d['name'])}/")]
        if plots:
            lines += ["### Plots", "", " ".join(f"![{Path(p).stem}]({p})" for p in plots), ""]
        lines += _errors_section(results)
    return "\n".join(lines).rstrip() + "\n"


def write_report(out_dir: Path, report: Mapping[str, Any]) -> None:
    """Write ``report.json`` and ``report.md`` into ``out_dir``."""
    clean = _jsonable(report)
    (out_dir / "report.json").write_text(
        json.dumps(clean, indent=1, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8"
    )
    (out_dir / "report.md").write_text(markdown(clean), encoding="utf-8")
