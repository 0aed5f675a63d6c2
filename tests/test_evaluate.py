"""Evaluation runs: every metric against a hand-computed value, baselines, threshold
calibration, and ``threadguard evaluate`` end to end on a tiny model and fixture corpora."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from sklearn.metrics import f1_score, roc_auc_score
from typer.testing import CliRunner

from classifier.cli import app
from classifier.model.network import ThreadguardModel
from training.baselines import Baseline, Scores
from training.bootstrap import (
    PrimaryData,
    bootstrap_samples,
    macro_f1_resampled,
    paired_difference,
    percentile_ci,
    roc_auc_resampled,
)
from training.corpora import default_data_root
from training.data import make_example, to_dataset
from training.measure import Settings, measure
from training.metrics import (
    CalibrationTarget,
    bias_metrics,
    expected_calibration_error,
    f1_avg,
    fnc_score,
    power_mean,
    stance_metrics,
    toxicity_metrics,
)
from training.report import thresholds_yaml
from training.thresholds import best_f1_threshold, choose_threshold

FIXTURES = Path(__file__).parent / "fixtures" / "corpora"
runner = CliRunner()
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- stance


def test_fnc_score_by_hand() -> None:
    # agree→agree 0.25+0.75; disagree→discuss 0.25; unrelated→unrelated 0.25; discuss→unrelated 0
    gold = ["support", "deny", "unrelated", "comment"]
    pred = ["support", "comment", "unrelated", "unrelated"]
    found = fnc_score(gold, pred)
    assert found["score"] == pytest.approx(1.5)
    assert found["max_score"] == pytest.approx(3 * 1.0 + 0.25)
    assert found["relative"] == pytest.approx(100 * 1.5 / 3.25)


def test_stance_metrics_by_hand() -> None:
    gold = ["support", "support", "deny", "comment", "deny"]
    pred = ["support", "deny", "deny", "comment", "comment"]
    classes = ["support", "deny", "comment"]
    found = stance_metrics(gold, pred, classes, "semeval2016_stance")
    # support P 1 R 1/2 F1 2/3; deny P 1/2 R 1/2 F1 1/2; comment P 1/2 R 1 F1 2/3
    assert found["macro_f1"] == pytest.approx((2 / 3 + 1 / 2 + 2 / 3) / 3)
    assert found["f1_avg"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert f1_avg(gold, pred) == pytest.approx(7 / 12)
    assert found["accuracy"] == pytest.approx(3 / 5)
    assert found["per_class"]["support"] == {
        "precision": 1.0,
        "recall": 0.5,
        "f1": pytest.approx(2 / 3),
        "support": 2,
    }
    assert found["per_class"]["comment"]["recall"] == 1.0
    assert found["confusion_matrix"] == [[1, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert "fnc" not in found
    assert "fnc" in stance_metrics(gold, pred, [*classes, "unrelated"], "fnc1")


def test_stance_is_scored_over_the_corpus_classes() -> None:
    rows = [
        make_example(id=str(i), source="x", split="test", text="t", target="p",
                     stance=s, stance_classes=["support", "deny", "query", "comment"])
        for i, s in enumerate(["support", "deny", "query", "comment"])
    ]  # fmt: skip
    data = to_dataset(rows)
    # the model knows support/deny/comment/unrelated, not query; unrelated is not a class here
    probs = np.asarray(
        [[0.5, 0.1, 0.1, 0.3], [0.1, 0.2, 0.3, 0.4], [0.3, 0.3, 0.4, 0.0], [0.1, 0.1, 0.2, 0.6]]
    )
    scores = Scores(("support", "deny", "comment", "unrelated"), probs)
    found = measure("rumoureval2019", data, scores, Settings()).result["stance"]
    # argmax over support/deny/comment (unrelated ignored): support, comment, comment, comment
    assert found["missing_classes"] == ["query"]
    assert found["confusion_matrix"] == [[1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 1]]
    assert found["macro_f1"] == pytest.approx((1 + 0 + 0 + 0.5) / 4)
    worst = found["confident_errors"][0]
    assert (worst["gold"], worst["predicted"]) == ("deny", "comment")
    assert worst["confidence"] == pytest.approx(0.3 / 0.6)  # renormalised over the classes


# --------------------------------------------------------------------------- toxicity


def test_toxicity_metrics_by_hand() -> None:
    y = np.array([0, 0, 1, 1])
    prob = np.array([0.1, 0.6, 0.35, 0.8])
    found = toxicity_metrics(y, prob, threshold=0.5)
    assert found["roc_auc"] == pytest.approx(3 / 4)  # .35 < .6 is the one misordered pair
    assert found["average_precision"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert (found["precision"], found["recall"], found["f1"]) == (0.5, 0.5, 0.5)
    assert found["macro_f1"] == pytest.approx(0.5)
    one_class = toxicity_metrics(np.zeros(3), np.array([0.1, 0.2, 0.9]))
    assert one_class["roc_auc"] is None and one_class["average_precision"] is None


def test_expected_calibration_error_by_hand() -> None:
    # bins of width 0.1: {.12 (0), .15 (1)} gap |.5 - .135|; {.33 (1)} gap .67; {.81 (1)} .19
    y = np.array([0, 1, 1, 1])
    prob = np.array([0.12, 0.15, 0.33, 0.81])
    expected = 0.5 * abs(0.5 - 0.135) + 0.25 * 0.67 + 0.25 * 0.19
    assert expected_calibration_error(y, prob) == pytest.approx(expected)
    assert expected_calibration_error(np.array([0, 1]), np.array([0.0, 1.0])) == 0.0


def test_bias_metrics_by_hand() -> None:
    y = np.array([1, 0, 0, 1, 1, 0, 0])
    prob = np.array([0.9, 0.6, 0.2, 0.8, 0.4, 0.3, 0.1])
    s = np.array([1, 1, 1, 0, 0, 0, 0], dtype=bool)
    t = np.array([0, 0, 0, 1, 1, 1, 0], dtype=bool)
    found = bias_metrics(y, prob, {"s": s, "t": t})
    assert found["overall_auc"] == pytest.approx(11 / 12)  # .4 < .6 is the one bad pair
    # s: subgroup {.9+} vs {.6, .2}; BPSN {.8+, .4+} vs {.6, .2}; BNSP {.9+} vs {.3, .1}
    assert found["subgroups"]["s"]["subgroup_auc"] == pytest.approx(1.0)
    assert found["subgroups"]["s"]["bpsn_auc"] == pytest.approx(3 / 4)
    assert found["subgroups"]["s"]["bnsp_auc"] == pytest.approx(1.0)
    # t: subgroup {.8+, .4+} vs {.3}; BPSN {.9+} vs {.3}; BNSP {.8+, .4+} vs {.6, .2, .1}
    assert found["subgroups"]["t"]["subgroup_auc"] == pytest.approx(1.0)
    assert found["subgroups"]["t"]["bpsn_auc"] == pytest.approx(1.0)
    assert found["subgroups"]["t"]["bnsp_auc"] == pytest.approx(5 / 6)

    def pm(a: float, b: float) -> float:
        return ((a**-5 + b**-5) / 2) ** (-1 / 5)

    bias = (pm(1, 1) + pm(0.75, 1) + pm(1, 5 / 6)) / 3
    assert pm(0.75, 1) == pytest.approx(0.82560, abs=1e-5)
    assert found["final"] == pytest.approx(0.25 * 11 / 12 + 0.75 * bias)
    assert power_mean([0.0, 0.9], -5) == 0.0
    assert math.isnan(power_mean([float("nan")], -5))


# --------------------------------------------------------------------------- bootstrap


def test_resampled_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(1)
    gold, pred = rng.integers(0, 3, 50), rng.integers(0, 3, 50)
    y = rng.integers(0, 2, 50)
    prob = np.round(rng.random(50), 1)  # many ties
    idx = np.stack([np.arange(50), rng.integers(0, 50, 50)])
    for row, got in zip(idx, macro_f1_resampled(gold, pred, (0, 1, 2), 3, idx), strict=True):
        assert got == pytest.approx(f1_score(gold[row], pred[row], average="macro"))
    for row, got in zip(idx, macro_f1_resampled(gold, pred, (0, 1), 3, idx), strict=True):
        assert got == pytest.approx(f1_score(gold[row], pred[row], labels=[0, 1], average="macro"))
    for row, got in zip(idx, roc_auc_resampled(y, prob, idx), strict=True):
        assert got == pytest.approx(roc_auc_score(y[row], prob[row]))
    assert np.isnan(
        roc_auc_resampled(np.array([0, 1]), np.array([0.2, 0.4]), np.zeros((1, 2), int))
    )


def test_bootstrap_ci_contains_the_estimate_and_is_seeded() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    prob = np.clip(y * 0.3 + rng.random(300) * 0.7, 0, 1)
    data = PrimaryData("roc_auc", y, prob=prob)
    assert data.value() == pytest.approx(roc_auc_score(y, prob))
    a = bootstrap_samples(data, 500, seed=3)
    assert len(a) == 500
    ci = percentile_ci(a)
    assert ci is not None and ci[0] < data.value() < ci[1]
    assert np.array_equal(a, bootstrap_samples(data, 500, seed=3))
    assert not np.array_equal(a, bootstrap_samples(data, 500, seed=4))
    # paired: a model compared with itself differs by exactly 0 on every resample
    same = paired_difference(a, bootstrap_samples(data, 500, seed=3), 0.0)
    assert same["ci"] == [0.0, 0.0] and same["p_value"] == 1.0
    worse = PrimaryData("roc_auc", y, prob=rng.random(300))
    diff = paired_difference(a, bootstrap_samples(worse, 500, seed=3), worse.value() - data.value())
    assert diff["ci"][1] < 0 and diff["p_value"] < 0.01


# --------------------------------------------------------------------------- thresholds


def test_thresholds_meet_the_target() -> None:
    y = np.array([0, 0, 0, 1, 0, 1, 1, 1])
    prob = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    found = choose_threshold(y, prob, CalibrationTarget.parse("precision=0.75"))
    # ≥ .4 holds 5 comments, 4 toxic: precision .8; ≥ .3 would be 4/6
    assert found["threshold"] == pytest.approx(0.4)
    assert found["precision"] == pytest.approx(0.8) and found["precision"] >= 0.75
    assert (found["recall"], found["held_fraction"]) == (1.0, 5 / 8)
    found = choose_threshold(y, prob, CalibrationTarget.parse("budget=0.3"))
    assert found["threshold"] == pytest.approx(0.7)  # holds 2/8; ≥ .6 would hold 3/8
    assert (found["held_fraction"], found["precision"], found["recall"]) == (0.25, 1.0, 0.5)
    unreachable = choose_threshold(
        np.array([1, 0]), np.array([0.2, 0.9]), CalibrationTarget("precision", 0.9)
    )
    assert unreachable["threshold"] is None and "not reachable" in unreachable["reason"]
    with pytest.raises(ValueError, match="precision=P or budget=B"):
        CalibrationTarget.parse("recall=0.5")


def test_best_f1_threshold() -> None:
    y = np.array([0, 0, 0, 1, 0, 1, 1, 1])
    prob = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    threshold, value = best_f1_threshold(y, prob)
    # .31-.40 (one negative held) and .51-.60 (one positive missed) tie at macro-F1 .873;
    # the tie goes to the threshold nearest 0.5
    assert threshold == pytest.approx(0.51)
    expected = f1_score(y, prob >= 0.4, average="macro")
    assert value == pytest.approx(expected)
    for t in np.arange(0.01, 1.0, 0.01):
        assert f1_score(y, prob >= t, average="macro") <= value + 1e-12
    assert best_f1_threshold(np.array([0, 1]), np.array([0.3, 0.3]))[0] == 0.5  # flat: 0.5


def test_thresholds_yaml_format() -> None:
    text = thresholds_yaml(
        {
            "toxicity": {
                "threshold": 0.73,
                "precision": 0.9,
                "recall": 0.41,
                "held_fraction": 0.031,
            },
            "spam": {"threshold": 0.81, "precision": 0.95, "recall": 0.5, "held_fraction": 0.01},
            "threat": {"threshold": None, "reason": "no positive dev example"},
        },
        {"spam": "reject"},
        "review",
        "written by threadguard evaluate --calibrate precision=0.9 on olid:dev",
    )
    assert text.startswith(
        "# written by threadguard evaluate --calibrate precision=0.9 on olid:dev\n"
    )
    assert "  toxicity: {threshold: 0.73, action: review, precision: 0.9, recall: 0.41, held_fraction: 0.031}" in text  # fmt: skip
    loaded = yaml.safe_load(text)
    assert loaded["labels"]["spam"] == {
        "threshold": 0.81, "action": "reject", "precision": 0.95, "recall": 0.5, "held_fraction": 0.01,
    }  # fmt: skip
    assert set(loaded["labels"]) == {"toxicity", "spam"}
    assert "# threat: not calibrated" in text


# --------------------------------------------------------------------------- baselines


def _toxic_rows(split: str, n: int) -> list[dict]:
    words = ["you idiot", "stupid troll", "nice article", "thanks for this"]
    return [
        make_example(id=f"{split}{i}", source="x", split=split, text=f"{words[i % 4]} {i}",
                     toxicity={"toxicity": 1.0 if i % 4 < 2 else 0.0, "insult": 0.6 * (i % 4 == 0)})
        for i in range(n)
    ]  # fmt: skip


def test_majority_and_tfidf_baselines() -> None:
    splits = {
        "train": to_dataset(_toxic_rows("train", 12)),
        "test": to_dataset(_toxic_rows("test", 8)),
    }
    test = splits["test"]
    majority = Baseline("majority").score("x", test, lambda name: splits)
    assert majority.toxicity_labels == ("toxicity", "insult")
    assert majority.toxicity is not None
    assert np.allclose(majority.toxicity[0], [0.5, 0.25])  # positive rates; insult 0.6 → 1
    tfidf = Baseline("tfidf").score("x", test, lambda name: splits)
    assert tfidf.toxicity is not None and tfidf.toxicity.shape == (8, 2)
    found = measure("x", test, tfidf, Settings()).result["toxicity"]["toxicity"]
    assert found["roc_auc"] == 1.0


def test_profanity_baseline_scores_every_label_but_spam() -> None:
    data = to_dataset(_toxic_rows("test", 4))
    scores = Baseline("profanity").score("x", data, lambda name: {})
    assert "spam" not in scores.toxicity_labels and "toxicity" in scores.toxicity_labels
    assert scores.toxicity is not None and scores.toxicity[0, 0] > scores.toxicity[2, 0]
    with pytest.raises(ValueError, match="unknown baseline"):
        Baseline("svm")


# --------------------------------------------------------------------------- the command


@pytest.fixture
def saved_tiny_model(tiny_model: ThreadguardModel, tmp_path: Path) -> Path:
    return tiny_model.save_pretrained(tmp_path / "tiny-model", mode="full")


def test_evaluate_command_end_to_end(saved_tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    args = ["evaluate", "--model", str(saved_tiny_model), "--model", "baseline:majority",
            "--model", "baseline:tfidf", "--dataset", "rumoureval2019", "--dataset", "fnc1",
            "--dataset", "olid", "--dataset", "bias_madlibs", "--data-root", str(FIXTURES),
            "--report", str(out), "--bootstrap", "50", "--calibrate", "budget=0.5",
            "--action", "spam=reject", "--tune-thresholds"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "| dataset (rows) | primary metric | tiny-model | baseline:majority |" in result.stdout

    report = json.loads((out / "report.json").read_text())
    assert [m["name"] for m in report["models"]] == ["tiny-model", "baseline:majority", "baseline:tfidf"]  # fmt: skip
    tiny = report["models"][0]
    assert tiny["kind"] == "transformer" and len(tiny["sha256"]) == 64 and tiny["versions"]
    assert report["models"][2]["trained_on"]["bias_madlibs"]["corpus"] == "toxic_spans"
    assert [d["name"] for d in report["datasets"]] == [
        "rumoureval2019:test", "fnc1:test", "olid:test", "bias_madlibs:test",
    ]  # fmt: skip
    assert report["datasets"][0]["rows"] == 4 and report["data_root"] == str(FIXTURES.resolve())
    by = {(r["model"], r["dataset"]): r for r in report["results"]}
    assert len(by) == 12
    fnc = by[("tiny-model", "fnc1:test")]
    assert fnc["stance"]["fnc"]["max_score"] == pytest.approx(0.25 * 3 + 0.75 * 2)
    assert fnc["primary"]["metric"] == "macro-F1" and len(fnc["primary"]["ci"]) == 2
    assert by[("tiny-model", "olid:test")]["primary"]["metric"].startswith("macro-F1 of toxicity")
    for name in ("tiny-model", "baseline:tfidf"):  # dev-tuned binary primaries: OLID only
        tuned = by[(name, "olid:test")]["primary_tuned"]
        assert 0 < tuned["threshold"] < 1 and 0 <= tuned["dev_value"] <= 1
        assert tuned["ci"][0] - 1e-9 <= tuned["value"] <= tuned["ci"][1] + 1e-9
        assert "primary_tuned" not in by[(name, "fnc1:test")]
    bias = by[("baseline:tfidf", "bias_madlibs:test")]["toxicity"]["toxicity"]["bias"]
    assert set(bias) >= {"overall_auc", "final", "subgroups", "power_means"}
    for r in report["results"]:
        value, ci = r["primary"]["value"], r["primary"]["ci"]
        if value is not None and ci is not None:
            assert ci[0] - 1e-9 <= value <= ci[1] + 1e-9
    assert {c["model"] for c in report["comparisons"]} == {"baseline:majority", "baseline:tfidf"}
    assert report["thresholds"]["target"] == {"kind": "budget", "value": 0.5}

    md = (out / "report.md").read_text()
    assert "## Summary" in md and "| rumoureval2019:test (4) | macro-F1 (SDQC) |" in md
    assert "### Unintended bias" in md and "### Most confident errors" in md
    assert report["plots"]
    for rel in report["plots"]:
        assert (out / rel).read_bytes()[:8] == PNG_MAGIC
        assert f"]({rel})" in md
    kinds = {Path(p).name.split("-")[0] for p in report["plots"]}
    assert kinds == {"confusion", "roc", "pr", "reliability"}

    thresholds = yaml.safe_load((out / "thresholds.yaml").read_text())
    assert (out / "thresholds.yaml").read_text().startswith("# written by threadguard evaluate")
    for entry in thresholds["labels"].values():
        assert entry["held_fraction"] <= 0.5 and entry["action"] == "review"
    assert (out / "thresholds" / "baseline-tfidf.yaml").is_file()


def _flat(output: str) -> str:
    """The CLI's error text without rich's box and line wrapping."""
    return " ".join(output.replace("│", " ").split())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "baseline:majority", "--dataset", "nope"], "unknown dataset 'nope'"),
        (
            ["--model", "baseline:majority", "--dataset", "bias_madlibs:train"],
            "has no 'train' split",
        ),
        (["--model", "baseline:magic", "--dataset", "olid"], "unknown baseline 'magic'"),
        (["--model", "no/such-model", "--dataset", "olid"], "is not a folder, not a baseline"),
        (
            ["--model", "baseline:majority", "--dataset", "olid", "--calibrate", "p=1"],
            "precision=P",
        ),
    ],
)
def test_evaluate_command_errors(args: list[str], message: str, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["evaluate", *args, "--data-root", str(FIXTURES), "--report", str(tmp_path / "r")]
    )
    assert result.exit_code == 2
    assert message in _flat(result.output)


def test_not_a_threadguard_model_folder(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["evaluate", "--model", str(tmp_path), "--dataset", "olid", "--data-root", str(FIXTURES)],
    )
    assert result.exit_code == 2 and "not a saved threadguard model" in _flat(result.output)


@pytest.mark.slow
@pytest.mark.skipif(not (default_data_root() / "olid").is_dir(), reason="no ../shared/data/olid")
def test_baselines_on_real_olid(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["evaluate", "--model", "baseline:majority", "--model", "baseline:tfidf", "--dataset",
         "olid", "--report", str(tmp_path), "--bootstrap", "100", "--no-plots"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    majority, tfidf = (r["primary"]["value"] for r in report["results"])
    assert majority < 0.5 < tfidf  # all NOT gives macro-F1 ≈ 0.42
