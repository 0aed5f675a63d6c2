"""Frozen encoder states of every text the stance corpora hold, computed once.

The one-pass model's stance head (:mod:`classifier.model.stance_head`) reads the comment
model's token states: the comment's (its first window, as the comment model reads it) and
the target's and context's (each read alone, cut at ``target_tokens``). With the encoder
frozen these states do not change during training, so they are computed once per distinct
text and kept on disk (float16), which makes training the head on a CPU a matter of
minutes instead of re-running the encoder for every pair and epoch.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from classifier.model.encoding import InputEncoder
from classifier.model.network import ThreadguardModel

logger = logging.getLogger(__name__)


class StateStore:
    """Token states of distinct texts, in one flat float16 array [n_tokens, layers, dim]."""

    def __init__(self, index: dict[str, int], offsets: np.ndarray, states: np.ndarray) -> None:
        self.index = index
        self.offsets = offsets  # [n_texts + 1]
        self.states = states

    def get(self, text: str) -> np.ndarray:
        i = self.index[text]
        return self.states[self.offsets[i] : self.offsets[i + 1]]

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        np.save(path / "states.npy", self.states)
        np.save(path / "offsets.npy", self.offsets)
        (path / "texts.json").write_text(json.dumps(list(self.index)), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> StateStore:
        texts = json.loads((path / "texts.json").read_text(encoding="utf-8"))
        return cls(
            {t: i for i, t in enumerate(texts)},
            np.load(path / "offsets.npy"),
            np.load(path / "states.npy", mmap_mode="r"),
        )


@torch.inference_mode()
def encode_states(
    model: ThreadguardModel,
    encoder: InputEncoder,
    texts: Sequence[str],
    layers: Sequence[int],
    batch_size: int = 32,
) -> StateStore:
    """Each text's first window through ``model``'s encoder: the hidden states of
    ``layers`` (0 = embeddings, -1 = last), float16."""
    unique = list(dict.fromkeys(texts))
    windows = encoder.encode([""] * len(unique), None, unique)  # no target: the first window
    lengths = np.array([len(w) for w in windows])
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    encoder_config: Any = getattr(model.encoder, "config", None)
    dim = int(encoder_config.hidden_size) if encoder_config is not None else 384
    states = np.zeros((int(offsets[-1]), len(layers), dim), dtype=np.float16)
    order = np.argsort(lengths, kind="stable")
    done = 0
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size].tolist()
        batch = encoder.collate([windows[i] for i in rows], return_tensors="pt")
        out = model.encoder(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            **({"token_type_ids": batch["token_type_ids"]} if "token_type_ids" in batch else {}),
            output_hidden_states=True,
        )
        hidden = torch.stack([out.hidden_states[k] for k in layers], dim=2)  # [B, L, layers, D]
        for r, i in enumerate(rows):
            n = int(lengths[i])
            states[offsets[i] : offsets[i + 1]] = hidden[r, :n].to(torch.float16).numpy()
        done += len(rows)
        if start // batch_size % 50 == 0:
            logger.info("encoded %d / %d texts", done, len(unique))
    return StateStore({t: i for i, t in enumerate(unique)}, offsets, states)


def main() -> None:
    import argparse

    from training.corpora import read_corpus

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="classifier/default_model/comment")
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--out", default="runs/stance_states")
    parser.add_argument(
        "--corpora", nargs="+", default=["rumoureval2019", "semeval2016_stance", "arc", "fnc1"]
    )
    parser.add_argument("--target-tokens", type=int, default=128)
    parser.add_argument("--layers", type=int, nargs="+", default=[4, 6])
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(2)
    model = ThreadguardModel.from_pretrained(args.model)
    comments: list[str] = []
    targets: list[str] = []
    for name in args.corpora:
        for rows in read_corpus(name, args.data).splits.values():
            comments += [r["text"] for r in rows]
            targets += [r["target"] for r in rows] + [r["context"] for r in rows]
    long_enc = model.input_encoder
    short_enc = InputEncoder(model.tokenizer, args.target_tokens)
    out = Path(args.out)
    logger.info("%d comments, %d targets", len(set(comments)), len(set(targets)))
    encode_states(model, short_enc, targets, args.layers).save(out / "targets")
    encode_states(model, long_enc, comments, args.layers).save(out / "comments")


if __name__ == "__main__":
    main()
