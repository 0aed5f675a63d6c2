"""``threadguard serve``: run the moderation service (FastAPI on uvicorn).

Its options are built from :class:`~classifier.moderation.settings.ServiceSettings`, one per
field (name, type, default and help from the field), so a setting is declared once; beside
them only what the process needs (address, workers, log level) and ``--config``, a YAML file
of settings that the options given on the command line override.
"""

from __future__ import annotations

import inspect
import logging
import logging.config
import os
import types
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import typer
import yaml

from classifier.cli._app import BackendChoice, BackendOption, app
from classifier.moderation.settings import (
    CORAL_SECRET_ENV,
    HMAC_SECRET_ENV,
    TOKEN_ENV,
    ServiceSettings,
)

#: Settings whose option keeps the shorter name the docs and scripts have always used.
OPTION_NAMES = {"request_timeout_s": "--timeout", "body_timeout_s": "--body-timeout"}
#: The environment variable each secret is read from when its file option is not given.
SECRET_ENVS = {"token": TOKEN_ENV, "hmac_secret": HMAC_SECRET_ENV, "coral_secret": CORAL_SECRET_ENV}


def option_name(setting: str) -> str:
    """The command-line option that sets ``setting`` (a secret: the file holding it)."""
    if setting in ServiceSettings.SECRETS:
        return f"--{setting.replace('_', '-')}-file"
    return OPTION_NAMES.get(setting, f"--{setting.replace('_', '-')}")


def _plain_type(annotation: Any) -> Any:
    """``Annotated[int, ...] | None`` as Typer reads it, ``int | None``: the checks stay the
    model's, which names the option's setting and value when one fails."""
    if get_origin(annotation) in (Union, types.UnionType):
        kinds = [_plain_type(a) for a in get_args(annotation) if a is not type(None)]
        return kinds[0] | None if len(kinds) == 1 else annotation
    return get_args(annotation)[0] if get_origin(annotation) is Annotated else annotation


def _setting_option(name: str) -> inspect.Parameter:
    """The option of one setting: its field's type, default and description as help."""
    field = ServiceSettings.model_fields[name]
    flag, kind, default = option_name(name), _plain_type(field.annotation), field.default
    help_text = field.description or ""
    if name in ServiceSettings.SECRETS:
        help_text = f"File holding {help_text[:1].lower()}{help_text[1:]}"
        kind, default = Path | None, None
    if kind is bool and default is not False:  # on by default, or unset (None): both ways
        flag = f"{flag}/--no-{flag[2:]}"
    if kind == bool | None:
        kind, flag = bool, f"{flag}/--no-{flag[2:]}"
    annotation: Any = Annotated[kind, typer.Option(flag, help=help_text)]
    if name == "backend":
        annotation, default = BackendOption, BackendChoice(default)
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


def _read_secret(path: Path | None, env: str, what: str) -> str | None:
    if path is not None:
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise typer.BadParameter(f"cannot read the {what} file: {exc}") from None
        if not value:
            raise typer.BadParameter(f"the {what} file {path} is empty")
        return value
    return os.environ.get(env) or None


def _log_config(level: str) -> dict[str, Any]:
    """One format for the service's and uvicorn's lines, on stderr; others at WARNING."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
        "loggers": {
            "classifier": {"level": level},
            "uvicorn": {"level": level},
            "uvicorn.access": {"level": "WARNING"},
        },
    }


def serve(ctx: typer.Context, **options: Any) -> None:
    """Serve moderation decisions over HTTP (see docs/moderation.md).

    Needs a bearer token, an HMAC secret or a Coral secret unless --no-auth is
    given. The model is loaded once at start-up; GET /readyz answers 200 once a
    warm-up inference has run.
    """
    level = options["log_level"].upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise typer.BadParameter(
            f"unknown log level {options['log_level']!r}", param_hint="--log-level"
        )
    settings = _settings(ctx, options)

    import uvicorn

    import classifier.moderation.app as hook
    from classifier.moderation.settings import ServiceConfigError

    log_config = _log_config(level)
    logging.config.dictConfig(log_config)
    try:
        application = hook.create_app(settings)  # checks settings and policy before any model loads
    except ServiceConfigError as exc:
        raise typer.BadParameter(str(exc)) from None
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--policy") from None
    common = {
        "host": options["host"],
        "port": options["port"],
        "log_level": level.lower(),
        "access_log": False,  # the service logs one line a request, with its id
        "log_config": log_config,  # also applied in each worker process
    }
    if options["workers"] == 1:
        uvicorn.run(application, **common)
        return
    os.environ.update(settings.to_env())
    uvicorn.run(
        "classifier.moderation.app:create_app_from_env",
        factory=True,
        workers=options["workers"],
        **common,
    )


def _settings(ctx: typer.Context, options: dict[str, Any]) -> ServiceSettings:
    """The settings the options ask for: each setting from the command line if given there,
    else from ``--config``, else its default; a secret from its file, else its variable."""
    from classifier.moderation.settings import ServiceConfigError, default_threads

    data = _config_file(options["config"])
    for name in ServiceSettings.model_fields:
        source = ctx.get_parameter_source(name)
        if name in ServiceSettings.SECRETS:
            secret = _read_secret(options[name], SECRET_ENVS[name], name.replace("_", " "))
            data[name] = secret or data.get(name)
        elif source is not None and source.name != "DEFAULT":  # given on the command line
            value = options[name]
            data[name] = value.value if isinstance(value, BackendChoice) else value
    if data.get("threads") is None:
        data["threads"] = default_threads(options["workers"])
    try:
        settings = ServiceSettings.from_dict(data)
    except ServiceConfigError as exc:
        raise typer.BadParameter(str(exc)) from None
    if settings.model is not None and not Path(settings.model).is_dir():
        raise typer.BadParameter(f"no model folder at {settings.model}", param_hint="--model")
    return settings


def _config_file(path: Path | None) -> dict[str, Any]:
    """The settings in ``--config`` (YAML, keyed by setting name); none without it."""
    if path is None:
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc}", param_hint="--config") from None
    if not isinstance(data, dict):
        raise typer.BadParameter(
            f"{path}: a settings file must be a mapping", param_hint="--config"
        )
    return data


_PROCESS_OPTIONS = {
    "host": Annotated[str, typer.Option(help="Address to listen on.")],
    "port": Annotated[int, typer.Option(help="Port to listen on (0: any free port).")],
    "workers": Annotated[
        int, typer.Option(min=1, help="Worker processes (each loads its own model).")
    ],
    "config": Annotated[
        Path | None,
        typer.Option(
            help="YAML file of settings, keyed by the options' names with underscores "
            "(max_batch: 16); an option given on the command line overrides it.",
        ),
    ],
    "log_level": Annotated[str, typer.Option(help="debug, info, warning or error.")],
}
_PROCESS_DEFAULTS = {
    "host": "127.0.0.1",
    "port": 8080,
    "workers": 1,
    "config": None,
    "log_level": "info",
}

# Typer reads a command's options from its signature: serve's is written here, from the model.
serve.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [
        inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
        *(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=_PROCESS_DEFAULTS[name],
                annotation=kind,
            )
            for name, kind in _PROCESS_OPTIONS.items()
        ),
        *(_setting_option(name) for name in ServiceSettings.model_fields),
    ]
)
serve.__annotations__ = {p.name: p.annotation for p in serve.__signature__.parameters.values()}  # type: ignore[attr-defined]
app.command()(serve)
