"""Micro-batching: concurrent requests share one forward pass, off the event loop.

On a CPU a forward pass over eight comments costs little more than over one, so the hook
collects the requests that arrive together (:class:`MicroBatcher`) instead of scoring
them one by one. A lone request never waits; a request that others are about to join
waits at most ``batch_wait_ms``. The model runs in a single worker thread, so the event
loop keeps accepting (and refusing) requests while it computes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from classifier.model.predictor import Prediction
    from classifier.targets import CommentItem


class MicroBatcher:
    """Collects concurrent scoring jobs and runs them through the model together.

    A job is a list of model inputs. The worker takes the first waiting job,
    then every job already queued, and, while fewer than ``max_batch`` inputs
    are collected and more requests are in the server (``expected()``, e.g.
    the requests in flight) than jobs collected, waits up to ``max_wait_ms``
    for them. A lone request therefore never waits. The model runs in
    ``executor`` (one thread), so the event loop stays free. With
    ``enabled=False`` every job runs on its own (still one at a time).
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
    ) -> None:
        self.predict = predict
        self.executor = executor
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.enabled = enabled
        self.expected = expected or (lambda: 0)
        self.batches = 0
        self.items = 0
        self._queue: asyncio.Queue[tuple[list[CommentItem], asyncio.Future[list[Prediction]]]]
        self._arrived: asyncio.Event
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._arrived = asyncio.Event()
        if self.enabled:
            self._task = asyncio.create_task(self._run(), name="threadguard-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while not self._queue.empty():
            _, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(RuntimeError("the service is shutting down"))

    async def submit(self, items: list[CommentItem]) -> list[Prediction]:
        """Predictions for ``items``, in order."""
        loop = asyncio.get_running_loop()
        if not self.enabled:
            self.batches += 1
            self.items += len(items)
            return await loop.run_in_executor(self.executor, self.predict, items)
        future: asyncio.Future[list[Prediction]] = loop.create_future()
        self._queue.put_nowait((items, future))
        self._arrived.set()
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self._queue.get()]
            count = len(jobs[0][0])
            deadline = loop.time() + self.max_wait
            while count < self.max_batch:
                if self._queue.empty():
                    remaining = deadline - loop.time()
                    if remaining <= 0 or self.expected() <= len(jobs):
                        break
                    self._arrived.clear()
                    try:
                        await asyncio.wait_for(self._arrived.wait(), remaining)
                    except asyncio.TimeoutError:  # TimeoutError on 3.11+, not on 3.10
                        break
                    continue
                job = self._queue.get_nowait()
                jobs.append(job)
                count += len(job[0])
            jobs = [j for j in jobs if not j[1].done()]  # a timed-out request left
            if not jobs:
                continue
            items = [item for job_items, _ in jobs for item in job_items]
            self.batches += 1
            self.items += len(items)
            try:
                predictions = await loop.run_in_executor(self.executor, self.predict, items)
            except Exception as exc:
                for _, future in jobs:
                    if not future.done():
                        future.set_exception(exc)
                continue
            start = 0
            for job_items, future in jobs:
                if not future.done():
                    future.set_result(predictions[start : start + len(job_items)])
                start += len(job_items)
