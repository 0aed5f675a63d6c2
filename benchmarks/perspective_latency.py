"""Latency and throughput of the Perspective drop-in against ``/v1/moderate``, same run.

Starts ``threadguard serve`` once (the shipped model unless ``--model``) on 127.0.0.1 and,
for each of ``--runs`` rounds, drives the same comments through ``POST
/v1alpha1/comments:analyze`` (all six production attributes the model has, with
``spanAnnotations``, key in the query as Perspective's clients send it) and through
``POST /v1/moderate``, alternating which goes first so that drift (a training job, thermal
throttling) falls on both. Prints per route the median over rounds of requests/s, p50 and
p99 latency (ms, as the client saw them), and the spread (min-max) of each.

    python benchmarks/perspective_latency.py --runs 5 --requests 200 --concurrency 8

The two routes share the model, batcher and limits, so the difference is the protocol's
cost (parsing, the attribute table, UTF-16 offsets, Google's error middleware). Run it on
an idle machine: the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load as hook_load  # benchmarks/load.py: comments, server start and stop

ANALYZE = "/v1alpha1/comments:analyze"
MODERATE = "/v1/moderate"
ATTRIBUTES = ("TOXICITY", "SEVERE_TOXICITY", "INSULT", "PROFANITY", "THREAT", "IDENTITY_ATTACK")


def perspective_bodies(moderate_bodies: list[bytes], attributes: list[str]) -> list[bytes]:
    """The same comments (and their article, as context) as Perspective requests."""
    out = []
    for raw in moderate_bodies:
        payload = json.loads(raw)
        entries = [{"text": payload["article"]["text"]}]
        if payload.get("parent_text"):
            entries.append({"text": payload["parent_text"]})
        body = {
            "comment": {"text": payload["text"]},
            "context": {"entries": entries},
            "requestedAttributes": {name: {} for name in attributes},
            "spanAnnotations": True,
            "languages": ["en"],
        }
        out.append(json.dumps(body).encode())
    return out


async def drive(
    url: str, path: str, token: str, bodies: list[bytes], concurrency: int
) -> dict[str, Any]:
    """Send ``bodies`` to ``path`` from ``concurrency`` workers: latencies and errors."""
    if path == ANALYZE:
        headers, params = {"content-type": "application/json"}, {"key": token}
    else:
        headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
        params = {}
    latencies: list[float] = []
    errors: dict[str, int] = {}
    queue = list(reversed(bodies))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as http:

        async def worker() -> None:
            while queue:
                body = queue.pop()
                t0 = time.perf_counter()
                response = await http.post(path, content=body, headers=headers, params=params)
                if response.status_code == 200:
                    latencies.append((time.perf_counter() - t0) * 1000)
                else:
                    key = str(response.status_code)
                    errors[key] = errors.get(key, 0) + 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    xs = sorted(latencies)

    def pct(q: float) -> float:
        return xs[min(len(xs) - 1, max(0, math.ceil(q / 100 * len(xs)) - 1))] if xs else 0.0

    return {
        "req_per_s": len(xs) / wall if wall else 0.0,
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "errors": errors,
    }


def served_attributes(url: str, token: str) -> list[str]:
    """The production attributes the loaded model provides (SEVERE_TOXICITY needs v0.6)."""
    out = []
    for name in ATTRIBUTES:
        body = {"comment": {"text": "hello"}, "requestedAttributes": {name: {}}}
        response = httpx.post(url + ANALYZE, params={"key": token}, json=body, timeout=30)
        if response.status_code == 200:
            out.append(name)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="model folder (default: the shipped model)")
    parser.add_argument("--runs", type=int, default=5, help="rounds; medians are over these")
    parser.add_argument("--requests", type=int, default=200, help="requests per route a round")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    token = secrets.token_hex(16)
    port = hook_load.free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [
        sys.executable, "-c", "from classifier.cli import app; app(prog_name='threadguard')",
        "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    if args.model is not None:
        cmd += ["--model", str(args.model)]
    print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "server.log"
        env = {**os.environ, "THREADGUARD_TOKEN": token, "HF_HUB_OFFLINE": "1"}
        with log.open("ab") as out:
            process = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            hook_load.wait_ready(url, process, timeout=300)
            attributes = served_attributes(url, token)
            print(f"attributes served by this model: {', '.join(attributes)}")
            moderate = hook_load.make_bodies(args.requests + args.warmup, args.seed)
            analyze = perspective_bodies(moderate, attributes)
            for path, bodies in ((MODERATE, moderate), (ANALYZE, analyze)):
                asyncio.run(drive(url, path, token, bodies[: args.warmup], args.concurrency))
            rounds: dict[str, list[dict[str, Any]]] = {MODERATE: [], ANALYZE: []}
            for r in range(args.runs):
                order = [MODERATE, ANALYZE] if r % 2 == 0 else [ANALYZE, MODERATE]
                for path in order:
                    bodies = (moderate if path == MODERATE else analyze)[args.warmup :]
                    figures = asyncio.run(drive(url, path, token, bodies, args.concurrency))
                    rounds[path].append(figures)
                    print(
                        f"round {r + 1} {path}: {figures['req_per_s']:.1f} req/s, "
                        f"p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms, "
                        f"errors {figures['errors'] or 0}"
                    )
        finally:
            hook_load.stop_server(process)
    print(f"load average after: {os.getloadavg()}")
    summary = {}
    print(
        f"\nmedians over {args.runs} rounds, {args.requests} requests each, "
        f"concurrency {args.concurrency}:"
    )
    print(f"{'route':32} {'req/s':>16} {'p50 ms':>18} {'p99 ms':>18}")
    for path, measured in rounds.items():
        row = {}
        cells = []
        for key in ("req_per_s", "p50_ms", "p99_ms"):
            values = [f[key] for f in measured]
            row[key] = statistics.median(values)
            cells.append(f"{row[key]:7.1f} ({min(values):.0f}-{max(values):.0f})")
        summary[path] = row
        print(f"{path:32} {cells[0]:>16} {cells[1]:>18} {cells[2]:>18}")
    if args.json is not None:
        args.json.write_text(json.dumps({"rounds": rounds, "medians": summary}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
