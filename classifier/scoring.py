"""Score comment threads in a stream: the work behind ``threadguard score``.

Threads come from :mod:`classifier.io.readers` one at a time; their comments are
gathered into chunks of a few hundred, scored by the one batched
:class:`~classifier.model.predictor.BatchPredictor` (which sorts each chunk by length),
and written out as one row per comment. Memory stays constant however large
the input: at most one chunk of comments (and the thread being read) is held.

A row carries the comment's ids, author and text, its ``stance`` toward its
target (``label``, ``scores`` for every stance class the model has, and
``target``: ``"article"`` or ``"parent"``), its ``toxicity`` scores by label
name, and the model's name and version; with a comment model that has those
heads, its ``constructive`` scores by label and its toxic ``spans`` (character
offsets into ``text``, each with its label and score); with a moderation
policy, also the ``decision`` and its ``reasons``.
"""

from __future__ import annotations

import itertools
import json
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from tqdm.auto import tqdm

from classifier.io.ingest import ParseSummary, iter_inputs, write_error
from classifier.io.options import ParsedItem, ReadOptions
from classifier.io.outputs import check_outputs, open_text_output
from classifier.io.writers import OutputFormat, open_row_writer
from classifier.model.loading import load_predictor
from classifier.model.predictor import BatchPredictor, PredictOptions
from classifier.moderation.policy import Policy, constructive_key
from classifier.schema import Comment, CommentResult, ErrorRecord, ModelInfo, Scored, Thread
from classifier.targets import CommentItem, stance_target, thread_items

logger = logging.getLogger(__name__)

#: Comments scored together; the predictor batches within it by length.
CHUNK_COMMENTS = 512

#: How ``threadguard score --sort`` orders each thread's rows: as read, or most
#: constructive first.
SortOrder = Literal["input", "constructive"]


def score_items(
    items: Iterable[ParsedItem],
    predictor: BatchPredictor,
    model: ModelInfo,
    policy: Policy | None = None,
    chunk_size: int = CHUNK_COMMENTS,
) -> Iterator[CommentResult | ErrorRecord]:
    """One output row per comment of every thread in ``items``; error records pass through.

    Rows come out in input order. ``policy`` adds ``decision`` and ``reasons``
    to each row (the same :meth:`Policy.decide` the moderation service uses).
    """
    pending: list[tuple[Thread, Comment, CommentItem, str]] = []

    def flush() -> Iterator[CommentResult]:
        predictions = predictor.predict([p[2] for p in pending])
        for (thread, comment, _, target), prediction in zip(pending, predictions, strict=True):
            scored = Scored.of(comment.text, prediction, target)
            yield score_row(thread.id, comment, scored, model, policy)
        pending.clear()

    for item in items:
        if isinstance(item, ErrorRecord):
            # rows already waiting go out first, so output order follows input order
            yield from flush()
            yield item
            continue
        for comment, model_input in zip(item.comments, thread_items(item), strict=True):
            pending.append((item, comment, model_input, stance_target(model_input)))
            if len(pending) >= chunk_size:
                yield from flush()
    yield from flush()


def score_row(
    thread_id: str,
    comment: Comment,
    scored: Scored,
    model: ModelInfo,
    policy: Policy | None = None,
) -> CommentResult:
    """The output row of one comment from what the model found in it (both engines build
    rows here); ``policy`` adds the decision and its reasons."""
    decided: dict[str, Any] = {}
    if policy is not None:
        decision = policy.decide(scored.model_dump())
        decided = {"decision": decision.decision, "reasons": decision.reasons}
    return CommentResult(
        thread_id=thread_id,
        comment_id=comment.id,
        parent_id=comment.parent_id,
        author=comment.author,
        **scored.fields(),
        model=model,
        **decided,
    )


def sort_rows(
    rows: Iterable[CommentResult | ErrorRecord], order: SortOrder
) -> Iterator[CommentResult | ErrorRecord]:
    """``rows`` with each thread's rows (consecutive, as :func:`score_items` gives them)
    in ``order``: ``constructive`` puts the highest ``constructive`` score first (ties
    and rows without one keep their input order). Holds one thread at a time."""
    if order == "input":
        yield from rows
        return

    def thread_of(row: CommentResult | ErrorRecord) -> object:
        return row if isinstance(row, ErrorRecord) else row.thread_id

    for _, group in itertools.groupby(rows, key=thread_of):
        batch = list(group)
        if isinstance(batch[0], ErrorRecord):
            yield from batch
        else:
            rows_ = cast(list[CommentResult], batch)
            yield from sorted(rows_, key=lambda row: constructive_key(row.constructive))


#: The columns of a CSV or Parquet output that gets no row (a valid file all the same; the
#: score columns depend on the model, which scored nothing).
EMPTY_COLUMNS = ("thread_id", "comment_id", "parent_id", "author", "text")


def row_sink(
    stack: ExitStack, output: str | Path | None, fmt: str
) -> Callable[[CommentResult], None]:
    """Where rows go for ``fmt`` (jsonl, csv, parquet, table), closed with ``stack``: each
    as :meth:`CommentResult.row` gives it, flattened (:func:`flat_row`) but for JSONL."""
    if fmt == "table":
        table = stack.enter_context(_TablePrinter())
        return lambda r: table(r.row())
    writer = stack.enter_context(
        open_row_writer(output, cast(OutputFormat, fmt), empty_columns=EMPTY_COLUMNS)
    )
    if fmt == "jsonl":
        return lambda r: writer.write(r.row())
    return lambda r: writer.write(flat_row(r.row()))


def flat_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row with its nested fields spread into columns (for CSV, Parquet and tables).

    ``stance`` becomes ``stance``, ``stance_target`` and ``stance_<class>``;
    toxicity becomes one column per label; constructiveness ``constructive`` and
    ``constructive_<characteristic>``; spans one ``spans`` column of JSON text;
    reasons become ``label>=threshold`` strings joined by ``;``.
    """
    out = {k: row[k] for k in ("thread_id", "comment_id", "parent_id", "author", "text")}
    out["stance"] = row["stance"]["label"]
    out["stance_target"] = row["stance"]["target"]
    out.update({f"stance_{k}": v for k, v in row["stance"]["scores"].items()})
    out.update(row["toxicity"])
    for name, score in (row.get("constructive") or {}).items():
        out[name if name == "constructive" else f"constructive_{name}"] = score
    if "spans" in row:
        out["spans"] = json.dumps(row["spans"], ensure_ascii=False)
    if "decision" in row:
        out["decision"] = row["decision"]
        out["reasons"] = ";".join(
            f"{r['label']}={r['score']:.3f}>={r['threshold']:.3f}:{r['action']}"
            for r in row["reasons"]
        )
    out["model"] = f"{row['model']['name']}@{row['model']['version']}"
    out["backend"] = row["model"]["backend"]
    return out


@dataclass
class ScoreSummary(ParseSummary):
    """What a scoring run read and scored, and how fast."""

    scored: int = 0
    seconds: float = 0.0
    #: loading the model, an ONNX export on a first run included (set by the caller)
    load_seconds: float | None = None

    def lines(self) -> list[str]:
        rate = self.scored / self.seconds if self.seconds > 0 else 0.0
        loaded = f"; model loaded in {self.load_seconds:.1f} s" if self.load_seconds else ""
        return [
            *super().lines(),
            f"scored {self.scored} comments in {self.seconds:.1f} s ({rate:.1f} comments/s)"
            + loaded,
        ]


def model_info(predictor: BatchPredictor) -> ModelInfo:
    """Name, version and backend of a predictor's model, as rows and the service report them."""
    name, _, digest = predictor.model_version.rpartition("-")
    return ModelInfo(name=name or "threadguard", version=digest, backend=predictor.backend)


@dataclass
class ScoreRun:
    """A loaded model, its predictor and (optionally) a moderation policy, ready to score."""

    predictor: BatchPredictor
    info: ModelInfo
    policy: Policy | None = None

    @classmethod
    def create(
        cls,
        model_path: str | Path | None = None,
        *,
        batch_size: int = 32,
        device: str = "cpu",
        backend: str = "auto",
        moderate: bool = False,
        policy: str | Path | None = None,
        spans: bool = True,
    ) -> ScoreRun:
        """Load the model (``None``: the shipped default) and the policy when moderating.

        ``backend`` runs it (:mod:`classifier.model.backends`; ``auto``: the fastest one
        measured to stay within 0.5 points of the float32 reference, for ``device``);
        ``spans=False`` leaves the toxic spans out of the rows (a little faster).
        """
        rules = Policy.load(policy) if moderate or policy is not None else None
        # spans explain what the policy holds (the default policy's thresholds without one)
        holds = (rules or Policy.default()).holds()
        options = PredictOptions(batch_size=batch_size, spans=spans, span_holds=holds)
        predictor = load_predictor(model_path, device=device, backend=backend, options=options)
        if rules is not None:
            rules.check_labels(predictor.toxicity_labels)
        return cls(predictor, model_info(predictor), rules)

    def run(
        self,
        paths: Iterable[str],
        output: str | Path | None,
        fmt: str,
        options: ReadOptions | None = None,
        errors_path: str | Path | None = None,
        progress: bool = False,
        sort: SortOrder = "input",
    ) -> ScoreSummary:
        """Score every comment in ``paths`` into ``output`` (``fmt``: jsonl, csv, parquet,
        table), each thread's rows in ``sort`` order (:func:`sort_rows`)."""
        paths = list(paths)
        # before anything is opened: an output that is an input would be emptied
        check_outputs(paths, [output, errors_path])
        summary = ScoreSummary()
        started = time.perf_counter()
        items = iter_inputs(paths, options or ReadOptions(), summary)
        rows = sort_rows(score_items(items, self.predictor, self.info, self.policy), sort)
        bar = tqdm(unit=" comments", disable=not progress, file=sys.stderr, dynamic_ncols=True)
        with ExitStack() as stack:
            stack.callback(bar.close)
            err_fh = stack.enter_context(open_text_output(errors_path)) if errors_path else None
            sink = row_sink(stack, output, fmt)
            for row in rows:
                if isinstance(row, ErrorRecord):
                    write_error(err_fh, row)
                    continue
                sink(row)
                summary.scored += 1
                bar.update(1)
        summary.seconds = time.perf_counter() - started
        return summary


def highlighted(text: str, spans: Iterable[Mapping[str, Any]], limit: int = 160) -> Any:
    """The comment as a rich ``Text`` on one line, cut to ``limit`` characters, its toxic
    spans in bold red (the table's comment column)."""
    from rich.text import Text

    flat = text.replace("\r\n", "  ").replace("\n", " ").replace("\r", " ")
    cut = flat if len(flat) <= limit else flat[: limit - 3] + "..."
    out = Text(cut)
    for span in spans:
        # CRLF became two spaces, every other character one: offsets still line up
        start, end = int(span["start"]), min(int(span["end"]), len(cut))
        if start < end:
            out.stylize("bold red", start, end)
    return out


class _TablePrinter:
    """Rows as one rich table per thread, as wide as the terminal (``COLUMNS``, or 80 when
    the output is no terminal): a column each for the scores where the terminal has room
    for them beside a comment column of ``COMMENT_WIDTH``, else the scores stacked in one
    column; the comment column takes the rest and wraps."""

    COMMENT_WIDTH = 40

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console()
        self.thread: str | None = None
        self.rows: list[dict[str, Any]] = []

    def __enter__(self) -> Callable[[dict[str, Any]], None]:
        return self.add

    def __exit__(self, *exc: object) -> None:
        self.flush()

    def add(self, row: dict[str, Any]) -> None:
        if row["thread_id"] != self.thread:
            self.flush()
            self.thread = row["thread_id"]
        self.rows.append(row)

    def flush(self) -> None:
        from rich.measure import Measurement

        if not self.rows:
            return
        table = self._table(wide=True)
        # each score's column as wide as its widest cell, and the comment's COMMENT_WIDTH
        options = self.console.options.update_width(1_000_000)
        needed = 1 + self.COMMENT_WIDTH + 3
        for column in table.columns[:-1]:
            widest = max(
                Measurement.get(self.console, options, cell).maximum
                for cell in [column.header, *column.cells]
            )
            needed += min(widest, column.max_width or widest) + 3
        if needed > self.console.width:
            table = self._table(wide=False)
        self.console.print(table)
        self.rows = []

    def _table(self, wide: bool) -> Any:
        from rich.table import Table

        moderated = "decision" in self.rows[0]
        table = Table(title=f"thread {self.thread}", show_lines=True)
        if wide:
            table.add_column("id", no_wrap=True)
            table.add_column("author", max_width=16)
            names = ["stance", "toxicity", "top label"]
            if "constructive" in self.rows[0]:
                names.append("constructive")
            if moderated:
                names.append("decision")
            for name in names:
                table.add_column(name, no_wrap=True)
        else:
            table.add_column("id / author", max_width=16, overflow="fold")
            table.add_column("scores", max_width=26, overflow="fold")
        table.add_column("comment", min_width=self.COMMENT_WIDTH if wide else 16, overflow="fold")
        for row in self.rows:
            tox = row["toxicity"]
            top = max((k for k in tox if k != "toxicity"), key=tox.__getitem__, default=None)
            stance = row["stance"]
            cells = [
                f"{stance['label']} {stance['scores'][stance['label']]:.2f} ({stance['target']})",
                f"{tox['toxicity']:.2f}" if "toxicity" in tox else "",
                f"{top} {tox[top]:.2f}" if top else "",
            ]
            if "constructive" in row:
                cells.append(f"{row['constructive']['constructive']:.2f}")
            if moderated:
                cells.append(row["decision"])
            comment_id = row["comment_id"] + (f" ↳{row['parent_id']}" if row["parent_id"] else "")
            text = highlighted(row["text"], row.get("spans") or [])
            if wide:
                table.add_row(comment_id, row["author"] or "", *cells, text)
                continue
            scores = [cells[0], f"toxicity {cells[1]}" if cells[1] else "", cells[2]]
            if "constructive" in row:
                scores.append(f"constructive {cells[3]}")
            if moderated:
                scores.append(cells[-1])
            scores = [line for line in scores if line]
            table.add_row(f"{comment_id}\n{row['author'] or ''}", "\n".join(scores), text)
        return table
