"""threadguard runtime: thread schema, ingestion, model, inference, moderation, CLI."""

import os

__version__ = "0.1.0"

# threadguard is an offline tool: it must make no network calls. ONNX Runtime (1.2x
# and later) starts a 1DS telemetry uploader in its native code that resolves
# mobile.events.data.microsoft.com about 9 s after the first session is created, in
# every process that lives that long (`threadguard serve` always does; `score` on a
# cold cache does, while it exports the model). `disable_telemetry_events()` does not
# stop it; this variable, read when onnxruntime is loaded, does. Set here so that it
# precedes every import of onnxruntime in the package; an explicit value is kept.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
