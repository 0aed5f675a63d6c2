"""Reliability benchmark: hostile input through parse, score and the moderation hook.

Part 1 writes hostile files (JSONL in the thread and flat forms, CSV; wrong types,
deep nesting, bytes that are not UTF-8, lone surrogates, NUL, CR, huge fields, stray
quotes, reply cycles, missing parents), generated reproducibly from ``--seed``, and
runs ``threadguard parse`` and ``threadguard score`` on them as a user would (in
subprocesses; JSONL also on stdin). Per run it prints the records tried, output
rows, error rows, crashes (a traceback or an exit code other than 0/1) and the loss
count ``records - rows - error rows``, which must be 0.

Part 2 starts ``threadguard serve`` on 127.0.0.1 and attacks it: a flood of slow
bodies (without credentials and with forged signatures) while authenticated clients
keep asking, requests without or with wrong credentials, oversized bodies (declared
and chunked), malformed bodies (not UTF-8, nested too deeply, surrogates, wrong
types), an overload of twice ``--max-in-flight`` clients, and ``--big-titles``
requests each carrying a 1 MB article title. It prints the answers by status for
each attack, the latency of the authenticated requests during the flood, the
server's RSS before and after the big titles, and whether it is healthy afterwards.

    python benchmarks/reliability.py [--model DIR] [--records 10000] [--big-titles 1000]

Without ``--model`` the shipped default model is used (``--backend auto``).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load as hook_load  # benchmarks/load.py: the hook's start, readiness and stop

CLI = [sys.executable, "-c", "from classifier.cli import app; app(prog_name='threadguard')"]
TOKEN = "reliability-benchmark-token"

HOSTILE_TEXT = [
    "",
    "   ",
    "a\x00b",
    "line one\r\nline two\rthree",
    "\ud800",
    "x\udfffy",
    "emoji 😀 \u202e override",
    "<b>html</b> &amp; entities",
    'quote " comma ,',
    "x" * 60_000,
]
WRONG_TYPES: list[Any] = [5, -1.5, True, ["a"], {"b": 1}, [], {}, 10**30]


def deep(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


GARBAGE_LINES: list[bytes] = [
    deep(5_000).encode(),
    b"[" * 100_000,
    b'{"thread_id": "t", "comment_id": "x", "text": ',
    b"caf\xe9 \xff\xfe not utf-8",
    b"[1, 2, 3]",
    b"null",
    b"1" * 5_000,
    b"\x00\x00\x00",
]


# --------------------------------------------------------------------------- hostile files


def _comment_text(rng: random.Random, i: int) -> str:
    return f"comment {i}: " + " ".join(rng.choice(["fair", "wrong", "why", "agreed", "no"])
                                       for _ in range(rng.randrange(3, 30)))  # fmt: skip


def hostile_jsonl(rng: random.Random, records: int) -> tuple[bytes, int]:
    """Thread-form and flat JSONL lines with damage; the bytes and their record count."""
    lines: list[bytes] = []
    count = 0
    thread = 0
    while count < records:
        thread += 1
        if rng.random() < 0.25:  # a thread line of 1-8 comments
            n = rng.randrange(1, 9)
            comments: list[Any] = []
            for i in range(n):
                c: dict[str, Any] = {"id": str(i), "text": _comment_text(rng, i)}
                if i and rng.random() < 0.7:
                    c["parent_id"] = rng.choice(
                        [str(rng.randrange(i)), str(i), "nowhere", str(i + 1)]
                    )
                r = rng.random()
                if r < 0.05:
                    c["parent_id"] = rng.choice([["0"], {"id": "0"}, 1.5])
                elif r < 0.10:
                    c["text"] = rng.choice(HOSTILE_TEXT + WRONG_TYPES)
                elif r < 0.12:
                    comments.append(rng.choice([5, "text", None]))
                    continue
                comments.append(c)
            article: dict[str, Any] = {
                "title": "Council approves budget",
                "body": "It did.\n\nMore.",
            }
            obj: dict[str, Any] = {"id": f"T{thread}", "article": article, "comments": comments}
            r = rng.random()
            if r < 0.05:
                article["title"] = rng.choice([5, ["a"], "\ud800"])
            elif r < 0.10:
                obj["extra"] = rng.choice([5, [1], "x"])
            elif r < 0.12:
                article["body"] = ["a", "b"]
            lines.append(json.dumps(obj).encode())
            count += n
            continue
        for k in range(rng.randrange(1, 15)):  # a flat thread
            if rng.random() < 0.04:
                lines.append(rng.choice(GARBAGE_LINES))
                count += 1
                continue
            row: dict[str, Any] = {"thread_id": f"t{thread}", "comment_id": str(k),
                                   "text": _comment_text(rng, k), "article_title": "A title"}  # fmt: skip
            if k and rng.random() < 0.7:
                row["parent_id"] = str(rng.randrange(k + 1))
            r = rng.random()
            if r < 0.05:
                key = rng.choice(["text", "parent_id", "comment_id", "author", "timestamp"])
                row[key] = rng.choice(WRONG_TYPES)
            elif r < 0.10:
                row["text"] = rng.choice(HOSTILE_TEXT)
            elif r < 0.12:
                row["thread_extra"] = rng.choice([deep(2_000), "[1]", "{bad"])
            elif r < 0.13:
                row["extra"] = {"k": "\ud800"}
            lines.append(json.dumps(row).encode())
            count += 1
    return b"\n".join(lines) + b"\n", count


def hostile_csv(rng: random.Random, records: int) -> tuple[bytes, int]:
    """A CSV file with damaged rows and one stray quote near the end; bytes and record count."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["thread_id", "comment_id", "parent_id", "text", "author"])
    chunks = [out.getvalue().encode()]
    stray = records - 40  # like the file: one unclosed quote, 39 rows after it
    for i in range(records):
        thread = f"c{i // 20}"
        if i == stray:
            chunks.append(f'{thread},{i},,"never closed\n'.encode())
            continue
        if i > stray:  # no quote character after the stray one (see tests/hostile.py)
            chunks.append(f"{thread},{i},,plain text {i},ann\n".encode())
            continue
        r = rng.random()
        if r < 0.04:
            chunks.append(f"{thread},{i},,bad ".encode() + b"\xff\xfe" + b" bytes,ann\n")
            continue
        if r < 0.07:
            chunks.append(f"{thread},{i},,too,many,fields\n".encode())
            continue
        text = (
            rng.choice([*HOSTILE_TEXT[:4], *HOSTILE_TEXT[6:]])
            if r < 0.15
            else _comment_text(rng, i)
        )
        parent = str(rng.randrange(i // 20 * 20, i + 2)) if i % 20 and rng.random() < 0.7 else ""
        out = io.StringIO(newline="")
        csv.writer(out, lineterminator="\n").writerow([thread, i, parent, text, "ann"])
        chunks.append(out.getvalue().encode("utf-8", "surrogateescape"))
    return b"".join(chunks), records


# --------------------------------------------------------------------------- part 1


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def run_batch(
    name: str, args: list[str], records: int, out: Path, errors: Path, stdin: bytes | None
) -> dict[str, Any]:
    """Run one ``threadguard`` command; count its rows, error rows and crashes."""
    started = time.perf_counter()
    done = subprocess.run(
        [*CLI, *args, "-o", str(out), "--errors", str(errors)],
        input=stdin, capture_output=True, timeout=3600, check=False,
    )  # fmt: skip
    stderr = done.stderr.decode("utf-8", "replace")
    crashed = int("Traceback" in stderr or done.returncode not in (0, 1))
    if args[0] == "parse":
        rows = sum(len(json.loads(line)["comments"]) for line in _lines(out))
    else:
        rows = len(_lines(out))
    error_rows = len(_lines(errors))
    return {"run": name, "records": records, "rows": rows, "errors": error_rows,
            "crashes": crashed, "lost": records - rows - error_rows,
            "seconds": time.perf_counter() - started, "stderr": stderr[-800:] if crashed else ""}  # fmt: skip


def part_one(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    rng = random.Random(args.seed)
    jsonl, jsonl_records = hostile_jsonl(rng, int(args.records * 0.75))
    csv_bytes, csv_records = hostile_csv(rng, args.records - jsonl_records)
    (tmp / "hostile.jsonl").write_bytes(jsonl)
    (tmp / "hostile.csv").write_bytes(csv_bytes)
    model = ["--model", args.model] if args.model else []
    runs = [
        ("parse jsonl", ["parse", str(tmp / "hostile.jsonl")], jsonl_records, None),
        ("parse stdin", ["parse", "-"], jsonl_records, jsonl),
        ("parse csv", ["parse", str(tmp / "hostile.csv")], csv_records, None),
        ("score jsonl", ["score", str(tmp / "hostile.jsonl"), "-f", "jsonl", *model],
         jsonl_records, None),
        ("score csv", ["score", str(tmp / "hostile.csv"), "-f", "jsonl", *model], csv_records, None),
    ]  # fmt: skip
    results = []
    for name, cmd, records, stdin in runs:
        out, errors = tmp / f"{name.replace(' ', '-')}.out", tmp / f"{name.replace(' ', '-')}.err"
        result = run_batch(name, cmd, records, out, errors, stdin)
        results.append(result)
        print(f"  {name}: done in {result['seconds']:.0f} s", file=sys.stderr, flush=True)
    return results


# --------------------------------------------------------------------------- part 2


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def slow_socket(port: int, headers: dict[str, str]) -> socket.socket:
    """A connection that declares a 1,000-byte body and sends none of it."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = "POST /v1/moderate HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
    sock.sendall((head + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode())
    return sock


def socket_status(sock: socket.socket) -> int:
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                return 0
            data += chunk
    except OSError:
        return 0
    finally:
        sock.close()
    return int(data.split(b" ", 2)[1])


def attack(name: str, jobs: list[Callable[[], int]], workers: int) -> tuple[str, Counter[int]]:
    with ThreadPoolExecutor(workers) as pool:
        return name, Counter(pool.map(lambda job: job(), jobs))


def part_two(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    cmd = [*CLI, "serve", "--port", str(port), "--log-level", "warning",
           "--max-in-flight", str(args.max_in_flight)]  # fmt: skip
    if args.model:
        cmd += ["--model", args.model]
    # an HMAC secret too, so that forged signatures must be read (within the deadline)
    env = {**os.environ, "THREADGUARD_TOKEN": TOKEN, "THREADGUARD_HMAC_SECRET": "hmac-" + TOKEN,
           "HF_HUB_OFFLINE": "1"}  # fmt: skip
    log = (tmp / "serve.log").open("wb")
    server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    auth = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
    report: dict[str, Any] = {"attacks": []}
    try:
        try:
            hook_load.wait_ready(url, server, timeout=300)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}: see {tmp / 'serve.log'}") from None
        client = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=512))
        failures: Counter[str] = Counter()

        def post(
            body: bytes, headers: dict[str, str] | None = None, path: str = "/v1/moderate"
        ) -> int:
            try:
                return client.post(url + path, content=body, headers=headers or auth).status_code
            except httpx.HTTPError as exc:
                failures[type(exc).__name__] += 1
                return 0

        # slow-body flood: 64 without credentials, 64 with forged signatures
        flood = [slow_socket(port, {}) for _ in range(64)]
        flood += [
            slow_socket(port, {"x-threadguard-signature": "sha256=" + "0" * 64}) for _ in range(64)
        ]
        honest: Counter[int] = Counter()
        latencies = []
        for _ in range(50):
            started = time.perf_counter()
            honest[post(b'{"text": "A fair point, well made."}')] += 1
            latencies.append((time.perf_counter() - started) * 1000)
        flooded = Counter(socket_status(s) for s in flood)
        report["attacks"].append(("slow-body flood (128 conns)", flooded))
        report["attacks"].append(("authenticated during flood", honest))
        latencies.sort()
        report["flood_latency_ms"] = (latencies[len(latencies) // 2], latencies[-1])

        report["attacks"].append(attack("no or wrong credentials", [
            lambda: post(b'{"text": "x"}', {"content-type": "application/json"}),
            lambda: post(b'{"text": "x"}', {"authorization": "Bearer wrong"}),
            lambda: post(b'{"text": "x"}', {"x-threadguard-signature": "sha256=00"}),
            lambda: post(b"{oops", {"authorization": "Basic Zm9vOmJhcg=="}),
        ] * 50, 8))  # fmt: skip

        big = b'{"text": "' + b"x" * 100_000 + b'"}'

        def chunked() -> int:
            try:
                return client.post(url + "/v1/moderate", content=iter([big[:50_000], big[50_000:]]),
                                   headers=auth).status_code  # fmt: skip
            except httpx.HTTPError:
                return 0

        report["attacks"].append(attack("oversized (declared, chunked, long text)", [
            lambda: post(big), chunked,
            lambda: post(json.dumps({"text": "y" * 25_000}).encode()),
            lambda: post(json.dumps({"comments": [{"text": "a"}] * 80}).encode(), path="/v1/score"),
        ] * 25, 8))  # fmt: skip

        malformed = [b'{"text": "caf\xe9"}', b"\xff\xfe", deep(5_000).encode(),
                     ('{"text": "a", "x": ' + "[" * 40 + "]" * 40 + "}").encode(),
                     b'{"text": "a", "parent_text": "\\ud800"}', b'{"text": "a", "comment_id": "\\udfff"}',
                     b'{"text": 5}', b'{"text": ["a"]}', b"[]", b"", b'{"text": ' + b"1" * 5_000 + b"}"]  # fmt: skip
        coral = [b'{"action": "NEW", "comment": {"body": "x\\ud800"}}', b'{"action": "NEW"}']
        report["attacks"].append(attack("malformed and mistyped", [
            *[(lambda b=b: post(b)) for b in malformed],
            *[(lambda b=b: post(b, path="/v1/coral")) for b in coral],
        ] * 20, 8))  # fmt: skip

        overload_started = time.perf_counter()
        overload = attack("overload (2x max-in-flight)", [
            lambda: post(b'{"text": "' + b"word " * 300 + b'"}')
        ] * (args.max_in_flight * 2 * 3), args.max_in_flight * 2)  # fmt: skip
        report["attacks"].append(overload)
        report["overload_s"] = time.perf_counter() - overload_started

        # 1 MB article titles (many words, so the model input is cut to 300 of them)
        title = ("budget " * 150_000)[:1_000_000]
        report["rss_before"] = rss_mb(server.pid)

        def titled(i: int) -> int:
            body = json.dumps({"comments": [{"text": "Fair."}],
                               "article": {"id": f"a{i}", "title": f"{i} {title}"}}).encode()  # fmt: skip
            return post(body, path="/v1/score")

        with ThreadPoolExecutor(4) as pool:
            big_titles = Counter(pool.map(titled, range(args.big_titles)))
        report["attacks"].append((f"{args.big_titles} requests with 1 MB titles", big_titles))
        report["rss_after"] = rss_mb(server.pid)
        report["healthy"] = (
            httpx.get(url + "/readyz", timeout=5).status_code == 200
            and post(b'{"text": "after the attacks"}') == 200
        )
        report["failures"] = failures
        client.close()
    finally:
        server.terminate()
        server.wait(30)
        log.close()
    return report


# --------------------------------------------------------------------------- main


def data_safety(tmp: Path) -> list[tuple[str, int, str, bool]]:
    """Part 3 (issue 40): what a careless user types, as a subprocess each. Returns, per
    case: its name, the exit code, the first line of stderr, and whether the input is intact."""
    work = tmp / "safety"
    work.mkdir()
    source = work / "in.jsonl"
    source.write_text(
        "".join(
            json.dumps({"thread_id": f"t{i // 10}", "comment_id": str(i), "text": f"c {i}"}) + "\n"
            for i in range(1500)
        )
    )
    original = source.read_bytes()
    semi = work / "semicolon.csv"
    semi.write_text("thread_id;comment_id;text\n" + "".join(
        f"t{i // 10};{i};comment {i}\n" for i in range(1000)))  # fmt: skip
    cases: list[tuple[str, list[str]]] = [
        ("parse -o its input", ["parse", str(source), "-o", str(source)]),
        ("parse --errors its input", ["parse", str(source), "--errors", str(source)]),
        ("score -o its input", ["score", str(source), "-o", str(source)]),
        ("parse DIR -o DIR/out.jsonl", ["parse", str(work), "-o", str(work / "out.jsonl")]),
        ("-o in a missing folder", ["parse", str(source), "-o", str(tmp / "no" / "out.jsonl")]),
        ("semicolon CSV named .csv", ["parse", str(semi), "-o", str(tmp / "semi.jsonl")]),
        ("/dev/zero as JSONL", ["parse", "/dev/zero", "--input-format", "jsonl",
                                "--max-line-bytes", str(16 * 2**20), "-o", str(tmp / "z.jsonl")]),
        ("-f parquet, no rows", ["parse", str(tmp / "empty.jsonl"), "-f", "parquet",
                                 "-o", str(tmp / "empty.parquet")]),
    ]  # fmt: skip
    (tmp / "empty.jsonl").write_text("")
    results = []
    for name, argv in cases:
        done = subprocess.run(
            [*CLI, *argv], capture_output=True, text=True, timeout=300,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )  # fmt: skip
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        shown = next(
            (line for line in lines if "error" in line.lower()), lines[-1] if lines else ""
        )
        results.append((name, done.returncode, shown[:150], source.read_bytes() == original))
    # two runs writing one output at once: the second is refused, none interleave
    out = tmp / "both.jsonl"
    runs = [
        subprocess.Popen([*CLI, "parse", str(source), "-o", str(out)], stderr=subprocess.PIPE,
                         text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        for _ in range(2)
    ]  # fmt: skip
    codes = [r.wait(timeout=300) for r in runs]
    rows = out.read_text().count("\n") if out.exists() else 0
    nul = out.read_bytes().count(b"\0") if out.exists() else 0
    results.append((f"two writers of one -o: rows {rows}, NUL {nul}", max(codes),
                    f"exit codes {codes}", source.read_bytes() == original))  # fmt: skip
    return results


def heavy_request(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Part 4 (issue 40): one heavy ``/v1/score`` request (``--heavy-comments`` of 20,000
    characters, again and again) while one client sends small ``/v1/moderate`` requests
    one after another; the small ones' latency, and the heavy ones' answers."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    settings = {"model": args.model, "max_batch_body_bytes": 2 * 2**20}
    if args.max_request_tokens:
        settings["max_request_tokens"] = args.max_request_tokens
    env = {**os.environ, "THREADGUARD_TOKEN": TOKEN, "HF_HUB_OFFLINE": "1",
           "THREADGUARD_SERVICE_SETTINGS": json.dumps(settings)}  # fmt: skip
    cmd = [sys.executable, "-m", "uvicorn", "--factory",
           "classifier.moderation.app:create_app_from_env", "--port", str(port),
           "--log-level", "warning"]  # fmt: skip
    log = (tmp / "heavy.log").open("wb")
    server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    auth = {"authorization": f"Bearer {TOKEN}"}
    rng = random.Random(args.seed)
    words = "the council vote budget evidence report idiots resign now because figures show"
    words_list = words.split(" ")
    text = " ".join(rng.choice(words_list) for _ in range(5000))[:20_000]
    heavy_body = {"comments": [{"text": text} for _ in range(args.heavy_comments)]}
    report: dict[str, Any] = {}
    try:
        try:
            hook_load.wait_ready(url, server, timeout=300)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}: see {tmp / 'heavy.log'}") from None
        client = httpx.Client(timeout=60, headers=auth)
        quiet = []
        for _ in range(40):
            started = time.perf_counter()
            client.post(url + "/v1/moderate", json={"text": "A fair point, well made."})
            quiet.append(time.perf_counter() - started)
        stop = time.monotonic() + args.heavy_seconds
        heavy_answers: Counter[int] = Counter()
        heavy_seconds: list[float] = []

        def heavy() -> None:
            with httpx.Client(timeout=120, headers=auth) as own:
                while time.monotonic() < stop:
                    started = time.perf_counter()
                    answer = own.post(url + "/v1/score", json=heavy_body)
                    heavy_answers[answer.status_code] += 1
                    heavy_seconds.append(time.perf_counter() - started)
                    if answer.status_code == 413:
                        time.sleep(0.5)

        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(heavy)
            time.sleep(1.0)
            small: Counter[int] = Counter()
            latencies = []
            while time.monotonic() < stop:
                started = time.perf_counter()
                answer = client.post(url + "/v1/moderate", json={"text": "You make a fair point."})
                latencies.append(time.perf_counter() - started)
                small[answer.status_code] += 1
            running.result()
        report.update(quiet=quiet, latencies=latencies, small=small, heavy=heavy_answers,
                      heavy_seconds=heavy_seconds)  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    return report


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model folder (default: the shipped model)")
    parser.add_argument("--records", type=int, default=10_400, help="hostile records in all")
    parser.add_argument("--big-titles", type=int, default=1_000)
    parser.add_argument("--max-in-flight", type=int, default=64)
    parser.add_argument("--seed", type=int, default=27)
    parser.add_argument("--skip-batch", action="store_true")
    parser.add_argument("--skip-hook", action="store_true")
    parser.add_argument("--skip-safety", action="store_true", help="skip part 3 (files)")
    parser.add_argument("--skip-heavy", action="store_true", help="skip part 4 (heavy request)")
    parser.add_argument(
        "--heavy-comments",
        type=int,
        default=8,
        help="comments of 20,000 characters in the heavy /v1/score request",
    )
    parser.add_argument("--heavy-seconds", type=float, default=40.0)
    parser.add_argument(
        "--max-request-tokens",
        type=int,
        default=None,
        help="the hook's budget (default: its own; raise it to let 52 in)",
    )
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="threadguard-reliability-") as name:
        tmp = Path(name)
        if not args.skip_batch:
            results = part_one(args, tmp)
            print("\nparse and score on hostile input")
            print(
                f"{'run':<14}{'records':>9}{'rows':>8}{'errors':>8}{'crashes':>9}{'lost':>6}{'s':>6}"
            )
            for r in results:
                print(f"{r['run']:<14}{r['records']:>9}{r['rows']:>8}{r['errors']:>8}"
                      f"{r['crashes']:>9}{r['lost']:>6}{r['seconds']:>6.0f}")  # fmt: skip
                if r["stderr"]:
                    print(r["stderr"])
            total = sum(r["lost"] for r in results)
            crashes = sum(r["crashes"] for r in results)
            print(f"loss count: {total}   crashes: {crashes}")
        if not args.skip_hook:
            report = part_two(args, tmp)
            print("\nthe hook under attack (answers by status)")
            for name, counts in report["attacks"]:
                shown = "  ".join(
                    f"{code or 'no answer'}: {n}" for code, n in sorted(counts.items())
                )
                print(f"  {name:<42} {shown}")
            p50, worst = report["flood_latency_ms"]
            print(f"  authenticated latency during the flood: p50 {p50:.0f} ms, max {worst:.0f} ms")
            print(f"  overload answered in {report['overload_s']:.1f} s")
            five = sum(
                n
                for _, c in report["attacks"]
                for code, n in c.items()
                if code >= 500 and code != 503
            )
            print(f"  5xx other than 503: {five}")
            growth = report["rss_after"] - report["rss_before"]
            print(f"  RSS before/after the 1 MB titles: {report['rss_before']:.0f} -> "
                  f"{report['rss_after']:.0f} MB ({growth:+.0f} MB)")  # fmt: skip
            print(f"  healthy afterwards: {report['healthy']}")
            if report["failures"]:
                print(f"  requests without an answer, by client error: {dict(report['failures'])}")
        if not args.skip_safety:
            print("\nfiles a careless user names (issue 40)")
            for name, code, line, intact in data_safety(tmp):
                print(f"  {name:<40} exit {code}  input intact: {intact}  {line}")
        if not args.skip_heavy:
            heavy = heavy_request(args, tmp)
            lat = heavy["latencies"]
            print(
                f"\none heavy /v1/score ({args.heavy_comments} x 20,000 characters, again "
                f"and again for {args.heavy_seconds:.0f} s) and small /v1/moderate calls"
            )
            print(
                f"  small, alone:   p50 {_pct(heavy['quiet'], 0.5):.0f} ms  "
                f"p99 {_pct(heavy['quiet'], 0.99):.0f} ms"
            )
            print(
                f"  small, beside:  n {len(lat)}  p50 {_pct(lat, 0.5):.0f} ms  "
                f"p99 {_pct(lat, 0.99):.0f} ms  max {_pct(lat, 1.0):.0f} ms  "
                f"answers {dict(heavy['small'])}"
            )
            print(f"  heavy answers {dict(heavy['heavy'])}, seconds each "
                  f"{[round(x, 1) for x in heavy['heavy_seconds']]}")  # fmt: skip
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
