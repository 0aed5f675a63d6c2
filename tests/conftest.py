"""Shared fixtures: tiny random encoders with offline-built tokenizers, and tiny models.

Nothing here downloads anything: the encoders are built from configs with random
weights and the tokenizers from vocabularies made on the spot, then saved to
temporary folders so that ``from_pretrained(path)`` works on them like on a real
checkpoint.
"""

from __future__ import annotations

import logging
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import string
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from tokenizers import ByteLevelBPETokenizer, processors
from tokenizers.implementations import BertWordPieceTokenizer
from transformers import (
    AutoModel,
    BertConfig,
    BertTokenizerFast,
    RobertaConfig,
    RobertaTokenizerFast,
)

from classifier.labels import SPAN_LABELS
from classifier.model.config import ModelConfig
from classifier.model.constants import CACHE_ENV, COMMENT_DIR
from classifier.model.network import ThreadguardModel
from classifier.moderation.policy import Policy

#: Words the tiny BERT vocabulary knows whole; anything else is spelled out in
#: single characters and ``##`` pieces, so arbitrary English text tokenizes.
#: A fixed policy over every toxicity label, for tests whose expected decisions are written
#: against known thresholds (the shipped default policy is tuned to the shipped model and
#: changes with it).
STRICT_POLICY = Policy.from_dict(
    {
        "labels": {
            "toxicity": {"threshold": 0.8, "action": "review"},
            "severe_toxicity": {"threshold": 0.7, "action": "reject"},
            "obscene": {"threshold": 0.9, "action": "review"},
            "threat": {"threshold": 0.7, "action": "reject"},
            "insult": {"threshold": 0.85, "action": "review"},
            "identity_attack": {"threshold": 0.7, "action": "review"},
            "spam": {"threshold": 0.9, "action": "reject"},
        }
    }
)

TINY_WORDS = [
    "the",
    "a",
    "an",
    "and",
    "or",
    "but",
    "not",
    "no",
    "yes",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "this",
    "that",
    "these",
    "those",
    "it",
    "its",
    "they",
    "them",
    "their",
    "he",
    "she",
    "his",
    "her",
    "we",
    "you",
    "your",
    "i",
    "me",
    "my",
    "our",
    "of",
    "in",
    "on",
    "at",
    "to",
    "for",
    "from",
    "with",
    "by",
    "about",
    "as",
    "into",
    "over",
    "after",
    "before",
    "than",
    "then",
    "so",
    "if",
    "because",
    "article",
    "comment",
    "news",
    "report",
    "reports",
    "said",
    "says",
    "say",
    "government",
    "police",
    "minister",
    "president",
    "people",
    "city",
    "country",
    "war",
    "attack",
    "killed",
    "kill",
    "violent",
    "violence",
    "peace",
    "vote",
    "election",
    "law",
    "court",
    "true",
    "false",
    "fake",
    "real",
    "agree",
    "disagree",
    "wrong",
    "right",
    "source",
    "evidence",
    "proof",
    "link",
    "where",
    "why",
    "what",
    "who",
    "how",
    "when",
    "please",
    "thanks",
    "thank",
    "idiot",
    "stupid",
    "hate",
    "love",
    "good",
    "bad",
    "great",
    "terrible",
    "awful",
    "nice",
    "really",
    "very",
    "just",
    "only",
    "also",
    "more",
    "most",
    "some",
    "any",
    "all",
    "every",
    "buy",
    "cheap",
    "free",
    "click",
    "here",
    "now",
    "today",
    "new",
    "old",
    "first",
    "last",
    "one",
    "two",
    "three",
    "year",
    "years",
]

TINY_ENCODER_KW = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 37,
}


def tiny_wordpiece_vocab() -> list[str]:
    """Special tokens, characters, their ``##`` continuations and some whole words."""
    chars = string.ascii_lowercase + string.digits + string.punctuation
    return [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        *chars,
        *(f"##{c}" for c in string.ascii_lowercase + string.digits),
        *dict.fromkeys(TINY_WORDS),
    ]


def build_tiny_bert(path: Path, seed: int = 0) -> Path:
    """Save a random 2-layer BERT (hidden 32) and its WordPiece tokenizer to ``path``."""
    vocab = tiny_wordpiece_vocab()
    backend = BertWordPieceTokenizer({w: i for i, w in enumerate(vocab)}, lowercase=True)
    tokenizer = BertTokenizerFast(tokenizer_object=backend._tokenizer, model_max_length=512)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), max_position_embeddings=512, **TINY_ENCODER_KW)
    AutoModel.from_config(config).save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


def build_tiny_roberta(path: Path, seed: int = 0) -> Path:
    """Save a random 2-layer RoBERTa and a byte-level BPE tokenizer trained on the spot."""
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    backend = ByteLevelBPETokenizer()
    backend.train_from_iterator(
        [" ".join(TINY_WORDS)] * 4, vocab_size=400, min_frequency=1, special_tokens=specials
    )
    backend._tokenizer.post_processor = processors.RobertaProcessing(
        ("</s>", backend.token_to_id("</s>")), ("<s>", backend.token_to_id("<s>"))
    )
    tokenizer = RobertaTokenizerFast(tokenizer_object=backend._tokenizer, model_max_length=512)
    torch.manual_seed(seed)
    config = RobertaConfig(
        vocab_size=backend.get_vocab_size(),
        max_position_embeddings=514,
        type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **TINY_ENCODER_KW,
    )
    AutoModel.from_config(config).save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


@pytest.fixture(autouse=True)
def _root_log_handlers() -> Iterator[None]:
    """Handlers a test adds to the root logger go when it ends. The CLI's
    ``logging.basicConfig`` under ``CliRunner`` binds one to that run's stderr, which
    closes with it; a later test's server thread logging through it hit a closed file."""
    root = logging.getLogger()
    before = list(root.handlers)
    yield
    root.handlers[:] = before


@pytest.fixture(autouse=True, scope="session")
def _export_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """ONNX exports of test models go to a temporary cache, never the user's."""
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("threadguard-cache"))


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder with a tiny random BERT encoder + fast tokenizer (``from_pretrained``-able)."""
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_roberta_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder with a tiny random RoBERTa encoder + byte-level BPE tokenizer."""
    return build_tiny_roberta(tmp_path_factory.mktemp("tiny-roberta"))


@pytest.fixture
def tiny_config(tiny_encoder_dir: Path) -> ModelConfig:
    """A :class:`ModelConfig` on the tiny BERT, with all labels and short inputs."""
    return ModelConfig(encoder=str(tiny_encoder_dir), max_length=64, min_target_tokens=16)


@pytest.fixture
def tiny_model(tiny_config: ModelConfig) -> ThreadguardModel:
    """A threadguard model (fresh heads, eval mode) on the tiny BERT; seeded."""
    torch.manual_seed(0)
    return ThreadguardModel.from_encoder(tiny_config)


def span_config(tiny_encoder_dir: Path) -> ModelConfig:
    """A tiny comment model's config with span and constructiveness heads."""
    return ModelConfig(
        encoder=str(tiny_encoder_dir),
        max_length=32,
        min_target_tokens=8,
        span_labels=SPAN_LABELS,
        constructive_labels=("constructive", "evidence"),
    )


@pytest.fixture
def span_folder(tiny_encoder_dir: Path, tiny_config: ModelConfig, tmp_path: Path) -> Path:
    """A two-pass model folder whose comment model has span and constructiveness heads,
    span weights large enough that some words pass the threshold and others do not."""
    torch.manual_seed(0)
    outer = tmp_path / "model"
    ThreadguardModel.from_encoder(tiny_config).save_pretrained(outer)
    torch.manual_seed(1)
    comment = ThreadguardModel.from_encoder(span_config(tiny_encoder_dir))
    assert comment.span_head is not None
    with torch.no_grad():
        comment.span_head.weight.normal_(std=2.0)
    comment.save_pretrained(outer / COMMENT_DIR)
    return outer
