"""Score an archive on Ray Data: the work behind ``threadguard score --engine ray``.

The driver reads the inputs exactly as the local engine does
(:func:`classifier.io.ingest.iter_inputs`): threads are assembled, each comment's
model input is built with its target (a reply's parent, else the article) by
:func:`classifier.targets.thread_items`, and bad records become the same error
rows, written in input order. Only the model inputs travel to Ray: a part of
up to :data:`PART_COMMENTS` comments becomes a Ray dataset with an index
column, and ``map_batches`` runs it through a pool of ``workers`` actors, each
of which loads the predictor once (:func:`classifier.model.loading.load_predictor`,
the ONNX export read from the cache). Predictions come back, are put back in
input order by their index (each index exactly once, or the run fails), and
become rows with :func:`classifier.scoring.score_row`, the function the local
engine uses. So the rows are the local engine's, row for row.

What travels back is each comment's :class:`~classifier.schema.Scored` (the typed
prediction, as JSON whose floats read back exactly), the part of the row's type that
the model gives; the driver adds the comment's ids, the model and the decision.

Each part is written with the local engine's writers to one file of the
output folder: ``part-00000.jsonl`` (or ``.csv``, ``.parquet``), ``part-00001...``;
reading the files in name order gives the rows in input order.

Ray's fault tolerance covers a worker that dies: the actor is restarted and its
task retried (``max_restarts`` and ``max_task_retries``), and the index check
makes sure that no row is lost or doubled.

This module imports ray only when called; the local engine never imports it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any, cast

from classifier.io.ingest import iter_inputs, write_error
from classifier.io.options import ParsedItem, ReadOptions
from classifier.model.constants import CACHE_ENV, default_cache_dir, model_dir
from classifier.moderation.policy import Policy
from classifier.schema import Comment, ErrorRecord, Scored
from classifier.scoring import ModelInfo, ScoreRun, ScoreSummary, row_sink, score_row
from classifier.targets import CommentItem, stance_target, thread_items

logger = logging.getLogger(__name__)

#: Comments handed to Ray at a time (a part: one output file); bounds the driver's memory.
PART_COMMENTS = 200_000
#: Most comments in one Ray block, which is one ``map_batches`` call on one actor.
BLOCK_COMMENTS = 1024
#: The output formats a part file can have.
PART_FORMATS = ("jsonl", "csv", "parquet")

_INSTALL_HINT = 'the ray engine needs Ray: pip install "threadguard[ray]"'


class ScoreActor:
    """One Ray actor: loads the predictor once, then scores batches of model inputs.

    A batch is a pyarrow table with the columns ``idx``, ``text``, ``target``,
    ``context`` and ``reply``; the answer has ``idx`` and ``scored`` (each comment's
    :class:`~classifier.schema.Scored` as JSON).
    """

    def __init__(
        self,
        model: str | None,
        backend: str,
        batch_size: int,
        num_threads: int,
        cache_dir: str | None = None,
        fault_marker: str | None = None,
        spans: bool = True,
        span_holds: dict[str, float] | None = None,
    ) -> None:
        from classifier.model.loading import load_predictor
        from classifier.model.predictor import PredictOptions

        self.predictor = load_predictor(
            model,
            backend=backend,
            num_threads=num_threads,
            cache_dir=cache_dir,
            options=PredictOptions(batch_size=batch_size, spans=spans, span_holds=span_holds),
        )
        self.calls = 0
        #: for the fault-tolerance test: the second batch an actor gets kills its process,
        #: once (the marker file says it happened), so that Ray has to restart and retry
        self.fault_marker = fault_marker

    def __call__(self, batch: Any) -> dict[str, Any]:
        import numpy as np

        self.calls += 1
        if self.fault_marker and self.calls == 2 and not os.path.exists(self.fault_marker):
            Path(self.fault_marker).write_text(str(os.getpid()), encoding="utf-8")
            os._exit(1)
        columns = batch.to_pydict()
        items: list[CommentItem] = [
            {"text": text, "target": target, "context": context, "reply": reply}
            for text, target, context, reply in zip(
                columns["text"],
                columns["target"],
                columns["context"],
                columns["reply"],
                strict=True,
            )
        ]
        predictions = self.predictor.predict(items)
        scored = [
            Scored.of(item["text"], p, stance_target(item)).model_dump_json(exclude_none=True)
            for item, p in zip(items, predictions, strict=True)
        ]
        return {
            "idx": np.asarray(columns["idx"], dtype=np.int64),
            "scored": np.asarray(scored, dtype=object),
        }


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:  # pragma: no cover - depends on the install
        raise ValueError(_INSTALL_HINT) from None
    return ray


def part_files(folder: str | Path) -> list[Path]:
    """The part files of an output folder, in row order."""
    return sorted(p for p in Path(folder).iterdir() if p.name.startswith("part-"))


class _Part:
    """The comments of one part: what the rows need (kept here) and the model inputs (sent)."""

    def __init__(self) -> None:
        self.meta: list[tuple[str, Comment]] = []  # thread id, comment
        self.columns: dict[str, list[Any]] = {
            "text": [],
            "target": [],
            "context": [],
            "reply": [],
        }

    def __len__(self) -> int:
        return len(self.meta)

    def add_thread(self, thread: Any) -> None:
        for comment, item in zip(thread.comments, thread_items(thread), strict=True):
            self.meta.append((thread.id, comment))
            for name, values in self.columns.items():
                values.append(item[name])  # type: ignore[literal-required]


def score_with_ray(
    paths: Iterable[str],
    output: str | Path,
    fmt: str = "jsonl",
    options: ReadOptions | None = None,
    errors_path: str | Path | None = None,
    *,
    model: str | Path | None = None,
    workers: int = 2,
    address: str | None = None,
    backend: str = "auto",
    batch_size: int = 32,
    moderate: bool = False,
    policy: str | Path | None = None,
    part_comments: int = PART_COMMENTS,
    cpus_per_worker: int = 1,
    fault_marker: str | None = None,
    progress: bool = False,
    spans: bool = True,
) -> ScoreSummary:
    """Score every comment in ``paths`` on Ray into the folder ``output`` (see the module doc).

    A Ray already initialised in this process is used as it is. Otherwise ``address``
    joins a running Ray cluster (``ray.init(address=...)``) or, without it, a new local
    instance is started with ``workers * cpus_per_worker`` CPUs; at the end this process
    disconnects (``ray.shutdown``: a local instance stops, a cluster keeps running). Each
    of the ``workers`` actors runs the model on ``cpus_per_worker`` threads. ``fault_marker``
    is for tests: a file path; the first actor to reach its second batch kills itself once.
    """
    if fmt not in PART_FORMATS:
        raise ValueError(f"the ray engine writes {', '.join(PART_FORMATS)}, not {fmt!r}")
    if workers < 1 or cpus_per_worker < 1 or part_comments < 1:
        raise ValueError("workers, cpus_per_worker and part_comments must be positive")
    folder = Path(output)
    if folder.exists() and (not folder.is_dir() or part_files(folder)):
        raise ValueError(
            f"{folder} is a file or already holds part files: give --output a new or empty folder"
        )
    ray = _import_ray()
    # load once on the driver: checks the model and policy, names the model for the rows,
    # and makes the ONNX export (if any) that the actors on this machine then read
    local = ScoreRun.create(model, batch_size=batch_size, backend=backend, moderate=moderate,
                            policy=policy)  # fmt: skip
    info, rules, chosen = local.info, local.policy, local.predictor.backend
    del local
    actor_kwargs = {
        "model": str(model_dir(model).resolve()) if model is not None else None,
        "backend": chosen,
        "batch_size": batch_size,
        "num_threads": cpus_per_worker,
        "cache_dir": str(default_cache_dir()) if os.environ.get(CACHE_ENV) else None,
        "fault_marker": fault_marker,
        "spans": spans,
        "span_holds": (rules or Policy.default()).holds(),
    }
    summary = ScoreSummary()
    started = time.perf_counter()
    owns_ray = not ray.is_initialized()
    if owns_ray and address is not None:
        ray.init(address=address, log_to_driver=False)
    elif owns_ray:  # "local": a new instance, even where RAY_ADDRESS or a `ray start` is found
        ray.init(
            address="local",
            num_cpus=workers * cpus_per_worker,
            include_dashboard=False,
            log_to_driver=False,
        )
    try:
        ray.data.DataContext.get_current().enable_progress_bars = progress
        folder.mkdir(parents=True, exist_ok=True)
        with ExitStack() as stack:
            err_fh = (
                stack.enter_context(Path(errors_path).open("w", encoding="utf-8"))
                if errors_path
                else None
            )
            items = iter_inputs(list(paths), options or ReadOptions(), summary)
            parts = _parts(items, err_fh, part_comments)
            # the next part is read (on this machine) while the cluster scores this one
            with ThreadPoolExecutor(1, thread_name_prefix="threadguard-read") as reader:
                ahead = reader.submit(next, parts, None)
                number = 0
                while (part := ahead.result()) is not None:
                    ahead = reader.submit(next, parts, None)
                    summary.scored += _score_part(ray, part, folder, number, fmt, info, rules,
                                                  workers, cpus_per_worker, actor_kwargs)  # fmt: skip
                    number += 1
    finally:
        if owns_ray:
            ray.shutdown()
    summary.seconds = time.perf_counter() - started
    return summary


def _parts(
    items: Iterable[ParsedItem], err_fh: IO[str] | None, part_comments: int
) -> Iterator[_Part]:
    """Threads gathered into parts of about ``part_comments`` comments (a thread is never
    split; at least one part, maybe empty); error rows are written as they come."""
    part = _Part()
    number = 0
    for item in items:
        if isinstance(item, ErrorRecord):
            write_error(err_fh, item)
            continue
        part.add_thread(item)
        if len(part) >= part_comments:
            yield part
            part, number = _Part(), number + 1
    if len(part) or number == 0:
        yield part


def _score_part(
    ray: Any,
    part: _Part,
    folder: Path,
    number: int,
    fmt: str,
    info: ModelInfo,
    rules: Any,
    workers: int,
    cpus_per_worker: int,
    actor_kwargs: dict[str, Any],
) -> int:
    """Score one part on the actor pool and write it to its file; returns the rows written."""
    path = folder / f"part-{number:05d}.{fmt}"
    scored = _predict(ray, part, workers, cpus_per_worker, actor_kwargs) if len(part) else []
    with ExitStack() as stack:
        sink = row_sink(stack, path, fmt)
        for (thread_id, comment), found in zip(part.meta, scored, strict=True):
            sink(score_row(thread_id, comment, found, info, rules))
    return len(part)


def _predict(
    ray: Any, part: _Part, workers: int, cpus_per_worker: int, actor_kwargs: dict[str, Any]
) -> list[Scored]:
    """What the model found in each of a part's comments, in its order (each index exactly
    once)."""
    import pyarrow as pa

    n = len(part)
    table = pa.table({"idx": pa.array(range(n), pa.int64()), **part.columns})
    # enough blocks that every actor gets several, none bigger than BLOCK_COMMENTS
    rows = max(1, min(BLOCK_COMMENTS, -(-n // (workers * 4))))
    blocks = [table.slice(start, rows) for start in range(0, n, rows)]
    dataset = ray.data.from_arrow(blocks).map_batches(
        ScoreActor,
        fn_constructor_kwargs=actor_kwargs,
        batch_size=rows,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=cpus_per_worker,
        # Ray Data gives its pool actors max_restarts=-1 and max_task_retries=-1 unless told
        # otherwise: a worker that dies is restarted and its batch retried (tests/test_ray.py)
    )
    results: list[Scored | None] = [None] * n
    seen = 0
    for batch in _batches(dataset):
        for idx, found in zip(batch["idx"], batch["scored"], strict=True):
            if results[idx] is not None:
                raise RuntimeError(f"ray returned comment {idx} of the part twice")
            results[idx] = Scored.model_validate_json(found)
            seen += 1
    if seen != n:
        raise RuntimeError(f"ray returned {seen} of the part's {n} comments")
    return cast(list[Scored], results)


def _batches(dataset: Any) -> Iterator[dict[str, list[Any]]]:
    for batch in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
        yield batch.to_pydict()


def main_summary_lines(summary: ScoreSummary, folder: str | Path) -> list[str]:
    """The summary lines, and where the parts went."""
    files = part_files(folder) if Path(folder).is_dir() else []
    return [*summary.lines(), f"wrote {len(files)} part file(s) to {folder}"]
