"""Only malformed records are skipped: a bug in an adapter stops the load."""

from __future__ import annotations

import pytest

from training.corpora._common import Collector, MalformedRow, field, parse_float
from training.corpora.stance import _post_text


def test_a_malformed_row_is_skipped_and_counted() -> None:
    out = Collector("demo")
    with out.row("a.csv", 1):
        parse_float("n/a", "score")
    with out.row("a.csv", 2):
        field({"id": "1"}, "text")
    with out.row("b.csv", 1):
        out.add(id="x", text="  ", split="train", toxicity={"toxicity": 1.0})
    assert out.skipped == {"a.csv": 2, "b.csv": 1}


@pytest.mark.parametrize("error", [KeyError("text"), TypeError("bad"), IndexError(0)])
def test_an_adapter_bug_is_raised_not_skipped(error: Exception) -> None:
    """KeyError and TypeError were turned into skipped rows: a bug in an adapter became
    silently missing training data."""
    out = Collector("demo")
    with pytest.raises(type(error)), out.row("a.csv", 1):
        raise error
    assert not out.skipped


def test_a_post_without_its_text_is_malformed() -> None:
    with pytest.raises(MalformedRow):
        _post_text({"id": 1}, "twitter")
    with pytest.raises(MalformedRow):
        _post_text({"kind": "t1", "data": {}}, "reddit")
    with pytest.raises(MalformedRow):
        _post_text({"kind": "Listing", "data": {"children": []}}, "reddit")
    assert _post_text({"kind": "t1", "data": {"body": "hi &amp; bye"}}, "reddit") == "hi & bye"
    assert field({"n": 1}, "n", int) == 1
    with pytest.raises(MalformedRow):
        field({"n": "1"}, "n", int)
