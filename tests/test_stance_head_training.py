"""Training the one-pass stance head (training.stance_states, training.stance_head): the
state store keeps every text as it was, and a trained head assembles into a folder that
loads as a one-pass model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from classifier.labels import STANCE_LABELS
from classifier.model.config import ModelConfig
from classifier.model.config_head import StanceHeadConfig
from classifier.model.network import ThreadguardModel
from classifier.model.one_pass import OnePassPredictor
from classifier.model.stance_head import CrossStanceHead, UpperLayersHead
from training.stance_head import Batcher, Example, assemble, head_classes, predict, score
from training.stance_states import StateStore, encode_states


def test_the_state_store_keeps_every_text_as_it_was(tmp_path: Path) -> None:
    texts = ["plain", "two\r\n\r\nparagraphs", "a \\n that is not a newline\n", "ünïcode"]
    offsets = np.array([0, 2, 5, 6, 8])
    states = np.arange(8 * 2 * 3, dtype=np.float16).reshape(8, 2, 3)
    StateStore({t: i for i, t in enumerate(texts)}, offsets, states).save(tmp_path)
    back = StateStore.load(tmp_path)
    assert list(back.index) == texts
    np.testing.assert_array_equal(back.get(texts[1]), states[2:5])


def test_encoded_states_are_the_comment_models(tiny_encoder_dir: Path) -> None:
    config = ModelConfig(encoder=str(tiny_encoder_dir), max_length=32, state_layers=(1, 2))
    model = ThreadguardModel.from_encoder(config)
    store = encode_states(model, model.input_encoder, ["a comment", "another one here"], [1, 2])
    batch = model.input_encoder.collate(
        model.input_encoder.encode(["", ""], None, ["a comment", "another one here"])
    )
    with torch.inference_mode():
        out = model(**batch)
    assert out.token_states is not None
    n = len(store.get("a comment"))
    np.testing.assert_allclose(store.get("a comment"), out.token_states[0, :n].numpy(), atol=1e-2)


def _examples() -> list[Example]:
    comment = STANCE_LABELS.index("comment")
    return [
        Example("rumoureval2019", 0, "a comment", "another one here", "", comment, False),
        Example("rumoureval2019", 0, "another one here", "a comment", "a comment", 0, True),
    ]


def test_a_head_scores_and_assembles_into_a_one_pass_model(
    tiny_encoder_dir: Path, tmp_path: Path
) -> None:
    config = ModelConfig(encoder=str(tiny_encoder_dir), max_length=32)
    model = ThreadguardModel.from_encoder(config)
    model.save_pretrained(tmp_path / "comment")
    store = encode_states(model, model.input_encoder, ["a comment", "another one here"], [1, 2])
    for kind, head in (
        ("cross", CrossStanceHead(StanceHeadConfig(layers=(1, 2), dim=16, attention_heads=2, ffn=32), 32, head_classes())),
        ("upper", UpperLayersHead(StanceHeadConfig(kind="upper", layers=(2,), dim=32, attention_heads=2, ffn=64), head_classes())),
    ):  # fmt: skip
        layers = head.config.layers
        batcher = Batcher(store, store, layers, [1, 2], 16, 16)
        logp = predict(head, batcher, _examples())
        np.testing.assert_allclose(np.exp(logp).sum(axis=1), 1.0, rtol=1e-5)
        assert 0.0 <= score("rumoureval2019", _examples(), logp)["primary"] <= 1.0
        saved = tmp_path / f"head-{kind}"
        saved.mkdir()
        torch.save({"state": head.state_dict(), "config": head.config.model_dump(mode="json"),
                    "reply_offsets": None}, saved / "head.pt")  # fmt: skip
        folder = assemble(saved, tmp_path / "comment", tmp_path / f"one-pass-{kind}")
        from classifier.model.loading import load_predictor

        predictor = load_predictor(folder, backend="torch")
        assert isinstance(predictor, OnePassPredictor)
        rows = predictor.predict([{"text": "a comment", "target": "another one here"}])
        assert set(rows[0]["stance"]["scores"]) == set(STANCE_LABELS)
