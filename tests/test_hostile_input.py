"""Hostile input through ``threadguard parse`` and ``score``: nothing lost, nothing crashes.

Regression tests for issue 27's batch defects (1-5), then property-based fuzzing of
the readers and the scoring pipeline: for every generated file, input records ==
output rows + error rows, nothing raises, and every output is writable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from classifier.cli import app
from classifier.io.ingest import parse_threads
from classifier.io.readers import read_file
from classifier.labels import STANCE_LABELS, TOXICITY_LABELS
from classifier.model.network import ThreadguardModel
from classifier.schema import ErrorRecord, ModelInfo, Thread
from classifier.scoring import ScoreRun
from tests.hostile import csv_rows, deep, fuzz_settings, jsonl_lines

runner = CliRunner()


def account(items: list[Any]) -> tuple[int, list[ErrorRecord]]:
    """Comments in the yielded threads, and the error records."""
    comments = sum(len(i.comments) for i in items if isinstance(i, Thread))
    errors = [i for i in items if isinstance(i, ErrorRecord)]
    assert len(errors) + sum(isinstance(i, Thread) for i in items) == len(items)
    return comments, errors


def flat_row(i: int, thread: str = "t", **kw: Any) -> str:
    return json.dumps({"thread_id": thread, "comment_id": str(i), "text": f"comment {i}", **kw})


class FakePredictor:
    """Stands in for the model in the scoring pipeline: fixed scores, any text."""

    toxicity_labels = TOXICITY_LABELS
    stance_labels = STANCE_LABELS
    model_version = "fake-000000000000"
    backend = "torch"

    def predict(self, items: list[Any]) -> list[dict[str, Any]]:
        for item in items:  # what the tokenizer needs: real strings, encodable as UTF-8
            for key in ("text", "target", "context"):
                item[key].encode("utf-8")
        stance = dict.fromkeys(STANCE_LABELS, 1 / len(STANCE_LABELS))
        return [
            {"stance": {"label": STANCE_LABELS[0], "scores": stance},
             "toxicity": dict.fromkeys(TOXICITY_LABELS, 0.1)}
            for _ in items
        ]  # fmt: skip


def fake_run() -> ScoreRun:
    return ScoreRun(FakePredictor(), ModelInfo(name="fake", version="000000000000"))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- defect 1


#: What a line nested 5,000 deep is told: Python 3.10 and 3.11 cannot parse it (RecursionError);
#: 3.13's json can, and the reader's own depth limit refuses it. One error row either way.
DEEP_MESSAGES = (
    "malformed JSON: nested too deeply to read",
    "extra columns: nests deeper than 32 levels",
)


def test_a_deeply_nested_line_is_one_error_and_reading_goes_on(tmp_path: Path) -> None:
    lines = [flat_row(i) for i in range(6)]
    lines.insert(3, deep(5_000))
    path = tmp_path / "deep.jsonl"
    path.write_text("\n".join(lines) + "\n")
    comments, errors = account(list(read_file(path)))
    assert comments == 6
    assert [e.location for e in errors] == ["line 4"]
    assert errors[0].message in DEEP_MESSAGES


def test_a_deeply_nested_line_on_stdin_is_an_error_row_not_a_traceback() -> None:
    data = "\n".join([flat_row(1), deep(5_000), flat_row(2)]) + "\n"
    result = runner.invoke(app, ["parse", "-"], input=data)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1
    (thread,) = [json.loads(x) for x in result.stdout.splitlines()]
    assert [c["id"] for c in thread["comments"]] == ["1", "2"]
    assert "line 2" in result.stderr
    assert any(message in result.stderr for message in DEEP_MESSAGES), result.stderr


# --------------------------------------------------------------------------- defect 2


def test_wrong_types_in_the_thread_form_are_that_records_errors(tmp_path: Path) -> None:
    def thread(i: int, **damage: Any) -> dict[str, Any]:
        comments = [{"id": "a", "text": "top"}, {"id": "b", "text": "reply", "parent_id": "a"}]
        obj: dict[str, Any] = {"id": f"t{i}", "article": {"title": "T"}, "comments": comments}
        if "parent" in damage:
            comments[1]["parent_id"] = damage["parent"]
        if "extra" in damage:
            obj["extra"] = damage["extra"]
        return obj

    objs = [thread(0), thread(1, parent=["a"]), thread(2, parent={"id": "a"}),
            thread(3, extra=5), thread(4, extra=[1]), thread(5)]  # fmt: skip
    path = tmp_path / "threads.jsonl"
    path.write_text("".join(json.dumps(o) + "\n" for o in objs))
    items = list(read_file(path))
    comments, errors = account(items)
    assert comments + len(errors) == 12  # every comment is a row or an error row
    assert comments == 2 + 1 + 1 + 0 + 0 + 2
    by_loc = {e.location: e.message for e in errors}
    assert (
        by_loc["line 2 comment 2"]
        == "bad comment: field 'parent_id': Input should be a valid string"
    )
    assert "parent_id" in by_loc["line 3 comment 2"]
    assert (
        by_loc["line 4 comment 1"]
        == "bad thread: field 'extra': Input should be a valid dictionary"
    )
    assert {e.location for e in errors} >= {"line 5 comment 1", "line 5 comment 2"}
    assert [t.id for t in items if isinstance(t, Thread)] == ["t0", "t1", "t2", "t5"]


# --------------------------------------------------------------------------- defect 3


@pytest.fixture
def model_dir(tiny_model: ThreadguardModel, tmp_path: Path) -> Path:
    path = tmp_path / "model"
    tiny_model.save_pretrained(path)
    return path


def test_score_gives_error_rows_for_what_parse_rejects(model_dir: Path, tmp_path: Path) -> None:
    good = {"id": "g", "article": {"title": "Dams", "body": "A dam broke."},
            "comments": [{"id": "1", "text": "Sad news."}]}  # fmt: skip
    number_title = {"id": "n", "article": {"title": 5}, "comments": [{"id": "1", "text": "hi"}]}
    list_body = {"id": "l", "article": {"body": ["a", "b"]},
                 "comments": [{"id": "1", "text": "hi"}, {"id": "2", "text": "yo"}]}  # fmt: skip
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(o) + "\n" for o in (number_title, good, list_body)))
    errors = tmp_path / "errors.jsonl"
    out = tmp_path / "out.jsonl"
    result = runner.invoke(
        app,
        ["score", str(src), "--model", str(model_dir), "--backend", "torch",
         "-o", str(out), "--errors", str(errors)],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    error_rows = [json.loads(x) for x in errors.read_text().splitlines()]
    assert [(r["thread_id"], r["comment_id"]) for r in rows] == [("g", "1")]
    assert len(rows) + len(error_rows) == 4
    assert "field 'article.title': Input should be a valid string" in error_rows[0]["error"]
    assert "field 'article.body'" in error_rows[1]["error"]
    # parse agrees: the same records are errors there
    parsed = runner.invoke(app, ["parse", str(src)])
    assert parsed.exit_code == 1 and "1 threads, 1 comments, 3 errors" in parsed.stderr


# --------------------------------------------------------------------------- defect 4


def test_an_unclosed_csv_quote_is_reported_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "quote.csv"
    rows = "".join(f"t,{i},row {i}\n" for i in range(1, 40))
    path.write_text('thread_id,comment_id,text\nt,0,"unclosed\n' + rows)
    comments, errors = account(list(read_file(path)))
    assert comments == 39  # the rows after the stray quote are all read
    (error,) = errors
    assert error.location == "row 1 (line 2)"
    assert "unterminated quote" in error.message and "starting on line 2" in error.message


def test_text_after_a_closing_quote_is_reported_not_merged(tmp_path: Path) -> None:
    path = tmp_path / "sloppy.csv"
    path.write_text('thread_id,comment_id,text\nt,1,"quoted"tail\nt,2,fine\n')
    comments, errors = account(list(read_file(path)))
    assert comments == 1 and [e.location for e in errors] == ["row 1 (line 2)"]


# --------------------------------------------------------------------------- defect 5


@pytest.mark.parametrize("value", [5, 2.5, ["a"], {"b": 1}, True])
def test_flat_text_that_is_not_a_string_is_an_error(tmp_path: Path, value: Any) -> None:
    path = tmp_path / "flat.jsonl"
    path.write_text(flat_row(1) + "\n" + json.dumps({"thread_id": "t", "comment_id": "2",
                                                     "text": value}) + "\n")  # fmt: skip
    comments, errors = account(list(read_file(path)))
    assert comments == 1
    (error,) = errors
    assert error.message == "column 'text': Input should be a valid string"
    assert error.record_id == "2"


def test_ids_may_be_integers_but_not_lists(tmp_path: Path) -> None:
    path = tmp_path / "ids.jsonl"
    rows = [{"thread_id": 7, "comment_id": 1, "text": "a"},
            {"thread_id": 7, "comment_id": 2, "parent_id": 1, "text": "b"},
            {"thread_id": 7, "comment_id": [3], "text": "c"}]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    items = list(read_file(path))
    _, errors = account(items)
    (thread,) = [i for i in items if isinstance(i, Thread)]
    assert [(c.id, c.parent_id) for c in thread.comments] == [("1", None), ("2", "1")]
    assert [e.message for e in errors] == ["column 'comment_id': Input should be a valid string"]


def test_surrogates_anywhere_are_errors_and_error_rows_stay_writable(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    rows = [{"thread_id": "t", "comment_id": "1", "text": "ok"},
            {"thread_id": "t", "comment_id": "\ud800", "text": "bad id"},
            {"thread_id": "t", "comment_id": "3", "text": "ok", "author": "x\udfff"},
            {"thread_id": "t", "comment_id": "4", "text": "ok", "extra": {"k": ["\ud801"]}}]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    errors_path = tmp_path / "errors.jsonl"
    summary = parse_threads([str(path)], tmp_path / "out.jsonl", "jsonl", errors_path=errors_path)
    assert (summary.comments, summary.errors) == (1, 3)
    written = [json.loads(x) for x in errors_path.read_text(encoding="utf-8").splitlines()]
    assert written[0]["record_id"] == "\\ud800"  # escaped, so the error row can be written
    assert "lone surrogate" in written[1]["error"]


# --------------------------------------------------------------------------- fuzzing


@fuzz_settings
@given(lines=jsonl_lines())
def test_fuzz_jsonl_every_record_is_a_row_or_an_error(
    tmp_path_factory: pytest.TempPathFactory, lines: list[tuple[bytes, int]]
) -> None:
    tmp = tmp_path_factory.mktemp("fuzz")
    path = tmp / "in.jsonl"
    path.write_bytes(b"\n".join(line for line, _ in lines) + b"\n")
    records = sum(n for _, n in lines)
    comments, errors = account(list(read_file(path)))
    assert comments + len(errors) == records
    # the same through parse (every format written) and through score's pipeline
    for fmt in ("jsonl", "csv", "parquet"):
        summary = parse_threads(
            [str(path)], tmp / f"out.{fmt}", fmt, errors_path=tmp / "errors.jsonl"
        )  # type: ignore[arg-type]
        assert summary.comments + summary.errors == records
    scored = fake_run().run([str(path)], tmp / "scored.jsonl", "jsonl", errors_path=tmp / "e.jsonl")
    rows = len((tmp / "scored.jsonl").read_text(encoding="utf-8").splitlines())
    error_rows = len((tmp / "e.jsonl").read_text(encoding="utf-8").splitlines())
    assert rows == scored.scored and rows + error_rows == records


@fuzz_settings
@given(data=csv_rows())
def test_fuzz_csv_every_record_is_a_row_or_an_error(
    tmp_path_factory: pytest.TempPathFactory, data: tuple[bytes, int]
) -> None:
    content, records = data
    tmp = tmp_path_factory.mktemp("fuzz-csv")
    path = tmp / "in.csv"
    path.write_bytes(content)
    comments, errors = account(list(read_file(path)))
    assert comments + len(errors) == records, [e.message for e in errors]
    summary = parse_threads([str(path)], tmp / "out.csv", "csv", errors_path=tmp / "errors.jsonl")
    assert summary.comments + summary.errors == records
    scored = fake_run().run([str(path)], tmp / "scored.csv", "csv", errors_path=tmp / "e.jsonl")
    assert scored.scored + scored.errors == records


@fuzz_settings
@given(
    body=st.text(max_size=300),
    wrap=st.sampled_from(
        ["{}", "<html><body>{}</body></html>", "<div class='comments'><p>{}</p></div>" * 3,
         "<" * 50 + "{}", "<div>" * 3000 + "{}"]
    ),
)  # fmt: skip
def test_fuzz_html_pages_never_raise(
    tmp_path_factory: pytest.TempPathFactory, body: str, wrap: str
) -> None:
    tmp = tmp_path_factory.mktemp("fuzz-html")
    path = tmp / "page.html"
    path.write_bytes(wrap.replace("{}", body).encode("utf-8", "surrogateescape") + b"\xff\x00")
    items = list(read_file(path))
    assert items, "a page is a thread or an error, never nothing"
    summary = parse_threads([str(path)], tmp / "out.jsonl", "jsonl", errors_path=tmp / "e.jsonl")
    assert summary.threads + summary.errors >= 1


@pytest.mark.parametrize("char", ["\x85", "\u2028", "\u2029"])
def test_jsonl_rows_escape_unicode_line_breaks(char: str) -> None:
    """A comment holding NEL or a Unicode line separator stays one JSONL line for
    readers that split on them (str.splitlines, JavaScript), and reads back equal."""
    from classifier.io.writers import jsonl_line

    line = jsonl_line({"text": f"a{char}b"})
    assert line.count("\n") == 1 and len(line.splitlines()) == 1
    assert json.loads(line) == {"text": f"a{char}b"}
