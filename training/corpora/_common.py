"""Shared plumbing for the corpus adapters: data root, seeded splits, row collection.

Every adapter reads files in a corpus's official layout and hands rows in the
common format (:func:`training.data.make_example`) to a :class:`Collector`,
which sorts them by split and skips (logs and counts) malformed rows instead of
crashing on them: public corpora have the odd broken line, and one bad row must
not cost a training run. Only a malformed row is skipped: a ValueError (what parsing a
bad value raises, and :class:`MalformedRow`, which an adapter raises for a missing or
wrong-typed field). A KeyError, TypeError or IndexError is a bug in the adapter and is
raised: skipping it would silently lose training data.
"""

from __future__ import annotations

import csv
import hashlib
import html
import logging
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from training.data import make_example

logger = logging.getLogger("training.corpora")

#: Environment variable that overrides the default data root.
DATA_ENV: str = "THREADGUARD_DATA"

#: Warnings logged per file before the rest of its skipped rows go to DEBUG.
_MAX_WARNINGS_PER_FILE = 20

Rows = dict[str, list[dict[str, Any]]]
Loader = Callable[..., None]


def default_data_root() -> Path:
    """The data root: ``$THREADGUARD_DATA`` if set, else ``<project>/../shared/data``."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    project = Path(__file__).resolve().parents[2]
    return project.parent / "shared" / "data"


def resolve_root(root: str | Path | None) -> Path:
    """``root`` as a Path, or :func:`default_data_root` when it is ``None``."""
    return Path(root).expanduser() if root is not None else default_data_root()


def hash_fraction(key: str, salt: str = "") -> float:
    """A number in [0, 1) fixed by ``key`` and ``salt``, the same on every run and machine.

    Uses SHA-256 rather than :func:`hash`, whose value for strings changes per process.
    """
    digest = hashlib.sha256(f"{salt}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def hash_split(key: str, *, dev: float = 0.1, test: float = 0.1, salt: str = "") -> str:
    """Assign ``key`` to ``test`` / ``dev`` / ``train`` with the given fractions, by hash.

    Everything that shares a key (a body id, a text) lands in the same split, so
    hashing a group key gives a group-wise split. ``test=0`` holds out a dev set
    from an official training split.
    """
    u = hash_fraction(key, salt)
    if u < test:
        return "test"
    if u < test + dev:
        return "dev"
    return "train"


def clean_text(text: str) -> str:
    """Undo HTML escaping (``&amp;`` in tweets and Reddit/YouTube exports) and trim.

    Not for corpora with character offsets (ToxicSpans), whose text must stay as is.
    """
    return html.unescape(text).replace("\ufeff", "").strip()


def parse_float(value: str | float | int | None, what: str) -> float:
    """``value`` as a float, with an error naming ``what`` when it is blank or not a number."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(f"{what} is empty")
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{what} {value!r} is not a number") from None


def lookup(mapping: Mapping[Any, Any], key: Any, what: str) -> Any:
    """``mapping[key]`` with an error that names ``what`` and the known keys."""
    try:
        return mapping[key]
    except KeyError:
        known = sorted(mapping, key=str)
        raise ValueError(f"unknown {what} {key!r}; expected one of {known}") from None


class MalformedRow(ValueError):
    """A record that lacks a field, or holds one of the wrong type: skipped, not fatal."""


def field(record: Mapping[str, Any], key: str, kind: type | tuple[type, ...] = str) -> Any:
    """``record[key]``, or MalformedRow when the record lacks it or it is not a ``kind``
    (for the corpora whose records may lack a field: a plain ``record[key]`` that fails is
    an adapter bug and stops the load)."""
    if not isinstance(record, Mapping) or key not in record:
        raise MalformedRow(f"no {key!r} field")
    value = record[key]
    if not isinstance(value, kind):
        raise MalformedRow(f"{key!r} is {type(value).__name__}, not {kind}")
    return value


class Collector:
    """Collects one corpus's rows by split; logs and counts the rows it skips.

    ``skipped`` maps a file (or other origin) to the number of rows skipped in it;
    ``notes`` counts deliberate drops that are not errors (e.g. unscored test rows).
    """

    def __init__(self, corpus: str) -> None:
        self.corpus = corpus
        self.splits: Rows = {}
        self.skipped: Counter[str] = Counter()
        self.notes: Counter[str] = Counter()

    def skip(self, origin: str | Path, row: object, reason: object) -> None:
        """Record one skipped row of ``origin`` and log why."""
        key = str(origin)
        self.skipped[key] += 1
        level = logging.WARNING if self.skipped[key] <= _MAX_WARNINGS_PER_FILE else logging.DEBUG
        logger.log(level, "%s: skipping %s row %s: %s", self.corpus, key, row, reason)

    def note(self, what: str, n: int = 1) -> None:
        """Count a deliberate, documented drop or fallback (logged in the summary)."""
        self.notes[what] += n

    @contextmanager
    def row(self, origin: str | Path, row: object) -> Iterator[None]:
        """Run the body for one raw row; a ValueError inside (a malformed row, including
        :class:`MalformedRow`) skips the row. Anything else, a KeyError or TypeError from a
        bug in the adapter included, is raised."""
        try:
            yield
        except ValueError as err:
            self.skip(origin, row, err)

    def add(self, **fields: Any) -> None:
        """Build a row with :func:`make_example` (``source`` is this corpus) and store it.

        Raises ValueError for an invalid label or an empty text, so call it inside
        :meth:`row` to have such rows skipped.
        """
        example = make_example(source=self.corpus, **fields)
        if not example["text"].strip():
            raise ValueError("empty text")
        self.splits.setdefault(example["split"], []).append(example)


def read_csv(
    path: Path,
    out: Collector,
    *,
    required: Sequence[str] = (),
    delimiter: str = ",",
    quoting: Literal[0, 1, 2, 3] = csv.QUOTE_MINIMAL,
) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(row number, record)`` for each well-formed data row of a CSV/TSV file.

    Row numbers count data rows from 1 (the header is not counted). A row with
    too many or too few fields is skipped through ``out``; a header that lacks a
    ``required`` column raises ValueError (the whole file is in the wrong layout).
    """
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    extra = "\x00extra"
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter, quoting=quoting, restkey=extra)
        fields = list(reader.fieldnames or [])
        missing = [c for c in required if c not in fields]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}; header is {fields}")
        for n, record in enumerate(reader, start=1):
            if extra in record or any(v is None for v in record.values()):
                out.skip(path, n, f"expected {len(fields)} fields (line {reader.line_num})")
                continue
            yield n, record


def read_lines(path: Path) -> list[str]:
    """The lines of a one-item-a-line text file (split on ``\\n`` only, so that a
    stray Unicode line separator inside a tweet does not shift the alignment)."""
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def read_mapping(path: Path, default: Mapping[int, str]) -> dict[int, str]:
    """A TweetEval ``mapping.txt`` (``<int>\\t<name>`` lines), or ``default`` if absent."""
    if not path.is_file():
        return dict(default)
    mapping: dict[int, str] = {}
    for line in read_lines(path):
        if line.strip():
            index, name = line.split("\t", 1)
            mapping[int(index)] = name.strip()
    return mapping


def read_tweeteval(folder: Path, part: str) -> Iterator[tuple[int, str, str]]:
    """Yield ``(row number, text, label)`` from ``<part>_text.txt`` + ``<part>_labels.txt``.

    The two files are aligned line by line; if their lengths differ nothing can be
    trusted, so that raises ValueError naming both files.
    """
    text_path, label_path = folder / f"{part}_text.txt", folder / f"{part}_labels.txt"
    texts, labels = read_lines(text_path), read_lines(label_path)
    if len(texts) != len(labels):
        raise ValueError(f"{text_path} has {len(texts)} lines but {label_path} has {len(labels)}")
    for n, (text, label) in enumerate(zip(texts, labels, strict=True), start=1):
        yield n, text, label


#: TweetEval file prefixes → our split names.
TWEETEVAL_PARTS: dict[str, str] = {"train": "train", "val": "dev", "test": "test"}

#: Hugging Face split names → our split names.
HUB_SPLITS: dict[str, str] = {"train": "train", "validation": "dev", "test": "test"}
