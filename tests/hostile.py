"""Hostile records for the fuzz and fault tests and ``benchmarks/reliability.py``.

Each generator returns the bytes of one input line (or CSV row) together with how
many *records* it holds, so a test can check the promise ``records == rows + error
rows`` exactly: a flat comment row, an unreadable line and each comment of a thread
line are one record each.

(``benchmarks/reliability.py`` draws its own, larger files with the same kinds of damage.)
The Hypothesis settings here keep the fuzz tests to seconds in CI; set
``THREADGUARD_FUZZ_EXAMPLES`` to run more examples locally.
"""

from __future__ import annotations

import csv
import io
import json
import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

#: Examples per property test (the default keeps the whole fuzz suite to well under a minute).
FUZZ_EXAMPLES = int(os.environ.get("THREADGUARD_FUZZ_EXAMPLES", "60"))

fuzz_settings = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)

#: Text a comment system may really send, and the nastiest parts of Unicode.
HOSTILE_STRINGS = [
    "",
    "   ",
    "plain comment",
    "a\x00b",  # NUL
    "line one\r\nline two\rthree\n",
    "\ud800",  # lone high surrogate
    "x\udfffy",  # lone low surrogate
    "bad \udce9 byte",  # what surrogateescape makes of a latin-1 byte
    "emoji 😀 and \u202e RTL override",
    "\ufeffBOM first",
    "<script>alert(1)</script>",
    'quote " and, comma',
    "x" * 60_000,  # over the 50,000-character comment limit
]

#: Values of the wrong type for a text field.
WRONG_TYPES: list[Any] = [5, -1.5, True, ["a"], {"b": 1}, [], {}, float("nan"), 10**30]


def text_values() -> st.SearchStrategy[Any]:
    """Any value a hostile producer could put where text belongs."""
    return st.one_of(
        st.sampled_from(HOSTILE_STRINGS),
        st.text(max_size=40),
        st.sampled_from(WRONG_TYPES),
        st.none(),
    )


def id_values() -> st.SearchStrategy[Any]:
    """Ids, good and bad; never empty, so a row always counts as a comment record."""
    return st.one_of(
        st.sampled_from(["1", "2", "3", "a", "b"]),
        st.integers(0, 5),
        st.sampled_from([["1"], {"id": 1}, 1.5, True, "\ud800", "x" * 10_000]),
    )


def parent_values() -> st.SearchStrategy[Any]:
    """Parents: none, present, missing, self, cycles (from the small id pool), wrong types."""
    return st.one_of(
        st.none(), st.sampled_from(["1", "2", "3", "a", "nowhere"]), st.integers(0, 5),
        st.sampled_from([["1"], {"p": 1}, 2.5, "\udc80"]),
    )  # fmt: skip


def deep(depth: int) -> str:
    """JSON nested ``depth`` levels deep (a RecursionError for ``json.loads`` past ~1000)."""
    return '{"a":' * depth + "1" + "}" * depth


GARBAGE_LINES: list[bytes] = [
    deep(5_000).encode(),
    ("[" * 100_000).encode(),
    b'{"thread_id": "t", "comment_id": "x", "text": ',  # truncated
    b"caf\xe9 \xff\xfe not utf-8",
    b"[1, 2, 3]",
    b'"just a string"',
    b"null",
    b"1" * 5_000,  # an integer over Python's digit limit
    b'{"text": NaN, "comment_id": Infinity}',
    b"\x00\x00\x00",
]


@st.composite
def flat_line(draw: st.DrawFn) -> tuple[bytes, int]:
    """A flat JSONL row (one comment record) with hostile values in any field."""
    row: dict[str, Any] = {
        "thread_id": draw(st.one_of(st.sampled_from(["t1", "t2", "t3"]), id_values())),
        "comment_id": draw(id_values()),
        "parent_id": draw(parent_values()),
        "text": draw(text_values()),
    }
    for key in draw(st.sets(st.sampled_from(["author", "timestamp", "article_title",
                                              "article_body", "likes", "extra", "thread_extra"]))):  # fmt: skip
        if key in ("extra", "thread_extra"):
            row[key] = draw(
                st.sampled_from([{"k": 1}, "{}", "not json", 5, [1], deep(2_000), {"s": "\ud800"}])
            )
        else:
            row[key] = draw(text_values())
    return json.dumps(row).encode(), 1


@st.composite
def thread_line(draw: st.DrawFn) -> tuple[bytes, int]:
    """A thread JSONL line with 1-6 comments (one record each) and hostile thread fields."""
    n = draw(st.integers(1, 6))
    comments: list[Any] = []
    for _ in range(n):
        if draw(st.integers(0, 9)) == 0:
            comments.append(draw(st.sampled_from([5, "text", None, ["a"]])))
            continue
        comment: dict[str, Any] = {"id": draw(id_values()), "text": draw(text_values())}
        if draw(st.booleans()):
            comment["parent_id"] = draw(parent_values())
        if draw(st.integers(0, 4)) == 0:
            comment[draw(st.sampled_from(["extra", "author", "bogus"]))] = draw(
                st.sampled_from([5, [1], {"deep": json.loads(deep(40))}, "s", {"k": "\ud800"}])
            )
        comments.append(comment)
    article: Any = {"title": "Article", "body": "First paragraph.\n\nMore."}
    obj: dict[str, Any] = {"id": draw(st.one_of(st.sampled_from(["T1", "T2"]), id_values())),
                           "article": article, "comments": comments}  # fmt: skip
    damage = draw(st.integers(0, 6))
    if damage == 1:
        article["title"] = draw(st.sampled_from(WRONG_TYPES))
    elif damage == 2:
        article["body"] = draw(st.sampled_from([["a"], 5, "\ud800"]))
    elif damage == 3:
        obj["extra"] = draw(st.sampled_from([5, [1], "x", {"a": [[[[1]]]]}]))
    elif damage == 4:
        obj["article"] = draw(st.sampled_from([5, "x", [], None]))
    elif damage == 5:
        article["unknown_key"] = 1
    return json.dumps(obj).encode(), n


def jsonl_lines() -> st.SearchStrategy[list[tuple[bytes, int]]]:
    """A JSONL file as lines, each with its record count."""
    garbage = st.sampled_from(GARBAGE_LINES).map(lambda line: (line, 1))
    return st.lists(st.one_of(flat_line(), thread_line(), garbage), min_size=1, max_size=25)


CSV_HEADER = ["thread_id", "comment_id", "parent_id", "text", "author"]


@st.composite
def csv_rows(draw: st.DrawFn) -> tuple[bytes, int]:
    """A CSV file (bytes) of 1-25 data rows and its record count.

    Rows are written by the csv module, with any text (quotes, commas, CR, LF, NUL),
    plus hostile raw lines: bytes that are not UTF-8, too many fields, and at most one
    stray quote that is never closed. (Two stray quotes in one file can pair up into a
    valid quoted field; no CSV reader can tell that from an intended one, so only one.)
    """
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    lines: list[bytes] = [out.getvalue().encode()]
    n = draw(st.integers(1, 25))
    stray_at = draw(st.one_of(st.none(), st.integers(0, n - 1)))
    plain = st.text(alphabet="abc xyz.!?", min_size=1, max_size=20)
    for i in range(n):
        kind = draw(st.integers(0, 5))
        if i == stray_at:
            lines.append(f't1,s{i},,"never closed {i}\n'.encode())
            continue
        if stray_at is not None and i > stray_at:
            # after the stray quote, no quote character at all (see the docstring)
            lines.append(f"t1,{i},,{draw(plain)},ann\n".encode())
            continue
        if kind == 0:
            lines.append(b"t1,%d,,bad \xff\xfe bytes,ann\n" % i)
        elif kind == 1:
            lines.append(b"t1,%d,,too,many,fields,here\n" % i)
        else:
            text = draw(st.one_of(st.sampled_from(HOSTILE_STRINGS[:5] + HOSTILE_STRINGS[8:]),
                                  st.text(max_size=30)))  # fmt: skip
            out = io.StringIO(newline="")
            # the csv module's own line ending: with "\n" it would leave a lone "\r" unquoted,
            # which every CSV reader takes for a line break (a broken file, not a hostile one)
            # NUL goes in as a stand-in: Python 3.10's csv writer refuses it (3.11 writes it as is)
            csv.writer(out).writerow(
                [draw(st.sampled_from(["t1", "t2"])), str(i),
                 draw(st.sampled_from(["", "0", "1", str(i), "zz"])), text.replace("\0", "\ud800"),
                 "ann"]
            )  # fmt: skip
            line = out.getvalue().replace("\ud800", "\0")
            lines.append(line.encode("utf-8", "surrogateescape"))
    return b"".join(lines), n
