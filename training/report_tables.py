"""The Markdown tables of an evaluation's ``report.md``.

The summary (one row per dataset, one column per model: the primary metric with its
interval), one section per task (stance; toxicity and unintended bias; toxic spans;
constructiveness), the most confident errors, and the cell formatting they share.
:func:`training.report.markdown` assembles them into the page, and ``threadguard
evaluate`` prints :func:`summary_table` when a run ends.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any


def _f(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:.{digits}f}"


def _p(value: float | None) -> str:
    return "—" if value is None else "< 0.001" if value < 0.001 else f"{value:.3f}"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").replace("\r", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return [*out, ""]


def primary_cell(primary: Mapping[str, Any] | None) -> str:
    """``0.712 [0.684, 0.739]``, or ``—``."""
    if not primary or primary.get("value") is None:
        return "—"
    ci = primary.get("ci")
    return _f(primary["value"]) + (f" [{_f(ci[0])}, {_f(ci[1])}]" if ci else "")


def _summary_cell(result: Mapping[str, Any] | None) -> str:
    """The primary metric with its CI, plus the FNC-1 score or the bias score."""
    if not result:
        return "—"
    cell = primary_cell(result.get("primary"))
    tuned = result.get("primary_tuned")
    if tuned and cell != "—":
        cell += f" · at dev-tuned {tuned['threshold']:.2f}: {primary_cell(tuned)}"
    fnc = result.get("stance", {}).get("fnc")
    if fnc and cell != "—":
        cell += f" · FNC {_f(fnc['relative'], 1)} %"
    for t in result.get("toxicity", {}).values():
        if "bias" in t:
            cell += f" · bias {_f(t['bias']['final'])}"
    spans = result.get("spans", {})
    if spans.get("f1") is not None:
        cell += f" · span F1 {_f(spans['f1'])}"
    binary = result.get("constructive", {}).get("constructive_binary", {})
    if binary.get("roc_auc") is not None:
        cell += f" · constructive AUC {_f(binary['roc_auc'])}"
    return cell


def summary_table(report: Mapping[str, Any]) -> list[str]:
    """One row per dataset, one column per model: the primary metric with its CI
    (and the FNC-1 relative score or the Jigsaw bias score where the corpus has one)."""
    models = [m["name"] for m in report["models"]]
    by = {(r["dataset"], r["model"]): r for r in report["results"]}
    rows = [
        [f"{d['name']} ({d['rows']:,})", d["primary_metric"],
         *(_summary_cell(by.get((d["name"], m))) for m in models)]
        for d in report["datasets"]
    ]  # fmt: skip
    return _table(["dataset (rows)", "primary metric", *models], rows)


def _stance_section(results: Sequence[Mapping[str, Any]]) -> list[str]:
    found = [(r["model"], r["stance"]) for r in results if "stance" in r]
    scored = [(m, s) for m, s in found if "skipped" not in s]
    if not found:
        return []
    out = ["### Stance", ""]
    if scored:
        classes = scored[0][1]["classes"]
        extra = [k for k in ("f1_avg", "fnc") if k in scored[0][1]]
        header = ["model", "macro-F1", "accuracy"]
        header += ["F1avg(favor, against)"] if "f1_avg" in extra else []
        header += ["FNC score (relative %)"] if "fnc" in extra else []
        header += [f"{c} P / R / F1" for c in classes]
        rows = []
        for model, s in scored:
            row = [model, _f(s["macro_f1"]), _f(s["accuracy"])]
            row += [_f(s["f1_avg"])] if "f1_avg" in extra else []
            if "fnc" in extra:
                fnc = s["fnc"]
                row.append(
                    f"{fnc['score']:.2f} / {fnc['max_score']:.2f} ({_f(fnc['relative'], 1)} %)"
                )
            for c in classes:
                pc = s["per_class"][c]
                row.append(f"{_f(pc['precision'], 2)} / {_f(pc['recall'], 2)} / {_f(pc['f1'], 2)}")
            rows.append(row)
        out += _table(header, rows)
    out += [f"- {m}: {s['skipped']}" for m, s in found if "skipped" in s]
    return out + ([""] if len(scored) < len(found) else [])


def _toxicity_section(results: Sequence[Mapping[str, Any]]) -> list[str]:
    rows, skipped, bias = [], [], []
    for r in results:
        for label, t in r.get("toxicity", {}).items():
            if "skipped" in t:
                skipped.append(f"- {r['model']}, {label}: {t['skipped']}")
                continue
            rows.append([
                r["model"], label, t["n"], t["positives"], _f(t["roc_auc"]),
                _f(t["average_precision"]), f"{t['threshold']:.2f}", _f(t["precision"]),
                _f(t["recall"]), _f(t["f1"]), _f(t["macro_f1"]), _f(t["ece"]),
            ])  # fmt: skip
            if "bias" in t:
                bias.append((r["model"], label, t["bias"]))
    if not rows and not skipped:
        return []
    out = ["### Toxicity", ""]
    if rows:
        header = ["model", "label", "n", "positives", "ROC-AUC", "AP", "threshold",
                  "precision", "recall", "F1", "macro-F1", "ECE"]  # fmt: skip
        out += _table(header, rows)
    out += skipped + ([""] if skipped else [])
    if bias:
        out += ["### Unintended bias", ""]
        out += _table(
            ["model", "label", "overall AUC", "subgroup AUC", "BPSN AUC", "BNSP AUC", "final"],
            [[m, label, _f(b["overall_auc"]), _f(b["power_means"]["subgroup_auc"]),
              _f(b["power_means"]["bpsn_auc"]), _f(b["power_means"]["bnsp_auc"]), _f(b["final"])]
             for m, label, b in bias],
        )  # fmt: skip
        out.append("Subgroup, BPSN and BNSP columns are power means (p = −5) over subgroups.")
        out.append("")
        for model, _label, b in bias:
            out += [f"<details><summary>{model}: per subgroup</summary>", ""]
            out += _table(
                ["subgroup", "n", "positives", "subgroup AUC", "BPSN AUC", "BNSP AUC"],
                [[k, v["n"], v["positives"], _f(v["subgroup_auc"]), _f(v["bpsn_auc"]),
                  _f(v["bnsp_auc"])] for k, v in b["subgroups"].items()],
            )  # fmt: skip
            out += ["</details>", ""]
    return out


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!~=])")


def _escape(text: str) -> str:
    """``text`` with Markdown's special characters escaped (``|`` is left to the table's
    own cell escaping) and line breaks as spaces, so it shows as written in a table cell."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text).replace("\r", " ").replace("\n", " ")


def highlight(text: str, ranges: Sequence[Sequence[Any]]) -> str:
    """``text`` as Markdown with the character ``ranges`` (``[start, end, ...]``) in
    bold, as ``<b>`` tags: ``**`` next to punctuation (a span that starts at a comma)
    is not emphasis to CommonMark, an inline tag always is. Whitespace at a range's
    edges is left outside the tags."""
    marked = sorted((int(r[0]), int(r[1])) for r in ranges if int(r[1]) > int(r[0]))
    out: list[str] = []
    at = 0
    for start, end in marked:
        start = max(start, at)
        if start >= end:
            continue
        piece = text[start:end]
        lead = len(piece) - len(piece.lstrip())
        trail = len(piece) - len(piece.rstrip())
        out.append(_escape(text[at : start + lead]))
        if piece.strip():
            out.append(f"<b>{_escape(piece.strip())}</b>")
        at = end - trail
    out.append(_escape(text[at:]))
    return "".join(out)


def _spans_section(results: Sequence[Mapping[str, Any]]) -> list[str]:
    found = [(r["model"], r["spans"]) for r in results if "spans" in r]
    if not found:
        return []
    scored = [(m, s) for m, s in found if "skipped" not in s]
    out = ["### Toxic spans", ""]
    if scored:
        out += _table(
            ["model", "posts", "span F1 (SemEval-2021 Task 5)", "posts with gold: n, F1",
             "posts without gold: n, predicted empty"],
            [[m, s["n"], primary_cell({"value": s["f1"], "ci": s["ci"]}),
              f"{s['with_gold']['n']}, {primary_cell({'value': s['with_gold']['f1'], 'ci': s['with_gold']['ci']})}",
              f"{s['no_gold']['n']}, " + ("—" if s["no_gold"]["empty_share"] is None
                                          else f"{100 * s['no_gold']['empty_share']:.1f} %")]
             for m, s in scored],
        )  # fmt: skip
        out += [
            f"Against the official gold of `{scored[0][1]['gold']}` (the rows of this split "
            "that are in it): per-post F1 over character offsets, averaged; a post without a "
            "gold span scores 1 only when nothing is predicted.",
            "",
        ]
        for model, s in scored:
            if not s.get("examples"):
                continue
            out += [f"<details><summary>{model}: examples (predicted and gold spans in bold)</summary>", ""]  # fmt: skip
            out += _table(
                ["id", "F1", "predicted", "gold"],
                [[e["id"], _f(e["f1"], 2), highlight(e["text"], e["predicted"]),
                  highlight(e["text"], e["gold"])] for e in s["examples"]],
            )  # fmt: skip
            out += ["</details>", ""]
    out += [f"- {m}: {s['skipped']}" for m, s in found if "skipped" in s]
    return out + ([""] if len(scored) < len(found) else [])


def _constructive_section(results: Sequence[Mapping[str, Any]]) -> list[str]:
    found = [(r["model"], r["constructive"]) for r in results if "constructive" in r]
    if not found:
        return []
    out = ["### Constructiveness", ""]
    out += _table(
        ["model", "n", "positives", "ROC-AUC", "threshold", "F1 (constructive)", "macro-F1"],
        [[m, c["constructive_binary"]["n"], c["constructive_binary"]["positives"],
          primary_cell({"value": c["constructive_binary"]["roc_auc"], "ci": c["constructive_binary"]["roc_auc_ci"]}),
          f"{c['constructive_binary']['threshold']:.2f}",
          primary_cell({"value": c["constructive_binary"]["f1"], "ci": c["constructive_binary"]["f1_ci"]}),
          primary_cell({"value": c["constructive_binary"]["macro_f1"], "ci": c["constructive_binary"]["macro_f1_ci"]})]
         for m, c in found],
    )  # fmt: skip
    rows = [
        [m, name, v["binarised"], v["n"], v["positives"], primary_cell({"value": v["roc_auc"], "ci": v["roc_auc_ci"]})]
        for m, c in found for name, v in c["characteristics"].items()
    ]  # fmt: skip
    if rows:
        out += _table(["model", "characteristic", "positive when share", "n", "positives", "ROC-AUC"], rows)  # fmt: skip
    out += [
        "Gold: C3's constructive_binary (more than half the raters judged the comment "
        "constructive); a characteristic is positive when at least half the raters named it, "
        "or any rater when that leaves too few positives.",
        "",
    ]
    return out


def _errors_section(results: Sequence[Mapping[str, Any]]) -> list[str]:
    out: list[str] = []
    for r in results:
        stance = r.get("stance", {})
        if stance.get("confident_errors"):
            out += [f"<details><summary>{r['model']}: most confident stance errors</summary>", ""]
            out += _table(
                ["id", "gold", "predicted", "confidence", "comment", "target"],
                [[e["id"], e["gold"], e["predicted"], _f(e["confidence"]), e["text"],
                  e["target"]] for e in stance["confident_errors"]],
            )  # fmt: skip
            out += ["</details>", ""]
        for label, t in r.get("toxicity", {}).items():
            if t.get("confident_errors"):
                out += [f"<details><summary>{r['model']}: most confident {label} errors</summary>", ""]  # fmt: skip
                out += _table(
                    ["id", "gold", "score", "comment"],
                    [[e["id"], _f(e["gold"], 2), _f(e["score"]), e["text"]]
                     for e in t["confident_errors"]],
                )  # fmt: skip
                out += ["</details>", ""]
    return ["### Most confident errors", "", *out] if out else []
