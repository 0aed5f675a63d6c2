"""Issue 40: no single request stalls the hook. A request's work is bounded (a token budget,
long comments counting their windows), long jobs are sliced and interleaved with others,
small jobs run between the forward passes of a long one, and the work of a request that
stopped waiting (timed out, client gone) is dropped."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi.testclient import TestClient

from classifier.labels import STANCE_LABELS, TOXICITY_LABELS
from classifier.moderation.app import create_app
from classifier.moderation.batching import MicroBatcher
from classifier.moderation.guard import run_until_disconnect
from classifier.moderation.settings import ServiceSettings
from classifier.moderation.state import item_cost
from classifier.targets import comment_item


def _prediction() -> dict[str, Any]:
    scores = {label: 1.0 / len(STANCE_LABELS) for label in STANCE_LABELS}
    return {
        "stance": {"label": STANCE_LABELS[0], "scores": scores},
        "toxicity": dict.fromkeys(TOXICITY_LABELS, 0.01),
    }


class _Passes:
    """A predictor that runs each input as one forward pass of ``delay`` s, calling its
    ``before_pass`` option first as a BatchPredictor does (one derived with
    ``with_options`` shares the record), and records the texts of each batch it was asked
    for."""

    stance_labels = STANCE_LABELS
    toxicity_labels = TOXICITY_LABELS

    def __init__(self, delay: float = 0.0, before_pass: Callable[[], None] | None = None) -> None:
        self.delay = delay
        self.before_pass = before_pass
        self.batches: list[list[str]] = []

    def with_options(self, *, before_pass: Callable[[], None]) -> _Passes:
        derived = _Passes(self.delay, before_pass)
        derived.batches = self.batches
        return derived

    def _run_batch(self, encoded: list[Any]) -> None:
        if self.before_pass is not None:
            self.before_pass()
        time.sleep(self.delay)

    def predict(self, items: list[Any]) -> list[dict[str, Any]]:
        self.batches.append([i["text"] for i in items])
        for item in items:
            self._run_batch([item])
        return [_prediction() for _ in items]


def test_a_long_comment_counts_its_windows() -> None:
    short, long = item_cost(comment_item("hello")), item_cost(comment_item("word " * 4000))
    assert short == 2 * 256  # its stance pass and one window
    assert long >= 20 * 256  # 20,000 characters: many windows


def test_a_request_over_the_token_budget_is_413_before_any_work() -> None:
    fake = _Passes()
    settings = ServiceSettings(no_auth=True, max_request_tokens=16_384)
    with TestClient(create_app(settings, predictor=fake)) as client:
        comments = [{"text": "word " * 4000} for _ in range(5)]  # 20,000 characters each
        answer = client.post("/v1/score", json={"comments": comments})
        assert answer.status_code == 413, answer.text
        assert "tokens of model work" in answer.json()["detail"]
        assert "the limit is 16384" in answer.json()["detail"]
        assert not any(len(b) == 5 for b in fake.batches)
        assert client.post("/v1/score", json={"comments": comments[:1]}).status_code == 200


def test_a_long_job_is_sliced_and_interleaved_with_a_small_one() -> None:
    async def scenario() -> list[list[str]]:
        fake = _Passes(delay=0.01)
        with ThreadPoolExecutor(1) as pool:
            batcher = MicroBatcher(fake.predict, pool, max_wait_ms=0, slice_cost=4)
            await batcher.start()
            heavy = asyncio.ensure_future(
                batcher.submit([comment_item(f"long {i}") for i in range(12)], [2] * 12)
            )
            await asyncio.sleep(0.005)
            (_small,) = await batcher.submit([comment_item("small")])
            assert not heavy.done()  # the small job did not wait for the whole long one
            assert len(await heavy) == 12
            await batcher.stop()
        return fake.batches

    batches = asyncio.run(scenario())
    assert all(len(b) <= 2 for b in batches)  # slices of cost 4: two inputs of cost 2
    assert ["small"] in batches or any("small" in b for b in batches[:3])


def test_a_small_job_runs_between_the_passes_of_a_long_batch() -> None:
    """One long comment is many forward passes: a small job need not wait for all of them."""

    async def scenario() -> tuple[float, float]:
        fake = _Passes(delay=0.05)
        with ThreadPoolExecutor(1) as pool:
            batcher = MicroBatcher(fake.predict, pool, max_wait_ms=0, slice_cost=100)
            assert batcher.install_gate(fake) is not None
            await batcher.start()
            started = time.perf_counter()
            # 20 passes of 50 ms in one slice (cost within slice_cost)
            heavy = asyncio.ensure_future(
                batcher.submit([comment_item(f"w{i}") for i in range(20)], [1] * 20)
            )
            await asyncio.sleep(0.1)
            await batcher.submit([comment_item("small")])
            small_done = time.perf_counter() - started
            await heavy
            heavy_done = time.perf_counter() - started
            await batcher.stop()
        return small_done, heavy_done

    small_done, heavy_done = asyncio.run(scenario())
    assert small_done < heavy_done - 0.3, (small_done, heavy_done)


def test_work_of_a_request_that_stopped_waiting_is_dropped() -> None:
    async def scenario() -> tuple[int, int]:
        fake = _Passes(delay=0.02)
        with ThreadPoolExecutor(1) as pool:
            batcher = MicroBatcher(fake.predict, pool, max_wait_ms=0, slice_cost=2)
            await batcher.start()
            items = [comment_item(f"long {i}") for i in range(50)]
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(batcher.submit(items, [2] * 50), 0.1)
            await asyncio.sleep(0.2)  # what was running finishes; nothing more starts
            await batcher.stop()
        return sum(len(b) for b in fake.batches), batcher.dropped

    ran, dropped = asyncio.run(scenario())
    assert ran < 15, ran
    assert dropped >= 35


def test_a_client_that_goes_away_cancels_its_request() -> None:
    cancelled = threading.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["body"] == b"{}"
        try:
            await asyncio.sleep(10)  # waiting for the model
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def scenario() -> bool:
        messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        async def receive() -> dict[str, Any]:
            return await messages.get()

        async def send(message: dict[str, Any]) -> None:
            pass

        async def leave() -> None:
            await asyncio.sleep(0.05)
            await messages.put({"type": "http.disconnect"})

        leaving = asyncio.ensure_future(leave())
        gone = await asyncio.wait_for(run_until_disconnect(app, {}, b"{}", receive, send), 2)
        await leaving
        return gone

    assert asyncio.run(scenario()) is True
    assert cancelled.is_set()


def test_small_requests_answer_while_a_heavy_score_request_runs() -> None:
    """The hook end to end: a heavy /v1/score request in a thread, small /v1/moderate calls
    answered meanwhile (each pass 20 ms; the heavy request is ~1.5 s of passes)."""
    fake = _Passes(delay=0.02)
    settings = ServiceSettings(no_auth=True, slice_tokens=2048)
    with TestClient(create_app(settings, predictor=fake)) as client:
        heavy_answer: list[int] = []

        def heavy() -> None:
            comments = [{"text": f"comment {i} " + "word " * 200} for i in range(64)]
            answer = client.post("/v1/score", json={"comments": comments})
            heavy_answer.append(answer.status_code)

        thread = threading.Thread(target=heavy)
        thread.start()
        time.sleep(0.1)
        latencies = []
        while thread.is_alive() and len(latencies) < 20:
            started = time.perf_counter()
            assert client.post("/v1/moderate", json={"text": "hello"}).status_code == 200
            latencies.append(time.perf_counter() - started)
        thread.join()
        assert heavy_answer == [200]
        assert latencies and max(latencies) < 1.0, latencies
