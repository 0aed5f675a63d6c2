"""Batch scoring: rows, targets, moderation, formats, accounting and bounded memory."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from classifier.cli import app
from classifier.model.network import ThreadguardModel
from classifier.scoring import ScoreRun

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture
def model_dir(tiny_model: ThreadguardModel, tmp_path: Path) -> Path:
    path = tmp_path / "model"
    tiny_model.save_pretrained(path)
    return path


def _score(args: list[str]) -> list[dict]:
    result = runner.invoke(app, ["score", *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_score_seeds(model_dir: Path, tiny_model: ThreadguardModel) -> None:
    rows = _score([str(ROOT / "seeds"), "--model", str(model_dir), "-f", "jsonl"])
    assert [(r["author"], r["stance"]["target"]) for r in rows] == [
        ("The Sanity Inspector", "article"),
        ("hefternofen", "article"),
        ("Vanfield", "article"),
        ("Robert", "article"),
        ("Paul Woodward", "article"),
    ]
    for row in rows:
        assert set(row["stance"]["scores"]) == set(tiny_model.stance_labels)
        assert row["stance"]["label"] == max(
            row["stance"]["scores"], key=row["stance"]["scores"].get
        )
        assert set(row["toxicity"]) == set(tiny_model.toxicity_labels)
        assert all(0.0 <= v <= 1.0 for v in row["toxicity"].values())
        assert row["model"]["name"] == "model" and len(row["model"]["version"]) == 12


def test_replies_are_scored_against_their_parent(model_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "t.jsonl"
    rows = [
        {"thread_id": "t", "comment_id": "1", "text": "Great article.", "article_title": "Dams"},
        {"thread_id": "t", "comment_id": "2", "parent_id": "1", "text": "No it is not."},
    ]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = _score([str(src), "--model", str(model_dir)])
    assert [(r["comment_id"], r["parent_id"], r["stance"]["target"]) for r in out] == [
        ("1", None, "article"),
        ("2", "1", "parent"),
    ]


def test_moderate_adds_decisions(model_dir: Path, tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("labels:\n  spam: {threshold: 0.0, action: reject}\n")
    rows = _score([str(ROOT / "seeds"), "--model", str(model_dir), "--policy", str(policy)])
    assert {r["decision"] for r in rows} == {"reject"}
    assert rows[0]["reasons"][0]["label"] == "spam"
    policy.write_text("labels:\n  spam: {threshold: 1.0, action: reject}\n")
    rows = _score(
        [str(ROOT / "seeds"), "--model", str(model_dir), "--moderate", "--policy", str(policy)]
    )
    assert {r["decision"] for r in rows} == {"approve"} and rows[0]["reasons"] == []


def test_csv_and_parquet_are_flat(model_dir: Path, tmp_path: Path) -> None:
    for fmt in ("csv", "parquet"):
        out = tmp_path / f"scores.{fmt}"
        result = runner.invoke(
            app,
            ["score", str(ROOT / "seeds"), "--model", str(model_dir), "-o", str(out), "-f", fmt],
        )
        assert result.exit_code == 0, result.output
    table = pq.read_table(tmp_path / "scores.parquet").to_pylist()
    assert len(table) == 5
    assert {"stance", "stance_target", "stance_support", "toxicity", "spam", "model"} <= set(
        table[0]
    )
    assert (tmp_path / "scores.csv").read_text().count("\n") >= 6


def test_table_output_is_for_the_terminal(model_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["score", str(ROOT / "seeds"), "--model", str(model_dir), "-f", "table"]
    )
    assert result.exit_code == 0, result.output
    # at CliRunner's 80 columns the scores stack in one column (tests/test_score_table.py)
    assert "Sanity" in result.stdout and "scores" in result.stdout
    bad = runner.invoke(
        app,
        [
            "score",
            str(ROOT / "seeds"),
            "-m",
            str(model_dir),
            "-f",
            "table",
            "-o",
            str(tmp_path / "x"),
        ],
    )
    assert bad.exit_code == 2


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["score", str(ROOT / "seeds"), "--model", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "no threadguard model directory" in result.output


def _generated(path: Path, n_comments: int, bad_every: int = 0) -> int:
    """A flat JSONL file of ``n_comments`` records in threads of 20; returns the bad count."""
    bad = 0
    with path.open("w") as fh:
        for i in range(n_comments):
            thread, k = divmod(i, 20)
            row = {"thread_id": f"t{thread}", "comment_id": str(k), "article_title": "A title",
                   "text": f"comment number {i} " + "words " * (i % 30)}  # fmt: skip
            if k:
                row["parent_id"] = str(k - 1)
            if bad_every and i % bad_every == 7:
                row["text"] = ""
                bad += 1
                fh.write(json.dumps(row) + "\n")
                continue
            fh.write(json.dumps(row) + "\n")
    return bad


def test_ten_thousand_comments_accounted_for_in_bounded_memory(
    model_dir: Path, tmp_path: Path
) -> None:
    run = ScoreRun.create(model_dir, batch_size=64)
    peaks = {}
    for n in (2_000, 10_000):
        src = tmp_path / f"in{n}.jsonl"
        bad = _generated(src, n, bad_every=1000)
        errors = tmp_path / f"errors{n}.jsonl"
        out = tmp_path / f"out{n}.jsonl"
        tracemalloc.start()
        summary = run.run([str(src)], out, "jsonl", errors_path=errors)
        peaks[n] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        scored = sum(1 for _ in out.open())
        error_rows = sum(1 for _ in errors.open())
        # every input comment is a scored row or an error row; the bad ones are the errors
        assert scored + error_rows == n
        assert error_rows == bad == summary.errors
        assert summary.scored == scored
    # five times the input, about the same memory: nothing accumulates per comment
    assert peaks[10_000] < 1.5 * peaks[2_000] + 1_000_000, peaks


def test_error_rows_keep_their_place(model_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "mixed.jsonl"
    src.write_text('{"thread_id": "a", "comment_id": "1", "text": "ok"}\nnot json\n')
    result = runner.invoke(app, ["score", str(src), "--model", str(model_dir)])
    assert result.exit_code == 1
    assert len(result.stdout.splitlines()) == 1
    assert "line 2" in result.stderr and "malformed JSON" in result.stderr


def test_backend_is_chosen_and_recorded(model_dir: Path) -> None:
    reference = _score([str(ROOT / "seeds"), "--model", str(model_dir), "--backend", "torch"])
    quantized = _score([str(ROOT / "seeds"), "--model", str(model_dir), "--backend", "int8"])
    assert {r["model"]["backend"] for r in reference} == {"torch"}
    assert {r["model"]["backend"] for r in quantized} == {"int8"}
    for ref, q in zip(reference, quantized, strict=True):
        assert ref["comment_id"] == q["comment_id"]
        for label, p in ref["toxicity"].items():
            assert abs(p - q["toxicity"][label]) <= 0.03
    result = runner.invoke(app, ["score", str(ROOT / "seeds"), "--backend", "tensorrt"])
    assert result.exit_code == 2 and "tensorrt" in result.output


def test_a_first_onnx_run_says_it_exports_and_counts_the_load(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("onnxruntime")
    from classifier.model.loading import exports_pending

    monkeypatch.setenv("THREADGUARD_CACHE", str(tmp_path / "cache"))
    assert exports_pending(model_dir, "onnx") == [model_dir]
    assert exports_pending(model_dir, "torch") == []
    args = ["score", "seeds/", "--model", str(model_dir), "--backend", "onnx", "-f", "jsonl"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "preparing the model for ONNX Runtime (1 export(s)" in first.stderr
    assert "; model loaded in " in first.stderr
    assert exports_pending(model_dir, "onnx") == []  # cached now
    second = runner.invoke(app, args)
    assert "preparing the model" not in second.stderr
