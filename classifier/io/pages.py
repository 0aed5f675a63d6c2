"""Article pages (page text or HTML) to a :class:`~classifier.schema.Thread`.

A page is read in two parts. The *comment section* is found by one of the
registered layouts (:data:`LAYOUTS`); each layout is a small function that
recognises one way sites print their reader comments and returns the
comments with author, time, number and reply structure. Everything before
the section is the article, from which page furniture (share buttons, site
navigation, "Print Friendly", related-story links) is removed.

Adding a layout means writing one function that takes the page's lines and
returns a :class:`CommentSection` or ``None``, decorating it with
:func:`layout`, and adding a test with a page in that layout.

HTML is rendered to text with inscriptis (which keeps list indentation, so
nested replies stay visible) for the comment section, while trafilatura
extracts the article's title, date and main text.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from classifier.schema import Article, Comment, Thread, stable_id

logger = logging.getLogger(__name__)


@dataclass
class CommentSection:
    """Where a page's comment section is (line indices) and what it holds."""

    layout: str
    start: int
    end: int  # exclusive; lines from here on are page footer
    comments: list[Comment] = field(default_factory=list)
    article_author: str | None = None
    article_time: str | None = None
    declared_count: int | None = None


LayoutFn = Callable[[list[str]], "CommentSection | None"]
#: Registered layouts, tried in order; the first that recognises the page wins.
LAYOUTS: list[tuple[str, LayoutFn]] = []


def layout(name: str) -> Callable[[LayoutFn], LayoutFn]:
    """Register a comment-section layout under ``name``."""

    def register(fn: LayoutFn) -> LayoutFn:
        LAYOUTS.append((name, fn))
        return fn

    return register


# --- page furniture -----------------------------------------------------------

#: Whole lines that are never article or comment text.
FURNITURE_LINES = re.compile(
    r"""^\s*(?:
        print\ friendly(?:,\ pdf\ &\ email)? | facebooktwittermail | share\ (?:via|this:?)
      | share\ on\ (?:facebook|twitter) | tweet | email | print | reply | ↓\ reply | cancel\ reply
      | leave\ a\ (?:reply|comment) | add\ a\ comment | sort\ by | comments\ are\ closed\.?
      | skip\ to\ (?:content|main\ content) | (?:main\ page|home)(?:\ [-|–]\ .*)? | menu
      | powered\ by\ .* | processing\ [\d.]+,\ elapsed\ .* | \d+\ queries\ taking\ .*
      | page\ size\ \d+\ ?kb\.? | related\ (?:posts|articles|stories):?
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
#: Inline furniture inside article paragraphs: related-story and "continue reading" links.
FURNITURE_INLINE = re.compile(r"\s*(?:\[Continue reading[^\]]*\]|\(READ:[^)\n]*\)?)", re.IGNORECASE)
_BYLINE = re.compile(r"^(?:By\s+)?(?P<name>[A-Z][\w'’.-]+(?:\s+[A-Z][\w'’.-]+){1,3})$")


def is_furniture(line: str) -> bool:
    """True for a line that is site furniture rather than text."""
    return bool(FURNITURE_LINES.match(line))


def _clean_inline(text: str) -> str:
    return FURNITURE_INLINE.sub("", text).strip()


def _paragraphs(lines: list[str]) -> list[str]:
    """The text lines of a block, one paragraph each, without furniture.

    Page dumps print one block element a line, so a line is a paragraph.
    """
    cleaned = (_clean_inline(line) for line in lines if line.strip() and not is_furniture(line))
    return [p for p in cleaned if p]


def parse_time(text: str) -> str:
    """ISO 8601 for the date formats blogs print, else the text as shown."""
    cleaned = re.sub(r"\s+at\s+", " ", text.strip())
    for fmt in ("%B %d, %Y %I:%M %p", "%b %d, %Y %I:%M %p", "%B %d, %Y", "%Y-%m-%d %H:%M"):
        try:
            return datetime.strptime(cleaned, fmt).isoformat()
        except ValueError:
            continue
    return text.strip()


# --- layouts --------------------------------------------------------------------

_POSTED_BY = re.compile(r"^\s*Posted by:?\s*(?P<author>.+?)\s+at\s+(?P<time>.+?)\s*$")
_NUMBERED = re.compile(r"^\s*(?P<num>\d+)\s+(?P<text>\S.*)$")


@layout("posted-by")
def posted_by_layout(lines: list[str]) -> CommentSection | None:
    """Blogs that close every entry with "Posted by: NAME at TIME" (Movable Type, Minx).

    The first such line closes the article (its author); each later block of
    lines, usually opened by the comment's number, is a comment closed by its
    own "Posted by" line.
    """
    marks = [i for i, line in enumerate(lines) if _POSTED_BY.match(line)]
    if not marks:
        return None
    first = _POSTED_BY.match(lines[marks[0]])
    assert first is not None
    section = CommentSection(layout="posted-by", start=marks[0], end=marks[-1] + 1)
    block_start = 0
    for n, idx in enumerate(marks):
        block = [line for line in lines[block_start:idx]]
        block_start = idx + 1
        m = _POSTED_BY.match(lines[idx])
        assert m is not None
        head = next((line for line in block if line.strip()), "")
        numbered = _NUMBERED.match(head)
        if n == 0 and not numbered:
            section.article_author = m["author"].strip()
            section.article_time = parse_time(m["time"])
            continue
        if n == 0:  # the page has no article byline: the first block is already a comment
            section.start = lines.index(head)
        if numbered:
            block[block.index(head)] = numbered["text"]
        text = "\n\n".join(_paragraphs(block))
        extra = {"number": int(numbered["num"])} if numbered else {}
        section.comments.append(
            Comment(
                id=str(numbered["num"]) if numbered else str(len(section.comments) + 1),
                text=text,
                author=m["author"].strip(),
                timestamp=parse_time(m["time"]),
                extra=extra,
            )
        )
    return section


_WORDS_TO_INT = {
    w: i
    for i, w in enumerate(
        ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
    )
}
_THOUGHTS_ON = re.compile(
    r"^\s*(?P<count>\d+|no|one|two|three|four|five|six|seven|eight|nine|ten)\s+"
    r"(?:thoughts?|responses?|comments?|replies|reply)\s+(?:on|to)\s+[“\"'‘«]?(?P<title>.*?)[”\"'’»]?\s*$",
    re.IGNORECASE,
)
_ENTRY = re.compile(r"^(?P<indent>\s*)(?P<num>\d+)\.\s+(?P<author>\S.*?)(?:\s+says:?)?\s*$")
_ENTRY_DATE = re.compile(
    r"^\s*(?:[A-Z][a-z]+ \d{1,2}, \d{4}|\d{4}-\d{2}-\d{2})(?:\s+(?:at\s+)?\d{1,2}:\d{2}\s*(?:[ap]m)?)?\s*$",
    re.IGNORECASE,
)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _entry_at(lines: list[str], i: int) -> re.Match[str] | None:
    """An "N. NAME" line whose text follows further indented is a comment entry."""
    m = _ENTRY.match(lines[i])
    if m is None or len(m["author"].split()) > 6:
        return None
    nxt = next((line for line in lines[i + 1 : i + 6] if line.strip()), None)
    return m if nxt is not None and _indent(nxt) > _indent(lines[i]) else None


@layout("thoughts-on")
def thoughts_on_layout(lines: list[str]) -> CommentSection | None:
    """WordPress themes: a "N thoughts on “TITLE”" heading over a numbered list of named entries.

    An entry is "  N. NAME" (optionally "NAME says:" and a date line) followed
    by its more deeply indented text; an entry indented deeper than the one
    before it is a reply to the nearest shallower entry. The list ends at the
    first line back at the list's margin that is not an entry ("Comments are
    closed.", "Leave a Reply").
    """
    head = next((i for i, line in enumerate(lines) if _THOUGHTS_ON.match(line)), None)
    if head is None:
        return None
    m = _THOUGHTS_ON.match(lines[head])
    assert m is not None
    count = m["count"].lower()
    declared = int(count) if count.isdigit() else _WORDS_TO_INT.get(count)
    section = CommentSection("thoughts-on", start=head, end=head + 1, declared_count=declared)
    entries = [(i, e) for i in range(head + 1, len(lines)) if (e := _entry_at(lines, i))]
    if not entries:
        return section
    margin = min(_indent(lines[i]) for i, _ in entries)
    entry_lines = {i for i, _ in entries}
    end = next(
        (
            i
            for i in range(entries[0][0], len(lines))
            if lines[i].strip() and _indent(lines[i]) <= margin and i not in entry_lines
        ),
        len(lines),
    )
    section.end = end
    stack: list[tuple[int, Comment]] = []  # open ancestors: (indent, comment)
    bounds = [i for i, _ in entries] + [end]
    for k, (i, entry) in enumerate(entries):
        indent = _indent(lines[i])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        block = lines[i + 1 : bounds[k + 1]]
        timestamp = None
        first = next((j for j, line in enumerate(block) if line.strip()), None)
        if first is not None and _ENTRY_DATE.match(block[first]):
            timestamp = parse_time(block[first])
            block = block[first + 1 :]
        comment = Comment(
            id=str(k + 1),
            text="\n\n".join(_paragraphs(block)),
            parent_id=stack[-1][1].id if stack else None,
            author=entry["author"].strip(),
            timestamp=timestamp,
            extra={"number": int(entry["num"])},
        )
        section.comments.append(comment)
        stack.append((indent, comment))
    if declared is not None and declared != len(section.comments):
        logger.warning(
            "comment heading says %s comments, found %d", declared, len(section.comments)
        )
    return section


_EMPTY_MARKERS = re.compile(
    r"^\s*(?:there are no comments yet|no comments yet|be the first to comment|no comments)\b",
    re.IGNORECASE,
)
_EMPTY_HEADS = re.compile(
    r"^\s*(?:add a comment|leave a (?:reply|comment)|comments?)\s*$", re.IGNORECASE
)


@layout("empty")
def empty_section_layout(lines: list[str]) -> CommentSection | None:
    """A comment section that is there but holds nothing ("There are no comments yet")."""
    mark = next((i for i, line in enumerate(lines) if _EMPTY_MARKERS.match(line)), None)
    if mark is None:
        return None
    start = mark
    while start > 0 and (
        not lines[start - 1].strip()
        or _EMPTY_HEADS.match(lines[start - 1])
        or is_furniture(lines[start - 1])
    ):
        start -= 1
    return CommentSection(layout="empty", start=start, end=len(lines))


# --- the page ---------------------------------------------------------------------


def find_comment_section(lines: list[str]) -> CommentSection | None:
    """The comment section as the first registered layout that recognises it sees it."""
    for name, fn in LAYOUTS:
        section = fn(lines)
        if section is not None:
            logger.debug("comment section recognised by layout %s", name)
            return section
    return None


def _article_from_lines(lines: list[str]) -> tuple[str, str | None, list[str]]:
    """Split the article part into (title, byline author, body paragraphs)."""
    paras = _paragraphs(lines)
    # Site banners and ads come before the headline: navigation lines are furniture
    # already; short all-lowercase lines (link text such as ads) are not headlines.
    while paras and len(paras[0].split()) <= 3 and paras[0] == paras[0].lower():
        paras.pop(0)
    if not paras:
        return "", None, []
    title, rest = paras[0], paras[1:]
    author = None
    if rest and (m := _BYLINE.match(rest[0])) and not rest[0].endswith("."):
        author = m["name"]
        rest = rest[1:]
    if rest and rest[0] == title:  # the headline printed twice (page title and article header)
        rest = rest[1:]
    return title, author, rest


def parse_page_text(text: str, source: str, url: str | None = None) -> Thread:
    """Parse the text of an article page into a thread.

    ``thread.extra["comment_section"]`` says what was found: the name of the
    layout that read the comments, ``"empty"`` for a section with no comments,
    or ``"absent"`` when the page has no comment section at all.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ").split("\n")
    section = find_comment_section(lines)
    article_lines = lines[: section.start] if section else lines
    title, byline, body = _article_from_lines(article_lines)
    author = (section.article_author if section else None) or byline
    thread_id = stable_id("page", Path(source).name, title)
    article = Article(
        id=thread_id,
        url=url,
        title=title,
        body="\n\n".join(body),
        published=section.article_time if section else None,
        author=author,
    )
    extra: dict[str, object] = {"comment_section": section.layout if section else "absent"}
    if section and section.declared_count is not None:
        extra["declared_comment_count"] = section.declared_count
    return Thread(
        id=thread_id,
        source=source,
        article=article,
        comments=section.comments if section else [],
        extra=extra,
    )


def parse_page_html(html: str, source: str) -> Thread:
    """Parse an HTML article page: trafilatura for the article, the layouts for the comments."""
    import inscriptis
    import trafilatura

    rendered = inscriptis.get_text(html)
    thread = parse_page_text(rendered, source)
    meta = trafilatura.extract_metadata(html)
    main = trafilatura.extract(html, include_comments=False, include_tables=False)
    if meta is not None and meta.title:
        thread.article.title = meta.title
    if main:
        paras = [p.strip() for p in main.split("\n") if p.strip()]
        if paras and paras[0] == thread.article.title:
            paras = paras[1:]
        thread.article.body = "\n\n".join(_clean_inline(p) for p in paras if not is_furniture(p))
    if meta is not None:
        thread.article.url = meta.url or thread.article.url
        thread.article.published = meta.date or thread.article.published
        thread.article.author = meta.author or thread.article.author
    thread.id = thread.article.id = stable_id("page", Path(source).name, thread.article.title)
    return thread
