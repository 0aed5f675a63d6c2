"""Every Python that pyproject.toml supports (requires-python, the classifiers) runs the code.

CI runs the whole suite on the oldest and the newest of them; these tests catch the 3.11+
features that the suite on 3.11 alone cannot (3.10 failed to import the package once:
``typing.NotRequired``).
"""

from __future__ import annotations

import ast
import asyncio
import io
import re
from pathlib import Path

import pytest

from classifier.io import writers
from classifier.io.writers import CsvRowWriter

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(
    p
    for folder in ("classifier", "training", "benchmarks", "examples", "tests")
    for p in (ROOT / folder).rglob("*.py")
)

#: names that only exist from 3.11 on, by module
NEWER_NAMES = {
    "typing": {
        "NotRequired",
        "Required",
        "Self",
        "LiteralString",
        "Never",
        "assert_never",
        "assert_type",
        "reveal_type",
        "Unpack",
        "TypeVarTuple",
        "dataclass_transform",
        "override",
        "TypeAliasType",
        "get_overloads",
    },
    "enum": {"StrEnum", "ReprEnum", "verify", "member", "nonmember", "EnumCheck"},
    "datetime": {"UTC"},
    "asyncio": {"TaskGroup", "timeout", "timeout_at", "Runner", "Timeout"},
    "contextlib": {"chdir"},
    "hashlib": {"file_digest"},
    "builtins": {"ExceptionGroup", "BaseExceptionGroup"},
}
NEWER_MODULES = {"tomllib", "wsgiref.types"}


PYPROJECT = (ROOT / "pyproject.toml").read_text(encoding="utf-8")  # tomllib is 3.11+


def oldest_python() -> tuple[int, int]:
    found = re.search(r'^requires-python = ">=3\.(\d+)"$', PYPROJECT, flags=re.M)
    assert found, "requires-python is not a plain >=3.N"
    return 3, int(found.group(1))


def test_classifiers_name_the_versions_ci_tests() -> None:
    versions = re.findall(r'"Programming Language :: Python :: (3\.\d+)"', PYPROJECT)
    assert versions[0] == f"3.{oldest_python()[1]}"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    for version in (versions[0], versions[-1]):
        assert f"python_job {version}" in ci, f"CI runs no tests on Python {version}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_source_uses_nothing_newer_than_the_oldest_python(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    # the grammar of the oldest Python (catches except*, and other new syntax)
    tree = ast.parse(source, str(path), feature_version=oldest_python())
    problems: list[str] = []
    uses_asyncio = "asyncio" in source
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in NEWER_NAMES:
            for alias in node.names:
                if alias.name in NEWER_NAMES[node.module]:
                    problems.append(f"line {node.lineno}: from {node.module} import {alias.name}")
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = (
                [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            )
            problems += [f"line {node.lineno}: import {n}" for n in names if n in NEWER_MODULES]
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.attr in NEWER_NAMES.get(node.value.id, ())
        ):
            problems.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
        if isinstance(node, ast.Name) and node.id in NEWER_NAMES["builtins"]:
            problems.append(f"line {node.lineno}: {node.id}")
        # asyncio.wait_for raises asyncio.TimeoutError: the builtin only from 3.11 on
        if (
            uses_asyncio
            and isinstance(node, ast.ExceptHandler)
            and "TimeoutError" in _names(node.type)
        ):
            problems.append(
                f"line {node.lineno}: except TimeoutError in a module using asyncio "
                "(catch asyncio.TimeoutError: the same class on 3.11+)"
            )
    assert not problems, problems


def _names(node: ast.expr | None) -> set[str]:
    if node is None:
        return set()
    if isinstance(node, ast.Tuple):
        return set().union(*(_names(e) for e in node.elts))
    return {node.id} if isinstance(node, ast.Name) else set()


def test_a_wait_for_timeout_is_caught_as_asyncio_timeout_error() -> None:
    """What the batcher, the guard and the state rely on, on every version."""

    async def slow() -> str:
        try:
            await asyncio.wait_for(asyncio.sleep(1), 0.01)
        except asyncio.TimeoutError:
            return "caught"
        return "not caught"

    assert asyncio.run(slow()) == "caught"


ROWS = [
    {"id": "1", "text": "before"},
    {"id": "2", "text": "a\0b"},
    {"id": "3", "text": '"quoted", with\0 NUL, comma\nand newline'},
    {"id": "4", "text": "after"},
]
EXPECTED = (
    'id,text\r\n1,before\r\n2,a\0b\r\n3,"""quoted"", with\0 NUL, comma\nand newline"\r\n4,after\r\n'
)


@pytest.mark.parametrize("refuses_nul", [False, True], ids=["csv-writes-nul", "csv-refuses-nul"])
def test_csv_writer_writes_every_row_with_nul(
    refuses_nul: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """3.10's csv writer raised on the first NUL and the rest of the output was lost (55 of
    1,859 rows written): every row is written, as 3.11+ writes it, on every version."""
    monkeypatch.setattr(writers, "_CSV_REFUSES_NUL", refuses_nul or writers._CSV_REFUSES_NUL)
    out = io.StringIO()
    writer = CsvRowWriter(out, ["id", "text"])
    for row in ROWS:
        writer.write(row)
    assert out.getvalue() == EXPECTED
