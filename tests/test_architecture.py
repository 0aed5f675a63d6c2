"""The import contracts in pyproject.toml ([tool.importlinter]) hold, and they catch a breach.

They write down docs/architecture.md's layout as rules: classifier does not import
training (but for the commands that need the train extra), the core does not import the
moderation wing or the io wing, each wing's modules (the model wing's too) import each
other in one direction only, so that the core has no import cycle, the ONNX path loads
no torch, the io wing loads no model, the trainer imports the offsets fitted after it
(not the other way), and the policy, the client and auth load no web framework and no
model. `lint-imports` checks
them; running it here puts it in CI through pytest (tests/test_repo.py holds .ci/run to
README's commands, which do not name it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the packages found first from ``cwd``, with the repository's
    contracts; no cache, so that a copied tree is analysed afresh."""
    code = "from importlinter.cli import lint_imports_command; lint_imports_command()"
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    # --config, not a positional path: import-linter 2.15 (the newest for Python 3.10) has no
    # positional argument; --no-logo is newer still
    args = ["--config", str(ROOT / "pyproject.toml"), "--no-cache"]
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_import_contracts_are_kept() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "edge", "contract"),
    [
        # the core reaching up into the moderation wing
        (
            "classifier/model/predictor.py",
            "import classifier.moderation.policy",
            "classifier.model.predictor -> classifier.moderation.policy",
            "(the core never imports a wing)",
        ),
        # the core reaching up into the io wing
        (
            "classifier/model/network.py",
            "import classifier.io.readers",
            "classifier.model.network -> classifier.io.readers",
            "(the core never imports a wing)",
        ),
        # a lower part of the model wing importing the loader built on it (the old
        # runtime <-> inference / backends cycles)
        (
            "classifier/model/constants.py",
            "import classifier.model.loading",
            "classifier.model.constants -> classifier.model.loading",
            "model wing: loading > one_pass > onnx_predictor > torch_predictor",
        ),
        # the model reaching up to the predictors (the old modeling -> runtime cycle)
        (
            "classifier/model/network.py",
            "import classifier.model.torch_predictor",
            "classifier.model.network -> classifier.model.torch_predictor",
            "model wing: loading > one_pass > onnx_predictor > torch_predictor",
        ),
        # the torch-free ONNX path loading torch
        (
            "classifier/model/predictor.py",
            "import torch",
            "classifier.model.predictor -> torch",
            "the ONNX path (loading, onnx_predictor, predictor and below) imports neither torch",
        ),
        # reading files loading the model
        (
            "classifier/io/pages.py",
            "import torch",
            "classifier.io.pages -> torch",
            "the io wing reads and writes files without loading a model",
        ),
        # a shared check importing the dispatch built on it
        (
            "classifier/io/checks.py",
            "import classifier.io.readers",
            "classifier.io.checks -> classifier.io.readers",
            "io wing: ingest > readers > jsonl > flat",
        ),
        # the offsets reaching back into the trainer that runs them (the old cycle)
        (
            "training/offsets.py",
            "import training.trainer",
            "training.offsets -> training.trainer",
            "training: trainer > offsets > dev > mixing",
        ),
        # the library needing the train extra
        (
            "classifier/moderation/state.py",
            "import training.config",
            "classifier.moderation.state -> training.config",
            "classifier does not import training",
        ),
        # the runtime needing datasets or scikit-learn, dependencies of the train extra only
        (
            "classifier/scoring.py",
            "import datasets",
            "classifier.scoring -> datasets",
            "the runtime imports none of the train extra's packages",
        ),
        (
            "classifier/model/predictor.py",
            "import sklearn",
            "classifier.model.predictor -> sklearn",
            "the runtime imports none of the train extra's packages",
        ),
        # the client loading the web framework
        (
            "classifier/moderation/client.py",
            "import fastapi",
            "classifier.moderation.client -> fastapi",
            "the policy, the client and auth load no web framework",
        ),
        # a part of the wing importing the app built from it
        (
            "classifier/moderation/batching.py",
            "import classifier.moderation.app",
            "classifier.moderation.batching -> classifier.moderation.app",
            "moderation wing: app > guard | integrations",
        ),
    ],
)
def test_a_forbidden_import_breaks_its_contract(
    tmp_path: Path, module: str, line: str, edge: str, contract: str
) -> None:
    """A copy of the sources with one forbidden import added (inside a function, as the
    lazy imports are: import-linter sees those too) fails, naming the contract and the
    import."""
    for package in ("classifier", "training"):
        shutil.copytree(
            ROOT / package,
            tmp_path / package,
            ignore=shutil.ignore_patterns("__pycache__", "default_model", "*.pyc"),
        )
    target = tmp_path / module
    target.write_text(
        target.read_text(encoding="utf-8") + f"\n\ndef _breach() -> None:\n    {line}\n",
        encoding="utf-8",
    )
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    broken = " ".join(result.stdout.split("Broken contracts", 1)[-1].split())
    assert contract in broken, result.stdout
    assert edge in broken, result.stdout


def test_the_wing_exports_its_public_names_and_the_policy_stays_light() -> None:
    """Every name in classifier.moderation.__all__ resolves; importing the policy and the
    client (the CLI's scoring path, a comment system's process) loads no FastAPI or torch."""
    code = (
        "import sys, classifier.moderation as m, classifier.moderation.policy, "
        "classifier.moderation.client, classifier.cli\n"
        "assert not {'fastapi', 'torch'} & set(sys.modules), sorted({'fastapi', 'torch'} & set(sys.modules))\n"
        "assert all(getattr(m, name) is not None for name in m.__all__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
