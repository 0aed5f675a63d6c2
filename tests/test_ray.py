"""``threadguard score --engine ray``: the local engine's rows and error rows, on Ray Data.

The tests marked ``ray`` need the ray extra (``pip install -e ".[ray]"``) and skip
without it; they share one local Ray instance with 2 CPUs and score with a tiny
random model, so the whole file runs in about a minute on two cores. The test
that the local engine never imports ray runs everywhere.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

from classifier.cli import app
from classifier.model.config import ModelConfig
from classifier.model.network import ThreadguardModel
from classifier.scoring import ScoreRun

ROOT = Path(__file__).resolve().parents[1]
#: Comments in the generated archive: threads of 1 to 40 comments, about half replies.
ARCHIVE_COMMENTS = 20_000
WORKERS = 2
runner = CliRunner()


@pytest.fixture(scope="module")
def model_dir(tiny_encoder_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random threadguard model, saved once for the module."""
    torch.manual_seed(0)
    config = ModelConfig(encoder=str(tiny_encoder_dir), max_length=64, min_target_tokens=16)
    path = tmp_path_factory.mktemp("ray-model") / "model"
    ThreadguardModel.from_encoder(config).save_pretrained(path)
    return path


def _archive(path: Path, n: int, seed: int = 7) -> int:
    """A flat Parquet archive of ``n`` comment records (threads with replies and some bad
    records: empty texts, dangling parents, repeated ids); returns the bad ones' count."""
    rng = random.Random(seed)
    words = [
        "the",
        "minister",
        "said",
        "police",
        "vote",
        "war",
        "peace",
        "fake",
        "news",
        "source",
        "proof",
        "idiot",
        "love",
    ]
    rows: list[dict[str, Any]] = []
    bad = 0
    thread = 0
    while len(rows) < n:
        size = min(rng.randint(1, 40), n - len(rows))
        ids: list[str] = []
        for k in range(size):
            cid = f"c{k}"
            parent = rng.choice(ids) if ids and rng.random() < 0.5 else None
            text = " ".join(rng.choices(words, k=rng.randint(1, 60)))
            roll = rng.random()
            if roll < 0.004:
                text, bad = "   ", bad + 1
            elif roll < 0.006:
                parent, bad = "nowhere", bad + 1
            elif roll < 0.008 and ids:
                cid, bad = ids[0], bad + 1  # the same id twice in one thread
            rows.append(
                {
                    "thread_id": f"t{thread}",
                    "article_title": f"Article {thread}",
                    "article_body": "The minister said the vote was fake. " * rng.randint(0, 3),
                    "comment_id": cid,
                    "parent_id": parent,
                    "author": f"user{rng.randint(0, 500)}",
                    "text": text,
                }
            )
            ids.append(cid)
        thread += 1
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=4096)
    return bad


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], int]:
    """The seed pages, the generated archive and a JSONL file with malformed lines."""
    folder = tmp_path_factory.mktemp("ray-inputs")
    bad = _archive(folder / "archive.parquet", ARCHIVE_COMMENTS)
    lines = [
        json.dumps({"thread_id": "j", "comment_id": "1", "text": "A fine piece."}),
        "not json",
        json.dumps({"thread_id": "j", "comment_id": "2", "parent_id": "1", "text": "Agree."}),
        json.dumps({"thread_id": "j", "comment_id": "3", "text": ""}),
    ]
    (folder / "mixed.jsonl").write_text("\n".join(lines) + "\n")
    return [str(ROOT / "seeds"), str(folder / "archive.parquet"), str(folder / "mixed.jsonl")], bad


@pytest.fixture(scope="module")
def local_run(
    model_dir: Path, inputs: tuple[list[str], int], tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[dict[str, Any]], str, Any]:
    """The local engine's rows, error file text and summary for the same inputs."""
    folder = tmp_path_factory.mktemp("local")
    run = ScoreRun.create(model_dir, backend="onnx")
    summary = run.run(inputs[0], folder / "rows.jsonl", "jsonl", errors_path=folder / "err.jsonl")
    rows = [json.loads(line) for line in (folder / "rows.jsonl").open()]
    return rows, (folder / "err.jsonl").read_text(), summary


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[Any]:
    """One local Ray with 2 CPUs for the module (score_with_ray uses a running Ray)."""
    ray = pytest.importorskip("ray", reason="the ray extra is not installed")
    pytest.importorskip("ray.data", reason="the ray extra is not installed")
    ray.init(num_cpus=WORKERS, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _read_parts(folder: Path) -> list[dict[str, Any]]:
    from classifier.ray_engine import part_files

    return [json.loads(line) for path in part_files(folder) for line in path.open()]


def _assert_same_rows(ray_rows: list[dict[str, Any]], local_rows: list[dict[str, Any]]) -> None:
    assert len(ray_rows) == len(local_rows)
    for got, want in zip(ray_rows, local_rows, strict=True):
        assert set(got) == set(want)
        for key in ("thread_id", "comment_id", "parent_id", "author", "text", "model"):
            assert got[key] == want[key]
        assert got["stance"]["label"] == want["stance"]["label"]
        assert got["stance"]["target"] == want["stance"]["target"]
        for group, ours, theirs in (
            ("stance", got["stance"]["scores"], want["stance"]["scores"]),
            ("toxicity", got["toxicity"], want["toxicity"]),
        ):
            assert set(ours) == set(theirs), group
            for label, p in theirs.items():
                assert abs(ours[label] - p) <= 1e-5, (got["comment_id"], group, label)


@pytest.mark.ray
def test_ray_rows_are_the_local_rows(
    ray_instance: Any,
    model_dir: Path,
    inputs: tuple[list[str], int],
    local_run: tuple[list[dict[str, Any]], str, Any],
    tmp_path: Path,
) -> None:
    from classifier.ray_engine import part_files, score_with_ray

    paths, bad = inputs
    local_rows, local_errors, local_summary = local_run
    out = tmp_path / "scores"
    summary = score_with_ray(
        paths,
        out,
        "jsonl",
        errors_path=tmp_path / "err.jsonl",
        model=model_dir,
        backend="onnx",
        workers=WORKERS,
        part_comments=ARCHIVE_COMMENTS // 3,  # several parts: several files, in order
    )
    names = [p.name for p in part_files(out)]
    assert len(names) >= 3 and names == [f"part-{i:05d}.jsonl" for i in range(len(names))]
    rows = _read_parts(out)
    _assert_same_rows(rows, local_rows)
    # the same error rows, in the same order
    assert (tmp_path / "err.jsonl").read_text() == local_errors
    errors = local_errors.splitlines()
    # the archive's bad records, the malformed line and the empty text in mixed.jsonl
    assert len(errors) == bad + 2 and summary.errors == local_summary.errors == len(errors)
    # every input comment is a row or an error row
    assert summary.comments == local_summary.comments == len(rows)
    archive = [r for r in rows if r["thread_id"].startswith("t")]
    assert len(archive) + bad == ARCHIVE_COMMENTS
    assert summary.scored == len(rows) and summary.threads == local_summary.threads
    assert {r["stance"]["target"] for r in archive} == {"article", "parent"}


@pytest.mark.ray
def test_a_killed_worker_still_yields_every_row_once(
    ray_instance: Any,
    model_dir: Path,
    inputs: tuple[list[str], int],
    local_run: tuple[list[dict[str, Any]], str, Any],
    tmp_path: Path,
) -> None:
    from classifier.ray_engine import score_with_ray

    marker = tmp_path / "killed"
    out = tmp_path / "scores"
    score_with_ray(
        inputs[0],
        out,
        "jsonl",
        errors_path=tmp_path / "err.jsonl",
        model=model_dir,
        backend="onnx",
        workers=WORKERS,
        fault_marker=str(marker),
    )
    assert marker.exists(), "no worker was killed"  # a worker process exited mid-run
    rows = _read_parts(out)
    keys = [(r["thread_id"], r["comment_id"]) for r in rows]
    assert len(keys) == len(set(keys))  # nothing twice
    _assert_same_rows(rows, local_run[0])  # nothing lost, same order and scores


@pytest.mark.ray
def test_cli_engine_ray_writes_a_parquet_folder(
    ray_instance: Any, model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "scores"
    args = ["score", str(ROOT / "seeds"), "-m", str(model_dir), "--backend", "onnx"]
    result = runner.invoke(app, [*args, "--engine", "ray", "--workers", "2", "-o", str(out),
                                 "-f", "parquet", "--part-comments", "2"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "scored 5 comments" in result.stderr
    parts = sorted(out.glob("part-*.parquet"))
    assert len(parts) >= 2 and f"{len(parts)} part file(s)" in result.stderr
    table = [row for part in parts for row in pq.read_table(part).to_pylist()]
    local = tmp_path / "local.parquet"
    assert runner.invoke(app, [*args, "-o", str(local), "-f", "parquet"]).exit_code == 0
    want = pq.read_table(local).to_pylist()
    assert [r["comment_id"] for r in table] == [r["comment_id"] for r in want]
    assert table[0].keys() == want[0].keys()
    # a folder that already holds parts is refused, as are the table format and no --output
    again = runner.invoke(app, [*args, "--engine", "ray", "-o", str(out), "-f", "parquet"])
    assert again.exit_code == 2 and "part files" in again.output
    assert runner.invoke(app, [*args, "--engine", "ray", "-f", "table"]).exit_code == 2
    assert runner.invoke(app, [*args, "--engine", "ray"]).exit_code == 2


@pytest.mark.ray
def test_cli_starts_and_stops_its_own_local_ray(
    ray_instance: Any, model_dir: Path, tmp_path: Path
) -> None:
    """Without --ray-address, a fresh process starts a local Ray and shuts it down."""
    out = tmp_path / "scores"
    code = "from classifier.cli import app; app()"
    args = ["score", str(ROOT / "seeds"), "-m", str(model_dir), "--backend", "onnx",
            "--engine", "ray", "--workers", "1", "-o", str(out)]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "Started a local Ray instance" in done.stderr and "scored 5 comments" in done.stderr
    assert len((out / "part-00000.jsonl").read_text().splitlines()) == 5


def test_the_local_engine_never_imports_ray(model_dir: Path, tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from classifier.cli import app\n"
        f"r = CliRunner().invoke(app, ['score', {str(ROOT / 'seeds')!r}, '-m', "
        f"{str(model_dir)!r}, '-f', 'jsonl', '-o', {str(tmp_path / 'o.jsonl')!r}])\n"
        "assert r.exit_code == 0, r.output\n"
        "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    # the last line: tokenizers < 0.21 prints a warning about the tiny test vocabulary first
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert len((tmp_path / "o.jsonl").read_text().splitlines()) == 5
