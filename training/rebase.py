"""Re-point a delta-saved model at the installed base encoder.

A model trained on another machine from a copy of the base encoder that is not
bit-identical (the GPU machine receives all-MiniLM-L6-v2 in half precision, since
what travels there is capped at 64 MiB, and upcasts it) saves a delta whose
``base_sha256`` names that copy, so :meth:`ThreadguardModel.from_pretrained` refuses
it here. The delta itself holds absolute tensors (LoRA factors and the tensors
training overwrote), so it applies to the installed base unchanged; this records
the installed base's hash and where the model was trained. Usage:
``python -m training.rebase MODEL_DIR [--note TEXT]``.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from classifier.model.constants import CONFIG_FILE
from classifier.model.serialization import load_encoder, state_sha256

logger = logging.getLogger(__name__)


def rebase_delta(path: str | Path, note: str = "") -> str:
    """Write the installed base encoder's hash into the delta model at ``path``;
    returns that hash. Raises ``ValueError`` for a model not saved in delta mode."""
    path = Path(path)
    meta = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
    if meta.get("save_mode") != "delta":
        raise ValueError(f"{path} is not a delta-saved model (save_mode {meta.get('save_mode')!r})")
    base = load_encoder(meta["model_config"]["encoder"])
    digest = state_sha256(base.state_dict())
    old = meta["delta"]["base_sha256"]
    if old != digest:
        meta["delta"]["base_sha256"] = digest
        meta["delta"]["trained_on_base_sha256"] = old
        if note:
            meta["delta"]["trained_on"] = note
        (path / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        logger.info("%s: base hash %s… → %s…", path, old[:12], digest[:12])
    return digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("--note", default="", help="where and from what base it was trained")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    rebase_delta(args.model_dir, args.note)


if __name__ == "__main__":
    main()
