"""Article pages: every seed page exactly, the HTML path, and adding a layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from classifier.io import pages
from classifier.io.pages import CommentSection, parse_page_html, parse_page_text
from classifier.io.readers import read_file
from classifier.schema import Comment, Thread

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
FIXTURES = Path(__file__).parent / "fixtures" / "pages"

FURNITURE = (
    "Print Friendly",
    "Facebooktwittermail",
    "Posted by",
    "Add a comment",
    "Sort by",
    "Comments are closed",
    "Processing 0.0",
    "queries taking",
    "Page size",
    "Powered by",
    "Share via",
    "Continue reading",
    "(READ:",
    "There are no comments yet",
    "online casino",
    "Main Page",
    "thoughts on",
)


def seed(name: str) -> Thread:
    (path,) = SEEDS.glob(f"{name}_*.txt")
    return parse_page_text(path.read_text(encoding="utf-8"), str(path))


def summary(thread: Thread) -> list[tuple[str, str | None, str | None, str | None, str]]:
    return [(c.id, c.parent_id, c.author, c.timestamp, c.text) for c in thread.comments]


def assert_clean(thread: Thread) -> None:
    for text in [thread.article.title, thread.article.body, *(c.text for c in thread.comments)]:
        for junk in FURNITURE:
            assert junk not in text, f"furniture {junk!r} in {text[:80]!r}"


def test_seed_000_numbered_posted_by() -> None:
    t = seed("000")
    assert (
        t.article.title
        == 'Good News: al Qaeda Affiliate Continues to Fight "Islamic State" Caliphate'
    )
    assert t.article.author == "Rusty"
    assert t.article.body.startswith('You know your new "Caliph" is a loser')
    assert t.article.body.endswith(
        "The more of these guys that kill each other, the better we'll all be."
    )
    assert t.extra["comment_section"] == "posted-by"
    assert summary(t) == [
        (
            "1",
            None,
            "The Sanity Inspector",
            "2014-07-02T15:43:00",
            "It's bad news if ISIS is kitted out with American-supplied vehicles. It may be hard "
            "to provide CAS once/if the Iraqi national army closes with them.",
        ),
        (
            "2",
            None,
            "hefternofen",
            "2014-07-02T19:39:00",
            "ONly because THEY think THEY should be the ones in charge.\n\nMuslim fighting muslim "
            "for power is nothing new. It goes back to the the very start.",
        ),
        (
            "3",
            None,
            "Vanfield",
            "2014-07-02T23:30:00",
            "It's never good when your caliph has to use a pseudonym.",
        ),
    ]
    assert [c.extra["number"] for c in t.comments] == [1, 2, 3]
    assert all(c.replies_to == "article" for c in t.comments)
    assert_clean(t)


def test_seed_001_thoughts_on() -> None:
    t = seed("001")
    assert t.article.title == "ISIS reconciles with Jabhat al-Nusra as Syria air strikes continue"
    assert t.article.body.startswith("The Guardian reports: Air strikes continued")
    assert t.article.body.endswith("swear allegiance in coming days.")
    assert t.extra == {"comment_section": "thoughts-on", "declared_comment_count": 2}
    assert summary(t) == [
        (
            "1",
            None,
            "Robert",
            None,
            "There was never all that much difference between Al Nusra and ISIS anyway. Both have "
            "their roots in exactly the same places, (Washington. Turkey and the Gulf States)\n\n"
            "But Obama’s air strikes, (which cannot achieve anything at all on the ground) do act "
            "as a great recruitment campaign for ISIS. Their power and influence should spread "
            "accordingly.",
        ),
        (
            "2",
            None,
            "Paul Woodward",
            None,
            "Actually, there are significant differences between Nusra and ISIS. Unlike in ISIS, "
            "the fighters in Nusra are predominantly Syrian and the rest of the Syrian opposition "
            "views Nusra as having played an important role in the fight against Assad. That’s "
            "why the U.S. airstrikes have prompted pro-Nusra rallies in Syria — not pro-ISIS "
            "rallies.\n\nAs Aaron Zelin tweeted: “Seems US has already lost the narrative on the "
            "ground in Syria in less than a week. ‘Moderate’ rebels condemning bombings + pro-JN "
            "rallies.”",
        ),
    ]
    assert_clean(t)


def test_seed_002_empty_comment_section() -> None:
    t = seed("002")
    assert t.article.title == "Qaeda unit in Syria border town joins ISIS"
    assert t.article.author == "Natashya Gutierrez"
    assert t.article.body.startswith("After months of clashes between the the Islamic State")
    assert t.article.body.count("Qaeda unit in Syria border town joins ISIS") == 0
    assert t.article.body.endswith("“divide Syria along sectarian and religious lines.”")
    assert t.comments == []
    assert t.extra["comment_section"] == "empty"
    assert_clean(t)


def test_seed_003_no_comment_section() -> None:
    t = seed("003")
    assert t.article.title == "Al Qaeda-linked group routed in Syrian rebel infighting"
    assert t.article.body.startswith("AMMAN, Jordan -- Infighting among Islamist")
    assert t.article.body.endswith("between ISIS and [Jaysh Al-Mujahideen].”")
    assert t.comments == []
    assert t.extra["comment_section"] == "absent"
    assert_clean(t)


def test_seed_004_banner_before_headline() -> None:
    t = seed("004")
    assert t.article.title == "ISIS and Al-Nusra allegedly hold meeting on Syrian border."
    assert t.article.body.startswith(
        "ISIS and Al-Nusra fighters allegedly embrace at a border town."
    )
    assert t.comments == []
    assert t.extra["comment_section"] == "absent"
    assert_clean(t)


def test_seed_ids_are_stable_and_distinct() -> None:
    first = [seed(n).id for n in ("000", "001", "002", "003", "004")]
    again = [seed(n).id for n in ("000", "001", "002", "003", "004")]
    assert first == again
    assert len(set(first)) == 5


def test_every_seed_reads_through_the_file_reader() -> None:
    threads = [t for p in sorted(SEEDS.glob("*.txt")) for t in read_file(p)]
    assert all(isinstance(t, Thread) for t in threads)
    assert [len(t.comments) for t in threads] == [3, 2, 0, 0, 0]  # type: ignore[union-attr]


def test_wordpress_html_with_nested_reply() -> None:
    path = FIXTURES / "wordpress_nested.html"
    t = parse_page_html(path.read_text(encoding="utf-8"), str(path))
    assert t.article.title == "Big news about the river"
    assert t.article.body.startswith("The river flooded the town on Monday")
    assert "Home" not in t.article.body
    assert t.article.published == "2014-10-05"
    assert summary(t) == [
        ("1", None, "Alice", "2014-10-05T15:21:00", "Is there any source for the Friday estimate?"),
        ("2", "1", "Bob", None, "The county website posted it this morning."),
        (
            "3",
            None,
            "Carol",
            None,
            "Thanks to the fire brigade for their work.\n\nStay safe, everyone.",
        ),
    ]
    assert t.comments[1].replies_to == "comment"
    assert_clean(t)


def test_nested_text_reply_in_thoughts_on_layout() -> None:
    text = (
        "A headline about trains\n\nThe trains were late again on Tuesday.\n\n"
        "3 thoughts on “A headline about trains”\n\n"
        "  1. Ann\n\n    They are always late.\n\n"
        "      1. Ben\n\n        Not on Sundays.\n\n"
        "  2. Cy\n\n    Who runs this line?\n\n"
        "Leave a Reply\n"
    )
    t = parse_page_text(text, "trains.txt")
    assert [(c.id, c.parent_id, c.author, c.text) for c in t.comments] == [
        ("1", None, "Ann", "They are always late."),
        ("2", "1", "Ben", "Not on Sundays."),
        ("3", None, "Cy", "Who runs this line?"),
    ]


def test_a_new_layout_is_one_small_addition(monkeypatch: pytest.MonkeyPatch) -> None:
    """A site that prints "NAME wrote:" blocks after a "Reader comments" heading."""

    def wrote_layout(lines: list[str]) -> CommentSection | None:
        if "Reader comments" not in lines:
            return None
        start = lines.index("Reader comments")
        section = CommentSection("wrote", start=start, end=len(lines))
        for i, line in enumerate(lines[start:], start):
            if line.endswith(" wrote:"):
                n = len(section.comments) + 1
                section.comments.append(
                    Comment(str(n), lines[i + 1], author=line[: -len(" wrote:")])
                )
        return section

    monkeypatch.setattr(pages, "LAYOUTS", [("wrote", wrote_layout), *pages.LAYOUTS])
    t = parse_page_text(
        "Headline\n\nBody text.\n\nReader comments\nZoe wrote:\nGreat piece.\n", "x.txt"
    )
    assert t.extra["comment_section"] == "wrote"
    assert [(c.author, c.text) for c in t.comments] == [("Zoe", "Great piece.")]
    assert t.article.body == "Body text."
