"""The command line, as a user runs it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from classifier.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_parse_seeds_to_stdout() -> None:
    result = runner.invoke(app, ["parse", str(ROOT / "seeds")])
    assert result.exit_code == 0, result.output
    threads = [json.loads(line) for line in result.stdout.splitlines()]
    assert [len(t["comments"]) for t in threads] == [3, 2, 0, 0, 0]
    assert threads[1]["comments"][1]["author"] == "Paul Woodward"
    # 3 of the seed pages have no comments: the count says so (it read "5 threads")
    assert "5 threads (2 with comments), 5 comments, 0 errors from 5 file(s)" in result.stderr
    assert "the comment section is empty" in result.stderr
    assert "README.md (not a supported input type)" in result.stderr


def test_parse_to_each_format(tmp_path: Path) -> None:
    for fmt in ("jsonl", "csv", "parquet"):
        out = tmp_path / f"seeds.{fmt}"
        result = runner.invoke(app, ["parse", str(ROOT / "seeds"), "-o", str(out), "-f", fmt])
        assert result.exit_code == 0, result.output
        again = runner.invoke(app, ["parse", str(out)])
        assert again.exit_code == 0, again.output
        assert [len(json.loads(x)["comments"]) for x in again.stdout.splitlines()] == [
            3,
            2,
            0,
            0,
            0,
        ]
    assert (
        pq.read_table(tmp_path / "seeds.parquet").num_rows == 5 + 3
    )  # 5 comments, 3 empty threads


def test_errors_go_to_a_file_and_set_the_exit_code(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"thread_id": "t", "comment_id": "1", "text": "fine"}\n{"broken\n')
    errors = tmp_path / "errors.jsonl"
    result = runner.invoke(app, ["parse", str(src), "--errors", str(errors)])
    assert result.exit_code == 1
    (row,) = [json.loads(x) for x in errors.read_text().splitlines()]
    assert row["location"] == "line 2" and row["source"] == str(src)
    assert "malformed JSON" in row["error"]
    assert "1 threads, 1 comments, 1 errors" in result.stderr


def test_stdin_and_column_override() -> None:
    data = '{"story": "s1", "CONTENT": "hello", "comment_id": "1"}\n'
    result = runner.invoke(
        app, ["parse", "-", "-c", "thread_id=story", "-c", "text=CONTENT"], input=data
    )
    assert result.exit_code == 0, result.output
    (thread,) = [json.loads(x) for x in result.stdout.splitlines()]
    assert thread["id"] == "s1" and thread["comments"][0]["text"] == "hello"


def test_usage_errors_are_clear(tmp_path: Path) -> None:
    result = runner.invoke(app, ["parse", str(ROOT / "seeds"), "-f", "parquet"])
    assert result.exit_code == 2
    assert "Parquet output needs a file" in result.output
    result = runner.invoke(app, ["parse", str(ROOT / "seeds"), "-c", "nonsense"])
    assert result.exit_code == 2
    assert "expected FIELD=COLUMN" in result.output


@pytest.mark.parametrize(
    "command", ["", "score", "parse", "evaluate", "serve", "train", "calibrate", "fit-offsets"]
)
def test_help_reads_as_a_shell_user_expects(command: str) -> None:
    """No Python types (<bool>, <list[str]>), no Typer braces round a required argument, and a
    docstring's paragraph not broken where its source line ended."""
    result = runner.invoke(app, [*command.split(), "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    usage = next(line for line in result.output.splitlines() if "Usage:" in line)
    assert "{" not in usage and "}" not in usage, usage
    assert "<bool>" not in result.output and "list[" not in result.output
    # every parameter's help, whole (markdown markup must not eat a word of it, e.g. <time>)
    flat_output = _squeezed(result.output)
    group = typer.main.get_command(app)
    cmd = group.commands[command] if command else group  # type: ignore[attr-defined]
    for param in cmd.params:
        for word in (param.help or "").split():  # the type column may wrap between lines
            assert _squeezed(word) in flat_output, (param.name, word)
    if command == "score":
        assert usage.split() == ["Usage:", "threadguard", "score", "[OPTIONS]", "PATH..."]
        assert re.search(r"--column\s+-c\s+FIELD=COLUMN\s", result.output), result.output
        assert "Exit code 1 when some records were errors." in result.output  # one line at 100


def _squeezed(text: str) -> str:
    """Text without whitespace, box lines or code quotes: what survives the help's wrapping."""
    return re.sub(r"[\s│`]", "", text)


def test_version_names_the_package_and_the_shipped_model() -> None:
    from typer.testing import CliRunner

    from classifier import DEFAULT_MODEL_VERSION, __version__
    from classifier.cli import app

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert (
        result.stdout.strip()
        == f"threadguard {__version__} (shipped model {DEFAULT_MODEL_VERSION})"
    )
    # the installed package's metadata reads the same one definition (pyproject's dynamic version)
    import importlib.metadata

    assert importlib.metadata.version("threadguard") == __version__


def test_serve_without_options_runs_the_settings_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """``threadguard serve``'s defaults are ServiceSettings' (one definition, in
    classifier/moderation/settings.py): only the secret and the thread count are its own."""
    import uvicorn
    from fastapi import FastAPI

    import classifier.moderation.app as hook
    from classifier.moderation.settings import DEFAULTS

    seen: list[Any] = []
    monkeypatch.setattr(hook, "create_app", lambda s: seen.append(s) or FastAPI())
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)
    for name in ("THREADGUARD_HMAC_SECRET", "THREADGUARD_CORAL_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("THREADGUARD_TOKEN", "t")
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 0, result.output
    (chosen,) = seen
    assert chosen == DEFAULTS.replace(token="t", threads=chosen.threads)
    assert chosen.threads is not None and chosen.threads >= 1


def test_help_lists_score_first() -> None:
    """`threadguard --help` listed the commands as imported, evaluate first."""
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    commands = re.findall(r"^│ ([a-z][a-z-]+) ", result.stdout, flags=re.M)
    assert commands[:3] == ["score", "parse", "serve"], commands
    assert {"train", "evaluate"} <= set(commands)
