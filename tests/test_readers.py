"""Readers and writers: bad input accounting, column variants, round trips, streaming."""

from __future__ import annotations

import csv
import json
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from classifier.io.options import Columns, ReadOptions, detect_format
from classifier.io.readers import read_file, read_paths
from classifier.io.writers import open_writer
from classifier.schema import Article, Comment, ErrorRecord, Thread


def split(items: list) -> tuple[list[Thread], list[ErrorRecord]]:
    threads = [i for i in items if isinstance(i, Thread)]
    errors = [i for i in items if isinstance(i, ErrorRecord)]
    assert len(threads) + len(errors) == len(items)
    return threads, errors


def flat(thread_id: str, comment_id: str, text: str, parent: str | None = None, **kw: str) -> dict:
    return {"thread_id": thread_id, "comment_id": comment_id, "parent_id": parent, "text": text,
            "article_title": "Title " + thread_id, **kw}  # fmt: skip


def test_mixed_good_and_bad_jsonl_loses_nothing(tmp_path: Path) -> None:
    good = [
        flat("t1", "a", "first"),
        flat("t1", "b", "reply", parent="a"),
        flat("t2", "c", "other"),
    ]
    lines = [json.dumps(r).encode() for r in good]
    lines.insert(1, b'{"thread_id": "t1", "comment_id": "x", "text": ')  # malformed JSON
    lines.insert(2, json.dumps(flat("t1", "e", "   ")).encode())  # empty text
    lines.insert(3, json.dumps(flat("t1", "o", "orphan", parent="nowhere")).encode())
    lines.insert(4, b'{"thread_id": "t1", "comment_id": "u", "text": "caf\xe9"}')  # latin-1 byte
    lines.insert(5, json.dumps(flat("t1", "big", "x" * 5_000_000)).encode())  # a 5 MB comment
    lines.insert(6, b"[1, 2]")
    lines.insert(7, json.dumps(flat("t1", "a", "same id again")).encode())
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")

    threads, errors = split(list(read_file(path)))
    n_comments = sum(len(t.comments) for t in threads)
    assert n_comments == 3
    assert n_comments + len(errors) == len(lines)  # every input record is accounted for
    by_line = {e.location: e for e in errors}
    assert "malformed JSON" in by_line["line 2"].message
    assert (
        by_line["line 3"].message == "comment text is empty" and by_line["line 3"].record_id == "e"
    )
    assert "'nowhere' points to no comment" in by_line["line 4"].message
    assert "0xe9" in by_line["line 5"].message and "not UTF-8" in by_line["line 5"].message
    assert "5,000,000 characters" in by_line["line 6"].message
    assert "expected a JSON object" in by_line["line 7"].message
    assert "duplicate comment id 'a'" in by_line["line 8"].message
    assert all(e.source == str(path) for e in errors)
    assert [e.location for e in errors] == [f"line {n}" for n in range(2, 9)]  # input order
    assert [[c.id for c in t.comments] for t in threads] == [["a", "b"], ["c"]]


def test_mixed_good_and_bad_csv_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    rows = [
        b"thread_id,comment_id,parent_id,comment_text,author",
        b"t1,1,,Hello there,ann",
        b't1,2,1,"a reply\nover two lines",bob',
        b"t1,3,,,cy",  # empty text
        b"t1,4,99,dangling,dee",
        b"t1,5,,bad \xff byte,eve",
        b"t1,6,,too,many,fields",
        b"t1,7,7,self reply,fay",
    ]
    path.write_bytes(b"\n".join(rows) + b"\n")
    threads, errors = split(list(read_file(path)))
    assert sum(len(t.comments) for t in threads) + len(errors) == len(rows) - 1
    assert [c.text for c in threads[0].comments] == ["Hello there", "a reply\nover two lines"]
    assert threads[0].comments[1].parent_id == "1"
    # in input order, though a dangling parent or a self-reply is only known at the thread's end
    assert [e.message for e in errors] == [
        "comment text is empty",
        "parent id '99' points to no comment of thread 't1'",
        "column 'comment_text' has a byte that is not UTF-8",
        "1 more field(s) than the header has",
        "comment replies to itself",
    ]
    assert [e.location for e in errors] == [f"row {n} (line {n + 2})" for n in range(3, 8)]


def test_unreadable_and_corrupt_files_are_errors(tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1 this is not parquet")
    items = list(read_paths([missing])) + list(read_file(corrupt))
    threads, errors = split(items)
    assert threads == []
    assert [e.location for e in errors] == ["file", "file"]
    assert "cannot read file" in errors[0].message
    assert "cannot parse file" in errors[1].message


@pytest.mark.parametrize(
    ("text_col", "parent_col"),
    [("text", "parent_id"), ("comment_text", "parent"), ("body", "in_reply_to")],
)
def test_common_column_variants(tmp_path: Path, text_col: str, parent_col: str) -> None:
    path = tmp_path / "v.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["thread_id", "comment_id", parent_col, text_col, "likes"])
        w.writerow(["t", "1", "", "top", "5"])
        w.writerow(["t", "2", "1", "reply", ""])
    (thread,) = [t for t in read_file(path) if isinstance(t, Thread)]
    assert [(c.text, c.parent_id) for c in thread.comments] == [("top", None), ("reply", "1")]
    assert thread.comments[0].extra == {"likes": "5"}  # unknown columns are kept


def test_user_column_override(tmp_path: Path) -> None:
    path = tmp_path / "custom.tsv"
    path.write_text("story\tCONTENT\tNAME\nx\tnice work\tkim\n")
    cols = Columns().with_overrides({"thread_id": "story", "text": "CONTENT", "author": "NAME"})
    (thread,) = list(read_file(path, ReadOptions(columns=cols)))
    assert isinstance(thread, Thread)
    assert thread.id == "x"
    assert (thread.comments[0].text, thread.comments[0].author) == ("nice work", "kim")
    with pytest.raises(ValueError, match="unknown column field 'txt'"):
        Columns().with_overrides({"txt": "CONTENT"})


def test_flat_form_carries_the_article(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    table = pa.Table.from_pylist(
        [
            {
                "thread_id": "t",
                "article_title": "Dams",
                "article_body": "A dam broke.",
                "comment_id": "1",
                "text": "Sad news.",
            },
        ]
    )
    pq.write_table(table, path)
    (thread,) = list(read_file(path))
    assert isinstance(thread, Thread)
    assert (thread.article.title, thread.article.body) == ("Dams", "A dam broke.")


def test_thread_jsonl_with_a_bad_comment(tmp_path: Path) -> None:
    good = Thread("t", "s", Article("t", title="T"), [Comment("1", "hi"), Comment("2", "yo", "1")])
    obj = good.to_dict()
    obj["comments"].append({"id": "3", "text": "", "parent_id": None})
    obj["comments"].append("not an object")
    path = tmp_path / "threads.jsonl"
    path.write_text(json.dumps(obj) + "\n" + json.dumps({"id": "u", "comments": []}) + "\n")
    threads, errors = split(list(read_file(path)))
    assert threads[0] == good
    assert [e.location for e in errors] == ["line 1 comment 3", "line 1 comment 4", "line 2"]
    assert errors[-1].message == "thread is missing the field 'article'"


def test_detects_format_by_content(tmp_path: Path) -> None:
    cases = {
        "a": b'{"x": 1}\n',
        "b": b"PAR1....",
        "c": b"<!DOCTYPE html><html>",
        "d": b"Title\n\nBody",
    }
    found = {}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        found[name] = detect_format(tmp_path / name)
    assert found == {"a": "jsonl", "b": "parquet", "c": "html", "d": "page"}


texts = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40).filter(
    lambda s: s.strip() != ""
)
optional = st.none() | texts
extras = st.dictionaries(
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8),
    st.integers() | texts | st.booleans(),
    max_size=3,
)


@st.composite
def threads_strategy(draw: st.DrawFn) -> list[Thread]:
    out = []
    for t in range(draw(st.integers(1, 3))):
        n = draw(st.integers(0, 4))
        comments = []
        for i in range(n):
            parent = draw(st.none() | st.sampled_from([str(j) for j in range(i)])) if i else None
            comments.append(
                Comment(str(i), draw(texts), parent, draw(optional), draw(optional), draw(extras))
            )
        tid = f"thread-{t}"
        article = Article(
            tid, draw(optional), draw(texts), draw(texts), draw(optional), draw(optional)
        )
        out.append(Thread(tid, f"src-{t}", article, comments, draw(extras)))
    return out


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(threads=threads_strategy())
def test_round_trip(tmp_path: Path, fmt: str, threads: list[Thread]) -> None:
    path = tmp_path / f"out.{fmt}"
    with open_writer(path, fmt) as writer:  # type: ignore[arg-type]
        for t in threads:
            writer.write(t)
    assert list(read_file(path)) == threads


def _flat_file(path: Path, n_threads: int, per_thread: int) -> None:
    with path.open("w") as fh:
        for t in range(n_threads):
            for c in range(per_thread):
                parent = str(c - 1) if c else None
                fh.write(json.dumps(flat(f"t{t}", str(c), f"comment {c} " * 20, parent)) + "\n")


def _peak_reading(path: Path) -> tuple[int, int]:
    tracemalloc.start()
    comments = 0
    for item in read_file(path):
        if isinstance(item, Thread):
            comments += len(item.comments)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return comments, peak


def test_reading_streams_in_bounded_memory(tmp_path: Path) -> None:
    small, large = tmp_path / "small.jsonl", tmp_path / "large.jsonl"
    _flat_file(small, 50, 20)
    _flat_file(large, 500, 20)  # ten times the input
    n_small, peak_small = _peak_reading(small)
    n_large, peak_large = _peak_reading(large)
    assert (n_small, n_large) == (1_000, 10_000)
    # holding the whole input would need about 10x the memory; a stream needs about the same
    assert peak_large < 2 * peak_small + 256 * 1024


def test_a_flat_record_without_a_text_field_says_so(tmp_path: Path) -> None:
    path = tmp_path / "no_text.jsonl"
    path.write_text(
        '{"thread_id": "t", "comment_id": "1", "note": "x"}\n'
        '{"thread_id": "t", "comment_id": "2", "text": "fine"}\n',
        encoding="utf-8",
    )
    threads, errors = split(list(read_file(path)))
    assert [c.id for t in threads for c in t.comments] == ["2"]
    (error,) = errors
    assert error.record_id == "1" and "no 'text' field" in error.message
    assert "--column text=NAME" in error.message


def test_error_rows_come_out_in_input_order_across_threads(tmp_path: Path) -> None:
    """A reply to a missing parent is found when its thread ends, after later rows were read;
    its error row still comes before theirs, in every format."""
    rows = [
        flat("t1", "1", "hello"),
        flat("t1", "2", "orphan", parent="zz"),  # known bad at the end of t1
        flat("t1", "3", "  "),  # bad at once
        flat("t2", "1", "fine"),
        flat("t2", "2", "loops", parent="3"),
        flat("t2", "3", "back", parent="2"),
        flat("t2", "4", ""),
    ]
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows[:3]) + "not json\n"
                     + "".join(json.dumps(r) + "\n" for r in rows[3:]))  # fmt: skip
    csv_path = tmp_path / "rows.csv"
    with csv_path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    parquet = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    expected = ["'zz' points to no comment", "text is empty", "reply cycle", "reply cycle",
                "text is empty"]  # fmt: skip
    for path, extra in ((jsonl, 1), (csv_path, 0), (parquet, 0)):
        _, errors = split(list(read_file(path)))
        messages = [e.message for e in errors]
        if extra:
            assert messages.pop(2).startswith("malformed JSON"), path
        assert len(messages) == len(expected), (path, messages)
        assert all(want in got for want, got in zip(expected, messages, strict=True)), path


@pytest.mark.parametrize(
    ("line", "where"),
    [
        ('{"thread_id": "t", "comment_id": "1", "text": "x"', "at the end of the line"),
        ('{"thread_id": "t", "text": "héllo" x}', "at column 36"),  # counted in characters
        ("  not json", "at column 3"),
        ('{"text": "broken', "Unterminated string starting at column 10"),  # not "at at"
        ('{"text": "tab\there"}', "Invalid control character at column 14"),
    ],
)
def test_malformed_json_names_the_column(tmp_path: Path, line: str, where: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\r\n", encoding="utf-8")
    _, (error,) = split(list(read_file(path)))
    assert error.location == "line 1" and error.message.startswith("malformed JSON: ")
    assert error.message.endswith(where), error.message


def test_a_reader_that_fails_partway_still_gives_what_it_read(tmp_path: Path) -> None:
    """A bad row's error waits for its thread's end; if the file then fails to read (here a
    timestamp Python cannot hold, in Parquet's second batch), the open thread still comes
    out, with the rows read before the failure and that error row, before the file's."""
    n = 2_100  # over read_parquet's batch of 2,048 rows
    rows = [
        flat("t", str(i), f"comment {i}", extra="{not json" if i == 1 else "") for i in range(n)
    ]
    table = pa.Table.from_pylist(rows).append_column(
        "seen",
        pa.array([0] * (n - 1) + [10**12], type=pa.timestamp("s")),  # year 33658
    )
    path = tmp_path / "late.parquet"
    pq.write_table(table, path)
    items = list(read_file(path))
    threads, errors = split(items)
    assert [e.location for e in errors] == ["row 2", "file"]
    assert "'extra' is not a JSON object" in errors[0].message
    assert "cannot parse file: OverflowError" in errors[1].message
    (thread,) = threads  # the first batch of 2,048 rows, less the bad one
    assert [c.id for c in thread.comments] == [str(i) for i in range(2_048) if i != 1]
    assert items[-1] is errors[1]  # the file's error after what was read
