"""The speed benchmark's workload and report (what it measures is not timed here)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from tests.scripts import load_benchmark

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


load_benchmark(
    "speed"
)  # the script; it puts benchmarks/ on sys.path for its parts, the _speed package
speed_report = importlib.import_module("_speed.report")
speed_systems = importlib.import_module("_speed.systems")
speed_workload = importlib.import_module("_speed.workload")


def test_synthetic_workload_is_reproducible_and_every_item_has_a_target(tmp_path: Path) -> None:
    first, origin = speed_workload.make_workload(50, seed=3, root=tmp_path / "none")
    again, _ = speed_workload.make_workload(50, seed=3, root=tmp_path / "none")
    other, _ = speed_workload.make_workload(50, seed=4, root=tmp_path / "none")
    assert origin.startswith("SYNTHETIC")
    assert first == again and first != other
    assert all(it["text"].strip() and it["target"].strip() for it in first)


@pytest.mark.slow
@pytest.mark.skipif(not DATA.is_dir(), reason="needs ../shared/data")
def test_corpus_workload_has_real_lengths_with_long_comments() -> None:
    items, origin = speed_workload.make_workload(400, seed=0, root=DATA, long_share=0.05)
    assert origin.startswith("corpora")
    words = sorted(len(it["text"].split()) for it in items)
    assert words[len(words) // 2] < 60  # most comments are short ...
    assert sum(w >= speed_workload.LONG_WORDS for w in words) >= 10  # ... and some are long
    assert all(it["target"].strip() for it in items)


def test_goals_compare_against_the_bert_peer() -> None:
    ours = speed_report.Row(
        "threadguard (int8)", {1: 100.0, 2: 180.0}, {1: 9.0, 2: 8.0}, {}, 1.2, 400.0
    )
    bert = speed_report.Row(
        "bert-base (Detoxify original arch.)", {1: 20.0, 2: 25.0}, {1: 50.0}, {}
    )
    lines = speed_report.goals([ours, bert], [1, 2], "int8")
    assert "7.2×" in lines[0] and lines[0].endswith("met")
    assert all(line.endswith("met") for line in lines)
    slow = speed_report.Row("threadguard (int8)", {1: 10.0, 2: 20.0}, {1: 30.0}, {}, 5.0, 900.0)
    assert all(line.endswith("MISSED") for line in speed_report.goals([slow, bert], [1, 2], "int8"))
    table = speed_report.ratio_table([ours, bert], [1, 2])
    assert "7.20×" in table  # throughput at 2 threads, 180 / 25


def test_thread_position_reads_the_adapters_fields() -> None:
    """Source post, direct reply and reply to a reply, as the RumourEval adapter builds them."""
    from training.corpora import read_corpus

    thread_position = load_benchmark("thread_position")
    rows = {
        row["id"]: row
        for split in read_corpus("rumoureval2019", ROOT / "tests/fixtures/corpora").splits.values()
        for row in split
    }
    ids = ["twitter:1001", "twitter:1002", "twitter:1003", "reddit:abc123", "reddit:c1"]
    picked = [rows[i] for i in ids]
    where = thread_position.positions(
        [r["target"] for r in picked], [r["context"] for r in picked], [r["text"] for r in picked]
    )
    assert list(where) == ["source", "direct", "deeper", "source", "direct"]


policy_thresholds = load_benchmark("policy_thresholds")


def test_hold_figures_count_what_a_threshold_holds() -> None:
    y = np.array([1, 1, 0, 0, 1])
    prob = np.array([0.9, 0.4, 0.8, 0.1, 0.7], dtype=np.float32)
    # held: 0.9 (hit), 0.8 (miss), 0.7 (hit) -> 3 of 5, precision 2/3, recall 2/3
    assert policy_thresholds.hold_figures(y, prob, 0.7) == (
        "≥0.70: held 0.600, precision 0.67, recall 0.67"
    )
    # nothing held: no precision to give, recall 0
    assert policy_thresholds.hold_figures(y, prob, 0.95) == (
        "≥0.95: held 0.000, precision -, recall 0.00"
    )


seed_ensemble = load_benchmark("seed_ensemble")


def test_seed_ensemble_averages_members_before_scoring() -> None:
    # Three "models" that each get one of three rows wrong, less confidently than the
    # others get it right; any two of them averaged get every row right.
    gold = np.array([1, 1, 0])
    prob = {(1, True): 0.9, (1, False): 0.3, (0, True): 0.1, (0, False): 0.7}  # (gold, right)
    members = []
    for wrong in range(3):
        p = np.array([prob[(int(g), i != wrong)] for i, g in enumerate(gold)])
        members.append((np.zeros((3, 1)), p[:, None]))

    def accuracy(stance: np.ndarray, toxicity: np.ndarray) -> float:
        return float(np.mean((toxicity[:, 0] >= 0.5) == gold))

    single = seed_ensemble.ensembles(members, 1, accuracy)
    assert (single.count, single.mean, single.high) == (3, 2 / 3, 2 / 3)
    pairs = seed_ensemble.ensembles(members, 2, accuracy)
    assert (pairs.count, pairs.low, pairs.mean) == (3, 1.0, 1.0)
    assert seed_ensemble.ensembles(members, 2, accuracy, max_combinations=2).count == 2
    with pytest.raises(ValueError, match="ensemble size 4"):
        seed_ensemble.ensembles(members, 4, accuracy)


def test_speed_names_the_no_spans_variant() -> None:
    assert speed_systems.system_title("ours:onnx") == "threadguard (onnx)"
    assert speed_systems.system_title("ours:onnx:no-spans") == "threadguard (onnx, no-spans)"
