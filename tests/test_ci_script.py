""".ci/run's system packages: apt-get (as root) only in CI or when asked."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def system_packages_block() -> str:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    start = script.index("packages=(")
    end = script.index('echo "== set-up command 1')
    return script[start:end]


@pytest.mark.parametrize(
    ("env", "installs"),
    [
        ({}, False),
        ({"CI": "true"}, True),
        ({"THREADGUARD_SYSTEM_PACKAGES": "1"}, True),
        ({"THREADGUARD_SYSTEM_PACKAGES": "0"}, False),
    ],
    ids=["plain", "ci", "asked", "not-asked"],
)
def test_apt_get_runs_only_in_ci_or_when_asked(
    env: dict[str, str], installs: bool, tmp_path: Path
) -> None:
    """It ran apt-get as root on whatever machine ran .ci/run."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    fakes = {
        "dpkg": "exit 1",  # nothing installed
        "apt-get": f'echo "$*" >> {log}',
        "sudo": 'shift; exec "$@"',
    }
    for name, body in fakes.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    clean = {k: v for k, v in os.environ.items() if k not in ("CI", "THREADGUARD_SYSTEM_PACKAGES")}
    result = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + system_packages_block()],
        env={**clean, **env, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        check=True,
    )
    ran = log.read_text().splitlines() if log.exists() else []
    if installs:
        assert ran[0] == "update -qq" and "install" in ran[1] and "chromium" in ran[1], ran
    else:
        assert ran == []
        assert "THREADGUARD_SYSTEM_PACKAGES=1 installs them" in result.stdout
