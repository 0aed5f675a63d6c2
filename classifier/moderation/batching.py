"""Micro-batching and fair scheduling: requests share forward passes, and none holds the model.

On a CPU a forward pass over eight comments costs little more than over one, so the hook
collects the requests that arrive together (:class:`MicroBatcher`) instead of scoring
them one by one. A lone request never waits; a request that others are about to join
waits at most ``batch_wait_ms``. The model runs in a single worker thread, so the event
loop keeps accepting (and refusing) requests while it computes.

One request may still carry much more work than another (``/v1/score`` with 52 comments
of 20,000 characters is over a thousand 256-token windows, a minute of CPU). So that it
cannot stall everyone else:

- each job is cut into slices of about ``slice_cost`` (the caller's cost of each item,
  e.g. its windows' tokens), and the batcher takes slices from the waiting jobs in turn
  (round robin), so a small request waits for at most one slice of a large one;
- while a slice runs, a small job that arrives is run *between two forward passes* of
  that slice (:class:`_Gate`, through the ``before_pass`` hook every
  :class:`~classifier.model.predictor.BatchPredictor` calls before a pass): one
  long comment alone is many passes, so slicing by comment alone would not be enough;
- a job whose caller stops waiting (its request timed out, its client went away: the
  ``submit`` coroutine is cancelled) is dropped: its slices not yet run never run.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from classifier.model.predictor import Prediction
    from classifier.targets import CommentItem

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class _Job:
    """One request's items, the slices of it already handed out, and its results."""

    items: list[CommentItem]
    costs: list[int]
    future: asyncio.Future[list[Prediction]]
    results: list[Prediction | None] = field(default_factory=list)
    next: int = 0  # the first item not yet handed out
    pending: int = 0  # items handed out and not yet back

    @property
    def dropped(self) -> bool:
        return self.future.done()  # answered, failed, or its caller stopped waiting

    @property
    def remaining_cost(self) -> int:
        return sum(self.costs[self.next :])

    def take(self, budget: int, most: int) -> list[int]:
        """Indices of the next items: at least one, then while within ``budget`` and ``most``."""
        taken = [self.next]
        spent = self.costs[self.next]
        self.next += 1
        while (
            self.next < len(self.items)
            and len(taken) < most
            and spent + self.costs[self.next] <= budget
        ):
            spent += self.costs[self.next]
            taken.append(self.next)
            self.next += 1
        self.pending += len(taken)
        return taken

    def deliver(self, indices: Sequence[int], predictions: Sequence[Prediction]) -> None:
        self.pending -= len(indices)
        if self.dropped:
            return
        for i, prediction in zip(indices, predictions, strict=True):
            self.results[i] = prediction
        if self.next >= len(self.items) and self.pending == 0:
            self.future.set_result([p for p in self.results if p is not None])

    def fail(self, exc: BaseException) -> None:
        if not self.dropped:
            self.future.set_exception(exc)


Piece = tuple[_Job, list[int]]


class _Gate:
    """Runs small jobs between the forward passes of a long one, in the model's thread.

    :meth:`hooked` derives a predictor whose ``before_pass`` option (its comment model's
    too) calls the gate: before each pass, jobs handed over by :meth:`offer` run first,
    through the whole predictor, and their results go back to the event loop. Nested
    passes do not nest again.
    """

    def __init__(self, batcher: MicroBatcher) -> None:
        self.batcher = batcher
        self.lock = threading.Lock()
        self.busy = False  # a batch is running in the model's thread
        self.waiting: list[Piece] = []
        self.local = threading.local()

    def hooked(self, predictor: Any) -> Any | None:
        """``predictor`` derived with this gate as its ``before_pass`` option (sharing its
        model), or None when it takes no options (every
        :class:`~classifier.model.predictor.BatchPredictor` does)."""
        if not hasattr(predictor, "with_options"):
            return None
        return predictor.with_options(before_pass=self._before_pass)

    def _before_pass(self) -> None:
        if not getattr(self.local, "nested", False):
            self._run_waiting()

    def offer(self, piece: Piece) -> bool:
        """Hand ``piece`` to the running batch's next pass; False when no batch is running."""
        with self.lock:
            if not self.busy:
                return False
            self.waiting.append(piece)
            return True

    def begin(self) -> None:
        with self.lock:
            self.busy = True

    def end(self) -> list[Piece]:
        """The batch is done: the pieces no pass picked up, for the batcher to run next."""
        with self.lock:
            self.busy = False
            left, self.waiting = self.waiting, []
        return left

    def _run_waiting(self) -> None:
        with self.lock:
            pieces, self.waiting = self.waiting, []
        pieces = [p for p in pieces if not p[0].dropped]
        if not pieces:
            return
        self.local.nested = True
        try:
            self.batcher.run_pieces_in_thread(pieces)
        finally:
            self.local.nested = False


class MicroBatcher:
    """Collects concurrent scoring jobs and runs them through the model together, fairly.

    A job is a list of model inputs (with a cost each, default 1). The worker takes a
    slice of the first waiting job, then a slice of each other waiting job in turn, up to
    ``max_batch`` inputs and ``slice_cost``; while fewer are collected and more requests
    are in the server (``expected()``, e.g. the requests in flight) than jobs collected, it
    waits up to ``max_wait_ms`` for them. A lone request therefore never waits. A job
    with inputs left goes to the back of the line. The model runs in ``executor`` (one
    thread), so the event loop stays free. With ``enabled=False`` every job runs on its
    own (still one at a time, without slicing).
    """

    def __init__(
        self,
        predict: Callable[[list[CommentItem]], list[Prediction]],
        executor: ThreadPoolExecutor,
        *,
        max_batch: int = 32,
        max_wait_ms: float = 3.0,
        enabled: bool = True,
        expected: Callable[[], int] | None = None,
        slice_cost: int = 2048,
    ) -> None:
        self.predict = predict
        self.executor = executor
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.enabled = enabled
        self.expected = expected or (lambda: 0)
        self.slice_cost = slice_cost
        self.batches = 0
        self.items = 0
        self.dropped = 0  # inputs never run because their request stopped waiting
        self._jobs: deque[_Job] = deque()
        self._arrived: asyncio.Event
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.gate = _Gate(self)

    def install_gate(self, predictor: Any) -> Any | None:
        """Let small jobs run between the forward passes of a long one (see :class:`_Gate`):
        from now on the batcher predicts with ``predictor`` derived with the gate's hook,
        which it returns (None, and nothing changes, when ``predictor`` takes no hook)."""
        hooked = self.gate.hooked(predictor)
        if hooked is not None:
            self.predict = hooked.predict
        return hooked

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._jobs = deque()
        self._arrived = asyncio.Event()
        if self.enabled:
            self._task = asyncio.create_task(self._run(), name="threadguard-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while self._jobs:
            self._jobs.popleft().fail(RuntimeError("the service is shutting down"))

    async def submit(
        self, items: list[CommentItem], costs: Sequence[int] | None = None
    ) -> list[Prediction]:
        """Predictions for ``items``, in order; ``costs`` (one each, e.g. tokens) decide how
        the job is sliced. If the caller stops waiting (cancelled: a timeout, a client gone),
        the job's inputs not yet run are dropped."""
        loop = asyncio.get_running_loop()
        if not items:
            return []
        if not self.enabled:
            self.batches += 1
            self.items += len(items)
            return await loop.run_in_executor(self.executor, self.predict, items)
        job = _Job(
            list(items),
            [max(1, int(c)) for c in costs] if costs is not None else [1] * len(items),
            loop.create_future(),
            [None] * len(items),
        )
        # a small job arriving while a batch runs goes in between its forward passes
        if job.remaining_cost <= self.slice_cost and len(items) <= self.max_batch:
            indices = job.take(self.slice_cost, self.max_batch)
            if not self.gate.offer((job, indices)):
                job.next, job.pending = 0, 0
                self._jobs.append(job)
        else:
            self._jobs.append(job)
        self._arrived.set()
        try:
            return await asyncio.shield(job.future)
        except asyncio.CancelledError:
            if not job.future.done():
                self.dropped += len(items) - job.next
                job.future.cancel()
                with suppress(ValueError):
                    self._jobs.remove(job)
                logger.info(
                    "dropped %d of %d inputs: their request stopped waiting",
                    len(items) - job.next,
                    len(items),
                )
            raise

    def _collect(self, pieces: list[Piece]) -> list[Piece]:
        """``pieces`` and a slice of each waiting job in turn, within ``max_batch`` and
        ``slice_cost`` in all."""
        pieces = list(pieces)
        count = sum(len(indices) for _, indices in pieces)
        cost = sum(job.costs[i] for job, indices in pieces for i in indices)
        for _ in range(len(self._jobs)):
            if count >= self.max_batch or (pieces and cost >= self.slice_cost):
                break
            job = self._jobs.popleft()
            if job.dropped:
                continue
            if pieces and job.costs[job.next] + cost > self.slice_cost:
                self._jobs.appendleft(job)  # its turn comes first next time
                break
            indices = job.take(self.slice_cost - cost, self.max_batch - count)
            pieces.append((job, indices))
            count += len(indices)
            cost += sum(job.costs[i] for i in indices)
            if job.next < len(job.items):
                self._jobs.append(job)  # round robin: back of the line
        return pieces

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        leftover: list[Piece] = []
        while True:
            if not leftover and not self._jobs:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            pieces = self._collect(leftover)
            leftover = []
            deadline = loop.time() + self.max_wait
            while len(pieces) < self.max_batch:
                if not self._jobs:
                    remaining = deadline - loop.time()
                    if remaining <= 0 or self.expected() <= len(pieces):
                        break
                    self._arrived.clear()
                    try:
                        await asyncio.wait_for(self._arrived.wait(), remaining)
                    except asyncio.TimeoutError:  # TimeoutError on 3.11+, not on 3.10
                        break
                    continue
                more = self._collect(pieces)
                if len(more) == len(pieces):
                    break  # full: within max_batch or slice_cost
                pieces = more
            pieces = [p for p in pieces if not p[0].dropped]  # a request that left
            if not pieces:
                continue
            self.gate.begin()
            try:
                await loop.run_in_executor(self.executor, self.run_pieces_in_thread, pieces)
            finally:
                leftover = self.gate.end()

    def run_pieces_in_thread(self, pieces: list[Piece]) -> None:
        """Run ``pieces`` as one batch (in the model's thread) and hand each job its results
        on the event loop."""
        items = [job.items[i] for job, indices in pieces for i in indices]
        self.batches += 1
        self.items += len(items)
        assert self._loop is not None
        try:
            predictions = self.predict(items)
        except Exception as exc:
            logger.debug("a batch of %d inputs failed", len(items), exc_info=True)
            for job, _ in pieces:
                self._loop.call_soon_threadsafe(job.fail, exc)
            return
        start = 0
        for job, indices in pieces:
            part = predictions[start : start + len(indices)]
            start += len(indices)
            self._loop.call_soon_threadsafe(job.deliver, indices, part)
