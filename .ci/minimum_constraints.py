"""Print a pip constraints file that pins every `>=` lower bound pyproject.toml declares.

`.ci/run` installs the project under it (`pip install -c FILE ...`) and runs the tests, so a
bound that is too low fails CI instead of a user's install. Usage:

    python .ci/minimum_constraints.py train test > constraints.txt

The dependencies and the extras named on the command line are read. torch is left out: its
lower bound is a promise about the API, but CI installs the CPU wheel `torch==2.13.0` (the
only CPU build it can reach without a CUDA download of several GB per version).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import tomllib

SKIP = {"torch"}


def lower_bounds(project: dict, extras: list[str]) -> dict[str, str]:
    requirements = list(project["dependencies"])
    for extra in extras:
        requirements += project["optional-dependencies"][extra]
    bounds: dict[str, str] = {}
    for requirement in requirements:
        found = re.match(r"\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*>=\s*([^,;\s]+)", requirement)
        if not found:
            continue
        name = re.sub(r"[-_.]+", "-", found.group(1)).lower()
        if name not in SKIP:
            bounds[name] = found.group(3)
    return bounds


def main() -> None:
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    for name, version in sorted(lower_bounds(project, sys.argv[1:]).items()):
        print(f"{name}=={version}")


if __name__ == "__main__":
    main()
