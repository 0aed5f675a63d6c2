"""The one-pass model (classifier.model.one_pass): one encoder pass per comment, stance
from a head over the comment's and the target's states; torch and ONNX agree; toxicity is
the comment model's own; targets are read once and a parent in the call costs nothing."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from classifier.labels import SPAN_LABELS, STANCE_LABELS
from classifier.model.config import ModelConfig
from classifier.model.config_head import StanceHeadConfig
from classifier.model.constants import COMMENT_DIR
from classifier.model.loading import load_predictor
from classifier.model.network import ThreadguardModel
from classifier.model.one_pass import OnePassPredictor
from classifier.model.stance_head import build_head, save_head

HEADS = [
    {"name": "comment", "corpora": ["rumoureval2019"], "classes": ["support", "deny", "query", "comment"]},
    {"name": "claim", "corpora": ["fnc1", "arc"], "classes": ["support", "deny", "comment", "unrelated"]},
]  # fmt: skip

ITEMS: list[dict[str, Any]] = [
    {"text": "the city council voted for the new park", "target": "council approves park plan"},
    {"text": "no it did not, read the article again", "target": "the city council voted for the new park", "context": "council approves park plan"},
    {"text": "who paid for it", "target": "council approves park plan"},
    {"text": "good idea and about time " * 12, "target": ""},
    {"text": "", "target": "council approves park plan"},
]  # fmt: skip


def save_one_pass(folder: Path, encoder: Path, seed: int = 0) -> Path:
    """A tiny one-pass model: a comment model with spans returning its states, and a
    random stance head beside it."""
    torch.manual_seed(seed)
    config = ModelConfig(
        encoder=str(encoder),
        max_length=32,
        min_target_tokens=8,
        span_labels=SPAN_LABELS,
        constructive_labels=("constructive",),
        state_layers=(1, 2),
    )
    ThreadguardModel.from_encoder(config).save_pretrained(folder / COMMENT_DIR)
    head_config = StanceHeadConfig(layers=(1, 2), dim=16, depth=2, attention_heads=2, ffn=32,
                                   target_tokens=24)  # fmt: skip
    meta = {
        "head": head_config.model_dump(mode="json"),
        "stance_labels": list(STANCE_LABELS),
        "stance_heads": HEADS,
        "stance_offsets": None,
    }
    head = build_head(meta, 32)
    with torch.no_grad():
        for p in head.parameters():
            p.normal_(std=0.5)
    save_head(head, meta, folder)
    return folder


def count_encoder_inputs(predictor: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that the encoder's passes (the comment model's batches) fill with the length
    of every input they read, from now on."""
    comment_model = predictor.comment_model
    assert comment_model is not None
    seen: list[int] = []
    original = type(comment_model)._run_batch

    def counting(self: Any, encoded: Any) -> Any:
        seen.extend(len(e) for e in encoded)
        return original(self, encoded)

    monkeypatch.setattr(type(comment_model), "_run_batch", counting)
    return seen


@pytest.fixture
def one_pass_folder(tiny_encoder_dir: Path, tmp_path: Path) -> Path:
    return save_one_pass(tmp_path / "one-pass", tiny_encoder_dir)


def test_loads_as_one_pass_and_toxicity_is_the_comment_models(one_pass_folder: Path) -> None:
    predictor = load_predictor(one_pass_folder, backend="torch")
    assert isinstance(predictor, OnePassPredictor)
    found = predictor.score_arrays(ITEMS, spans=True)
    alone = predictor.comment_model.comment_scores([i["text"] for i in ITEMS], spans=True)
    np.testing.assert_array_equal(found.toxicity, alone.toxicity)
    assert found.spans == alone.spans
    np.testing.assert_allclose(found.stance.sum(axis=1), 1.0, rtol=1e-5)
    # a stance class the comment head lacks comes from the claim head
    assert (found.stance[:, STANCE_LABELS.index("unrelated")] > 0).all()
    rows = predictor.predict(ITEMS)
    assert set(rows[0]["stance"]["scores"]) == set(STANCE_LABELS)


def test_onnx_gives_torchs_probabilities(one_pass_folder: Path, tmp_path: Path) -> None:
    reference = load_predictor(one_pass_folder, backend="torch").score_arrays(ITEMS)
    onnx = load_predictor(one_pass_folder, backend="onnx", cache_dir=tmp_path / "cache")
    found = onnx.score_arrays(ITEMS)
    np.testing.assert_allclose(found.stance, reference.stance, atol=1e-4)
    np.testing.assert_allclose(found.toxicity, reference.toxicity, atol=1e-4)
    by_head = onnx.score_arrays(ITEMS, stance_head="claim").stance
    assert by_head[:, STANCE_LABELS.index("query")].max() == 0.0  # the claim head has no query


def test_one_encoder_pass_per_comment_and_targets_once(
    one_pass_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    predictor = load_predictor(one_pass_folder, backend="torch")
    assert isinstance(predictor, OnePassPredictor)
    seen = count_encoder_inputs(predictor, monkeypatch)
    thread = [{"text": f"comment number {i} on the park", "target": "council approves park plan"}
              for i in range(6)]  # fmt: skip
    thread.append({"text": "a reply", "target": thread[0]["text"], "context": "council"})
    predictor.score_arrays(thread)
    # 7 comments (one window each) + the article + the context; the parent was a comment
    assert len(seen) == 7 + 2
    seen.clear()
    predictor.score_arrays(thread[:3])  # the article is cached now
    assert len(seen) == 3


def test_a_parent_in_the_call_gives_the_same_stance(one_pass_folder: Path) -> None:
    predictor = load_predictor(one_pass_folder, backend="torch")
    together = predictor.score_arrays(ITEMS[:2]).stance[1]
    fresh = load_predictor(one_pass_folder, backend="torch")
    alone = fresh.score_arrays(ITEMS[1:2]).stance[0]
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_stance_reads_the_target(one_pass_folder: Path) -> None:
    predictor = load_predictor(one_pass_folder, backend="torch")
    a = predictor.score_arrays([{"text": "who paid for it", "target": "a park"}]).stance
    b = predictor.score_arrays([{"text": "who paid for it", "target": "the war"}]).stance
    assert not np.allclose(a, b)


def test_comment_model_false_is_refused(one_pass_folder: Path) -> None:
    with pytest.raises(ValueError, match="one-pass"):
        load_predictor(one_pass_folder, backend="torch", comment_model=False)


def test_the_hook_reads_a_threads_article_once(
    one_pass_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A thread sent to /v1/score is one batch: the article is read once, a parent in the
    request not at all; a comment under the same article sent later to /v1/moderate
    reads only itself."""
    from fastapi.testclient import TestClient

    from classifier.moderation.app import create_app
    from classifier.moderation.settings import ServiceSettings

    predictor = load_predictor(one_pass_folder, backend="torch")
    seen = count_encoder_inputs(predictor, monkeypatch)
    article = {"title": "park plan", "text": "The council approves the park plan."}
    comments = [{"text": f"comment {i} on it", "comment_id": f"c{i}"} for i in range(5)]
    comments.append({"text": "a reply to it", "comment_id": "r", "parent_id": "c0"})
    with TestClient(create_app(ServiceSettings(no_auth=True), predictor=predictor)) as client:
        for _ in range(200):  # the warm-up runs in the background at start
            if client.get("/readyz").status_code == 200:
                break
            time.sleep(0.05)
        seen.clear()
        answer = client.post("/v1/score", json={"comments": comments, "article": article})
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["results"]) == 6
        # 6 comments, the article (title and lead) and the title (the reply's context),
        # though the hook cut the thread into two slices: the parent is in the first
        assert len(seen) == 6 + 2
        seen.clear()
        one = {"text": "another comment", "article": article}
        assert client.post("/v1/moderate", json=one).status_code == 200
        assert len(seen) == 1


def _spins(holder: Any) -> bool:
    options = holder.session.session.get_session_options()  # its OnnxSession's ORT session
    try:
        return bool(options.get_session_config_entry("session.intra_op.allow_spinning") != "0")
    except RuntimeError:  # not set: ONNX Runtime's default, spinning
        return True


def test_sessions_run_in_turn_do_not_spin(
    one_pass_folder: Path, span_folder: Path, tmp_path: Path
) -> None:
    """Two sessions that run in turn must not have idle threads spinning against each other:
    a two-pass model's both sessions, a one-pass model's head; a one-pass encoder alone may."""
    cache = tmp_path / "cache"
    two = load_predictor(span_folder, backend="onnx", cache_dir=cache)
    assert not _spins(two) and not _spins(two.comment_model)
    one = load_predictor(one_pass_folder, backend="onnx", cache_dir=cache)
    assert isinstance(one, OnePassPredictor)
    assert _spins(one.comment_model) and not _spins(one.head)
    alone = load_predictor(span_folder / COMMENT_DIR, backend="onnx", cache_dir=cache)
    assert _spins(alone)
