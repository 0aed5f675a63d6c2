"""The base of every settings model (model, training and service configs): a frozen pydantic
model whose unknown keys and bad values raise one ``ValueError`` naming each key and value.

Pydantic's own ``ValidationError`` is a ``ValueError`` too, but its message spreads over
lines with a link per error; a recipe's author reads ``batch_size: input should be greater
than 0, got 0`` instead. Imports nothing of threadguard, so the command line stays fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

_Model = TypeVar("_Model", bound="ConfigModel")


def describe(exc: ValidationError) -> list[tuple[str, str]]:
    """Each error of ``exc`` as ``(key.path, what is wrong, and the value)``."""
    parts = []
    for error in exc.errors(include_url=False):
        key = ".".join(str(part) for part in error["loc"])
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, ValueError) and hasattr(cause, "config_errors"):
            # a nested settings model checked itself (its __init__): its keys under ours
            parts += [(".".join(filter(None, (key, k))), m) for k, m in cause.config_errors]
        elif error["type"] == "extra_forbidden":
            parent, _, name = key.rpartition(".")
            parts.append((parent, f"unknown key {name!r}"))
        elif error["type"] == "missing":
            parts.append((key, "missing, and it has no default"))
        elif error["type"] == "value_error":  # a validator's own message names the value
            parts.append((key, str(cause)))
        else:
            parts.append(
                (key, f"{error['msg'][:1].lower()}{error['msg'][1:]}, got {error['input']!r}")
            )
    return parts


class ConfigModel(BaseModel):
    """Frozen settings: unknown keys are errors (a typo fails at once instead of silently
    configuring something else), and a bad value raises :attr:`error_type` naming it."""

    # protected_namespaces: the service has a setting named model_version
    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    #: What a bad value raises (the service's settings raise their own ``ValueError``).
    error_type: ClassVar[type[ValueError]] = ValueError

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            errors = describe(exc)
            error = self.error_type("; ".join(f"{k}: {m}" if k else m for k, m in errors))
            error.config_errors = errors  # type: ignore[attr-defined]
            raise error from None

    @classmethod
    def from_dict(cls: type[_Model], data: Mapping[str, Any]) -> _Model:
        """Build from a JSON/YAML mapping; unknown keys and bad values raise, named."""
        if not isinstance(data, Mapping):
            raise cls.error_type(f"{cls.__name__} must be a mapping, got {data!r}")
        return cls(**{str(key): value for key, value in data.items()})

    def replace(self: _Model, **changes: Any) -> _Model:
        """A copy with ``changes``, checked as a new one is (``model_copy`` checks nothing)."""
        return type(self)(**{**dict(self), **changes})
