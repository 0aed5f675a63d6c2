"""The speed benchmark's workloads and report (what it measures is not timed here)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from tests.scripts import load_benchmark

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


# the script; it puts benchmarks/ on sys.path for its parts, the _speed package
speed = load_benchmark("speed")
speed_report = importlib.import_module("_speed.report")
speed_systems = importlib.import_module("_speed.systems")
speed_threads = importlib.import_module("_speed.threads")
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


def check_thread_shape(work: list, size: int) -> None:
    """Every thread: ``size`` comments under one article, whose title and lead is the
    target of every top-level comment; each reply names an earlier comment of its thread
    and takes that comment's text as its target (cut at the library's word limit)."""
    from classifier.targets import trim_words

    for w in work:
        comments = w.thread.comments
        assert len(comments) == len(w.items) == size
        lead = trim_words(w.thread.article.lead)
        assert lead.startswith(w.thread.article.title) and lead.strip()
        seen: dict[str, str] = {}
        for comment, item in zip(comments, w.items, strict=True):
            if comment.parent_id is None:
                assert not item["reply"] and item["target"] == lead and item["context"] == ""
            else:
                assert comment.parent_id in seen  # an earlier comment of the same thread
                assert item["reply"] and item["target"] == trim_words(seen[comment.parent_id])
                assert item["context"] == w.thread.article.title
            seen[comment.id] = comment.text
        assert {it["target"] for it in w.items if not it["reply"]} == {lead}
        assert comments[0].parent_id is None


def test_thread_workload_is_threads_under_one_article_with_replies(tmp_path: Path) -> None:
    work, origin = speed_threads.make_threads(120, 50, seed=3, root=tmp_path / "none")
    assert origin.startswith("SYNTHETIC")
    assert len(work) == 3  # ceil(120 / 50)
    check_thread_shape(work, 50)
    replies = sum(it["reply"] for w in work for it in w.items)
    assert 0.2 < replies / 150 < 0.5  # about a third (REPLY_SHARE)
    assert len({w.thread.article.title + w.thread.article.body for w in work}) > 1
    again, _ = speed_threads.make_threads(120, 50, seed=3, root=tmp_path / "none")
    other, _ = speed_threads.make_threads(120, 50, seed=4, root=tmp_path / "none")
    assert [w.items for w in again] == [w.items for w in work]
    assert [w.items for w in other] != [w.items for w in work]
    bare = speed_threads.without_targets(work[0].items)
    assert [b["text"] for b in bare] == [it["text"] for it in work[0].items]
    assert all(b["target"] == b["context"] == "" and not b["reply"] for b in bare)


@pytest.mark.slow
@pytest.mark.skipif(not DATA.is_dir(), reason="needs ../shared/data")
def test_corpus_threads_are_news_comments_under_an_fnc1_article() -> None:
    work, origin = speed_threads.make_threads(100, 50, seed=0, root=DATA)
    assert origin.startswith("corpora")
    check_thread_shape(work, 50)
    words = sorted(len(it["text"].split()) for w in work for it in w.items)
    assert 10 < words[len(words) // 2] < 80  # news comments, not tweets or articles


def test_quick_run_prints_the_thread_workload_rows(
    span_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    """A --quick run on a tiny two-pass model, both workloads: the thread rows, their ratio
    to a peer and the target-encoding share are printed (the fresh processes that measure
    cold start and memory are stood in for: they are not what this checks)."""
    bench: ModuleType = speed
    monkeypatch.setattr(bench, "run_child", lambda *a, **k: {"cold_s": 0.5, "rss_mb": 100.0})
    report = tmp_path / "report.json"
    args = ["--quick", "--model", str(span_folder), "--backends", "torch"]
    args += ["--peers", "profanity", "--threads", "1", "--no-scaling"]
    args += ["--data-root", str(tmp_path / "none"), "--work-dir", str(tmp_path / "work")]
    assert bench.main([*args, "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert "thread workload: 1 threads of 50 comments under one article" in out
    header = next(line for line in out.splitlines() if line.startswith("| system"))
    assert "mixed comments/s (1 thr)" in header and "thread comments/s (1 thr)" in header
    ours = next(line for line in out.splitlines() if line.startswith("| threadguard (torch) |"))
    assert "n/a" not in ours.split("|")[2]  # the thread column holds a figure
    assert "thread throughput × alt-profanity-check" in out
    assert "target encoding, thread workload (torch, 1 thread(s)" in out
    assert "of the stance pass" in out  # the tiny model has a comment model
    share = json.loads(report.read_text())["thread_workload"]["target_share"]
    assert share["comments"] == 50 and share["tokens_scored"] > share["tokens_no_target"]
    capsys.readouterr()
    assert bench.main([*args, "--workload", "mixed"]) == 0
    out = capsys.readouterr().out
    assert "thread workload" not in out and "thread comments/s" not in out


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
    assert "thread throughput" not in table  # not measured


def test_thread_workload_ratios_and_issue_38_targets() -> None:
    onnx = speed_report.Row("threadguard (onnx)", {1: 40.0, 2: 70.0}, {1: 9.0}, {}, 0.3, 300.0)
    onnx.thread_throughput = {1: 50.0, 2: 90.0}
    bert = speed_report.Row("bert-base (Detoxify original arch.)", {1: 8.0, 2: 10.0}, {1: 50.0})
    bert.thread_throughput = {1: 8.0, 2: 10.0}
    table = speed_report.ratio_table([onnx, bert], [1, 2])
    assert "mixed throughput × bert-base" in table and "thread throughput × bert-base" in table
    assert "| 7.00× | 9.00× | 0.18× |" in table  # mixed, thread at 2 threads; p50 at 1
    lines = speed_report.speedup_targets([onnx, bert], "onnx")
    assert lines[0].endswith(
        "mixed workload throughput vs bert-base 7.0× (issue 38 target ≥ 6×): met"
    )
    assert lines[1].endswith(
        "thread workload throughput vs bert-base 9.0× (issue 38 target ≥ 8×): met"
    )
    onnx.thread_throughput = {2: 70.0}
    assert speed_report.speedup_targets([onnx, bert], "onnx")[1].endswith("MISSED")
    assert speed_report.speedup_targets([onnx, bert], "torch") == []  # no target set for it


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
