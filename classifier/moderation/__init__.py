"""The moderation wing: decisions from predictions, the HTTP hook that serves them, its client.

Read it in this order:

- :mod:`.policy`: :class:`Policy` (thresholds and actions per label, the feature rule) and
  :meth:`Policy.decide`, the one code path from a prediction to a :class:`Decision`; used
  by the hook, ``threadguard score --moderate`` and the Python API alike;
- the hook, a FastAPI app (:func:`create_app`, in :mod:`.app`), in parts:
  :mod:`.settings` (:class:`ServiceSettings`, every default once), :mod:`.auth` (tokens and
  signatures), :mod:`.guard` (what a request must show before it gets a slot),
  :mod:`.schemas` (request and response models), :mod:`.state` (model, caches, the chain
  check -> model input -> predict -> decide), :mod:`.batching` (micro-batches),
  :mod:`.answers` (what every answer carries) and :mod:`.integrations` (Coral, WordPress);
- :mod:`.client`: :class:`ThreadguardClient`, with timeouts, retries and a fallback.

The wing builds on the core of :mod:`classifier` (labels, schema, targets, runtime); the
core never imports it (the import contracts in ``pyproject.toml`` check both).

Names are imported on first use, so that ``from classifier.moderation.policy import
Policy`` (the CLI's scoring path) does not load the web framework.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from classifier.moderation.answers import spans_for_reason
    from classifier.moderation.app import create_app, create_app_from_env
    from classifier.moderation.auth import signature, verify_signature
    from classifier.moderation.batching import MicroBatcher
    from classifier.moderation.client import (
        RequestRejected,
        ServiceUnavailable,
        ThreadguardClient,
        ThreadguardError,
    )
    from classifier.moderation.guard import body_problem
    from classifier.moderation.integrations import strip_html
    from classifier.moderation.policy import (
        DEFAULT_POLICY,
        Decision,
        FeatureRule,
        Policy,
        Reason,
        Rule,
    )
    from classifier.moderation.settings import (
        ServiceConfigError,
        ServiceSettings,
        default_threads,
    )

#: Where each public name is defined.
_HOME = {
    "DEFAULT_POLICY": "policy",
    "Decision": "policy",
    "FeatureRule": "policy",
    "Policy": "policy",
    "Reason": "policy",
    "Rule": "policy",
    "ServiceConfigError": "settings",
    "ServiceSettings": "settings",
    "default_threads": "settings",
    "create_app": "app",
    "create_app_from_env": "app",
    "MicroBatcher": "batching",
    "signature": "auth",
    "verify_signature": "auth",
    "body_problem": "guard",
    "strip_html": "integrations",
    "spans_for_reason": "answers",
    "RequestRejected": "client",
    "ServiceUnavailable": "client",
    "ThreadguardClient": "client",
    "ThreadguardError": "client",
}

__all__ = [
    "DEFAULT_POLICY",
    "Decision",
    "FeatureRule",
    "MicroBatcher",
    "Policy",
    "Reason",
    "RequestRejected",
    "Rule",
    "ServiceConfigError",
    "ServiceSettings",
    "ServiceUnavailable",
    "ThreadguardClient",
    "ThreadguardError",
    "body_problem",
    "create_app",
    "create_app_from_env",
    "default_threads",
    "signature",
    "spans_for_reason",
    "strip_html",
    "verify_signature",
]


def __getattr__(name: str) -> object:
    """A public name, imported from its module on first use."""
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'classifier.moderation' has no attribute {name!r}")
    return getattr(importlib.import_module(f"classifier.moderation.{home}"), name)
