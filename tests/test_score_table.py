"""`threadguard score -f table` fits the terminal: the comment column wraps, no line is cut."""

from __future__ import annotations

import pytest

from classifier.scoring import _TablePrinter

TEXT = (
    "ONly because THEY think THEY are the only ones who can do this, and the Muslim world is "
    "watching every single move they make."
)


def row(comment_id: str, moderated: bool) -> dict[str, object]:
    out: dict[str, object] = {
        "thread_id": "223607d634d3976f",
        "comment_id": comment_id,
        "parent_id": "1" if comment_id != "1" else None,
        "author": "The Sanity Inspector",
        "text": TEXT,
        "stance": {"label": "comment", "scores": {"comment": 0.46}, "target": "article"},
        "toxicity": {"toxicity": 0.34, "identity_attack": 0.26, "insult": 0.1},
        "constructive": {"constructive": 0.1},
        "spans": [{"start": 76, "end": 82}],
    }
    if moderated:
        out["decision"] = "approve"
    return out


@pytest.mark.parametrize("moderated", [False, True], ids=["scores", "moderated"])
@pytest.mark.parametrize("columns", [80, 120, 200])
def test_the_table_fits_the_terminal(
    columns: int, moderated: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """It was drawn at max(terminal width, 140) columns: at 80 or 120 the border was cut."""
    monkeypatch.setenv("COLUMNS", str(columns))
    with _TablePrinter() as add:
        add(row("1", moderated))
        add(row("2", moderated))
    lines = capsys.readouterr().out.splitlines()
    table = [line for line in lines if line[:1] in "┏┃┡│├└"]
    assert table, lines
    assert max(len(line) for line in lines) <= columns
    # every line of the table ends in its right border: nothing was cut
    assert all(line[-1] in "┓┃┩│┤┘" for line in table), "\n".join(lines)
    # the comment wraps in its column: every word is there
    words = " ".join(line.split("│")[-2] for line in table if line.startswith("│")).split()
    for word in TEXT.split():
        assert word in words
    scores = "\n".join(table)
    assert "0.46" in scores and "identity_attack 0.26" in scores and "0.34" in scores
    if moderated:
        assert "approve" in scores
