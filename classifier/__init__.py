"""threadguard: stance and toxicity for the comment threads under news articles and blog posts.

Load the model once and score strings, lists of strings or threads::

    from classifier import Threadguard
    tg = Threadguard()
    tg.predict("You are a pathetic idiot").decision  # 'review'

The API (:mod:`classifier.api`, whose examples run as doctests):

``Threadguard(model=None, *, backend="auto", policy=None, batch_size=32)``
    loads a saved model folder (default: the shipped one, offline) and a moderation
    policy (default: configs/moderation.yaml's), once.
``Threadguard.predict(texts, target="")``
    a :class:`Result` for a string, a list of them for a list of strings; ``target`` (one
    string, or one per text) is what the stance is toward.
``Threadguard.score_threads(threads)``
    for :class:`classifier.schema.Thread` objects (replies read against their parent),
    the rows ``threadguard score --moderate`` writes; error records among them (what
    :func:`classifier.io.readers.read_file` yields for bad input) pass through in order.
``Threadguard.stance_labels``, ``Threadguard.toxicity_labels``
    the label names the loaded model outputs.
``Result``
    ``text``, ``target``, ``stance``, ``stance_scores``, ``toxicity``, ``constructive``
    (dicts keyed by label name), ``spans`` (``text[start:end]``, label, score), ``decision``
    (feature / approve / review / reject) and ``reasons``.

The command line is ``threadguard`` (:mod:`classifier.cli`); the thread schema is
:mod:`classifier.schema`; the moderation hook is :mod:`classifier.moderation`.
"""

import os

from classifier._version import __version__

#: The version of the model shipped in classifier/default_model (MODEL_CARD.md).
DEFAULT_MODEL_VERSION = "v0.6.1"

# threadguard is an offline tool: it must make no network calls. ONNX Runtime (1.2x
# and later) starts a 1DS telemetry uploader in its native code that resolves
# mobile.events.data.microsoft.com about 9 s after the first session is created, in
# every process that lives that long (`threadguard serve` always does; `score` on a
# cold cache does, while it exports the model). `disable_telemetry_events()` does not
# stop it; this variable, read when onnxruntime is loaded, does. Set here so that it
# precedes every import of onnxruntime in the package; an explicit value is kept.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__all__ = ["Result", "Threadguard", "__version__"]


def __getattr__(name: str) -> object:
    """:class:`Threadguard` and :class:`Result`, imported on first use, so that
    ``import classifier`` (the CLI's first step) stays light."""
    if name in ("Result", "Threadguard"):
        from classifier import api

        return getattr(api, name)
    raise AttributeError(f"module 'classifier' has no attribute {name!r}")
