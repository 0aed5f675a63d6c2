"""``python -m examples.blog``: the demo blog and the moderation hook, on localhost.

Options: ``--port`` (the blog, 8000), ``--hook-port`` (the hook it starts, 8081),
``--hook-url``/``--hook-token`` (use a hook already running instead, e.g.
``threadguard serve``), ``--hook-timeout`` (seconds, 2), ``--model``, ``--policy``.
"""

from __future__ import annotations

import argparse
import os

from examples.blog.app import DEFAULT_HOOK_TIMEOUT, run_demo


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m examples.blog",
        description="A demo blog whose comments are moderated by threadguard's hook.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="the blog's port")
    parser.add_argument("--hook-port", type=int, default=8081, help="port of the hook it starts")
    parser.add_argument(
        "--hook-url", help="use this running hook (e.g. threadguard serve) instead of starting one"
    )
    parser.add_argument(
        "--hook-token",
        default=os.environ.get("THREADGUARD_TOKEN"),
        help="bearer token for --hook-url (default: $THREADGUARD_TOKEN)",
    )
    parser.add_argument(
        "--hook-timeout",
        type=float,
        default=DEFAULT_HOOK_TIMEOUT,
        help="seconds to wait for the hook before holding a comment",
    )
    parser.add_argument("--model", help="model folder for the hook it starts (default: shipped)")
    parser.add_argument("--policy", help="moderation policy file for the hook it starts")
    args = parser.parse_args(argv)
    run_demo(
        args.host,
        args.port,
        hook_url=args.hook_url,
        hook_token=args.hook_token,
        hook_port=args.hook_port,
        hook_timeout=args.hook_timeout,
        model=args.model,
        policy=args.policy,
    )


if __name__ == "__main__":
    main()
