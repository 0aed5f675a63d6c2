"""Read threads from any supported input and write them out: the work behind ``threadguard parse``."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from classifier.io.jsonl import read_jsonl_stream
from classifier.io.options import ParsedItem, ReadOptions, expand_paths
from classifier.io.outputs import check_outputs, open_text_output
from classifier.io.readers import read_file
from classifier.io.writers import OutputFormat, jsonl_line, open_writer
from classifier.schema import ErrorRecord, Thread

logger = logging.getLogger(__name__)


@dataclass
class ParseSummary:
    """What a run read: counts, and which threads came without comments."""

    files: int = 0
    threads: int = 0
    comments: int = 0
    errors: int = 0
    skipped_files: list[str] = field(default_factory=list)
    no_comments: list[tuple[str, str]] = field(default_factory=list)  # (source, why)

    def add(self, item: ParsedItem) -> None:
        if isinstance(item, ErrorRecord):
            self.errors += 1
            return
        self.threads += 1
        self.comments += len(item.comments)
        if not item.comments:
            why = str(item.extra.get("comment_section", "no comments"))
            self.no_comments.append((item.source, why))

    def lines(self) -> list[str]:
        """The summary as printed on stderr."""
        threads = f"{self.threads} threads"
        if self.no_comments:  # pages without comments count as threads: say how many have some
            threads += f" ({self.threads - len(self.no_comments)} with comments)"
        out = [
            f"{threads}, {self.comments} comments, {self.errors} errors from {self.files} file(s)"
        ]
        for source, why in self.no_comments:
            reason = {
                "absent": "the page has no comment section",
                "empty": "the comment section is empty",
            }.get(why, "no comments")
            out.append(f"  no comments: {source} ({reason})")
        for path in self.skipped_files:
            out.append(f"  skipped: {path} (not a supported input type)")
        return out


def iter_inputs(
    paths: Iterable[str], options: ReadOptions, summary: ParseSummary
) -> Iterator[ParsedItem]:
    """Threads and errors from ``paths`` (``-`` is JSONL on standard input), counted in ``summary``."""
    plain = [p for p in paths if p != "-"]
    unreadable: list[tuple[Path, str]] = []
    files, skipped = expand_paths(plain, unreadable)
    summary.skipped_files = [str(p) for p in skipped]
    # a folder that cannot be listed is an error row, like a file that cannot be read
    streams: list[Iterator[ParsedItem]] = [
        iter([ErrorRecord(str(folder), "folder", f"cannot read folder: {why}")])
        for folder, why in unreadable
    ]
    streams += [read_file(p, options) for p in files]
    summary.files = len(files)
    if "-" in paths:
        summary.files += 1
        streams.append(read_jsonl_stream(sys.stdin.buffer, "<stdin>", options))
    for stream in streams:
        for item in stream:
            summary.add(item)
            yield item


def write_error(fh: IO[str] | None, error: ErrorRecord) -> None:
    """One error row: JSONL to ``fh`` if given, else a readable line on stderr."""
    if fh is not None:
        fh.write(jsonl_line(error.to_dict()))
    else:
        print(f"error: {error}", file=sys.stderr)


def parse_threads(
    paths: Iterable[str],
    output: str | Path | None = None,
    fmt: OutputFormat = "jsonl",
    options: ReadOptions | None = None,
    errors_path: str | Path | None = None,
) -> ParseSummary:
    """Read every thread in ``paths`` and write it to ``output`` in ``fmt``.

    Bad records go to ``errors_path`` as JSONL error rows (or to stderr), and
    reading goes on; the returned summary counts threads, comments and errors.
    Outputs that are inputs (or inside an input folder) are refused before anything
    is opened, and both files are written aside and renamed into place at the end
    (:mod:`classifier.io.outputs`: :class:`~classifier.io.outputs.OutputError`).
    """
    paths = list(paths)
    check_outputs(paths, [output, errors_path])
    options = options or ReadOptions()
    summary = ParseSummary()
    with ExitStack() as stack:
        err_fh = stack.enter_context(open_text_output(errors_path)) if errors_path else None
        writer = stack.enter_context(open_writer(output, fmt))
        for item in iter_inputs(paths, options, summary):
            if isinstance(item, Thread):
                writer.write(item)
            else:
                write_error(err_fh, item)
    return summary
