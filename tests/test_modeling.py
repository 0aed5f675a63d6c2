"""Tests of classifier.model (config, network, serialization) and the training loss on tiny random encoders (no real weights, except `slow`)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoTokenizer

from classifier.labels import STANCE_LABELS, TOXICITY_LABELS
from classifier.model.config import LoraSettings, ModelConfig
from classifier.model.constants import CONFIG_FILE, DEFAULT_ENCODER, resolve_encoder
from classifier.model.encoding import InputEncoder, emoji_to_words
from classifier.model.network import ThreadguardModel, encode
from classifier.model.outputs import ThreadguardOutput
from classifier.model.serialization import DELTA_FILE, ENCODER_DIR
from training.batches import label_tensors, training_batch
from training.lora import apply_lora
from training.losses import batch_loss, compute_loss

PAIRS = {
    "targets": ["the government said the war is over", "", "police report the attack"],
    "contexts": ["news", "", ""],
    "texts": ["i disagree, where is the proof?", "buy cheap stuff now", "you idiot"],
}


def words(n: int, vocab: tuple[str, ...] = ("war", "peace", "vote", "court")) -> str:
    return " ".join(vocab[i % len(vocab)] for i in range(n))


def logits(model: ThreadguardModel, **kwargs: list[str]) -> ThreadguardOutput:
    inputs = kwargs or PAIRS
    return model(**model.encode(inputs["targets"], inputs["contexts"], inputs["texts"]))


# --------------------------------------------------------------------------- config


def test_config_defaults() -> None:
    config = ModelConfig()
    assert config.encoder == DEFAULT_ENCODER
    assert config.stance_labels == STANCE_LABELS
    assert config.toxicity_labels == TOXICITY_LABELS
    assert (config.pooling, config.max_length, config.lora) == ("mean", 256, None)


def test_config_from_dict_rejects_unknown_key() -> None:
    with pytest.raises(ValueError, match="bogus_key"):
        ModelConfig.from_dict({"encoder": "x", "bogus_key": 1})
    with pytest.raises(ValueError, match="rank"):
        ModelConfig.from_dict({"lora": {"rank": 4}})


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"stance_labels": ["support", "maybe"]}, "maybe"),
        ({"toxicity_labels": ["toxicity", "rudeness"]}, "rudeness"),
        ({"toxicity_input": "article"}, "article"),
        ({"pooling": "max"}, "max"),
        ({"stance_labels": ["support"]}, "support"),
        ({"max_length": 2}, "2"),
        ({"lora": {"r": 0}}, "0"),
        ({"emoji_words": "yes"}, "yes"),
    ],
)
def test_config_from_dict_rejects_bad_value(data: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        ModelConfig.from_dict(data)


def test_config_round_trip_and_canonical_order() -> None:
    config = ModelConfig.from_dict(
        {
            "encoder": "roberta-base",
            "stance_labels": ["deny", "support", "comment"],
            "toxicity_labels": ["insult", "toxicity"],
            "lora": {"r": 4, "target_modules": ["query"]},
        }
    )
    assert config.stance_labels == ("support", "deny", "comment")
    assert config.toxicity_labels == ("toxicity", "insult")
    assert config.lora == LoraSettings(r=4, target_modules=("query",))
    assert ModelConfig.from_dict(config.to_dict()) == config
    assert "emoji_words" not in config.to_dict()  # unset: older models' configs stay as they were
    spelled = ModelConfig.from_dict({**config.to_dict(), "emoji_words": True})
    assert ModelConfig.from_dict(spelled.to_dict()) == spelled and spelled.emoji_words


def test_resolve_encoder() -> None:
    for ref in (DEFAULT_ENCODER, "default"):
        assert (Path(resolve_encoder(ref)) / "config.json").is_file()
    assert resolve_encoder("roberta-base") == "roberta-base"
    assert resolve_encoder("/some/path") == "/some/path"


# --------------------------------------------------------------------------- encoding


@pytest.fixture(params=["bert", "roberta"])
def any_tokenizer_dir(request: pytest.FixtureRequest) -> Path:
    return request.getfixturevalue(
        f"tiny_{'encoder' if request.param == 'bert' else 'roberta'}_dir"
    )


def test_pair_encoding_matches_the_tokenizer_when_nothing_is_cut(any_tokenizer_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(any_tokenizer_dir))
    targets, texts = ["the war is over", ""], ["i disagree", "thanks"]
    batch = encode(tokenizer, targets, None, texts, max_length=64)
    for i, (target, text) in enumerate(zip(targets, texts, strict=True)):
        expected = tokenizer(target, text) if target else tokenizer(text)
        n = len(expected["input_ids"])
        assert batch["input_ids"][i, :n].tolist() == expected["input_ids"]
        assert batch["attention_mask"][i].sum() == n
        if "token_type_ids" in expected:
            assert batch["token_type_ids"][i, :n].tolist() == expected["token_type_ids"]
        comment = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert batch["input_ids"][i][batch["comment_mask"][i]].tolist() == comment


def test_long_target_keeps_the_whole_comment(any_tokenizer_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(any_tokenizer_dir))
    comment = words(20, ("you", "are", "wrong", "about", "the", "election"))
    batch = encode(tokenizer, [words(5000)], ["article title"], [comment], max_length=128)
    assert batch["input_ids"].shape[1] == 128
    kept = batch["input_ids"][0][batch["comment_mask"][0]].tolist()
    assert kept == tokenizer(comment, add_special_tokens=False)["input_ids"]
    assert len(kept) >= 20


def test_long_comment_leaves_the_target_budget(tiny_encoder_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_encoder_dir))
    encoder = InputEncoder(tokenizer, 64, min_target_tokens=16)
    (example,) = encoder.encode([words(100)], [""], [words(500)])
    n_comment = sum(example.comment_mask)
    assert len(example) == 64
    assert 64 - 3 - n_comment == 16  # [CLS] target [SEP] comment [SEP]


def test_context_is_trimmed_before_the_target(tiny_encoder_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_encoder_dir))
    target, context = "police report the attack", words(300)
    batch = encode(tokenizer, [target], [context], ["thanks"], max_length=32)
    target_ids = tokenizer(target, add_special_tokens=False)["input_ids"]
    ids = batch["input_ids"][0].tolist()
    sep = tokenizer.sep_token_id
    first = ids[1 : ids.index(sep, ids.index(sep) + 1)]  # context [SEP] target
    assert first[-len(target_ids) :] == target_ids
    assert len(ids) == 32 and sep in first


def test_empty_target_gives_a_single_sequence(tiny_encoder_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_encoder_dir))
    batch = encode(tokenizer, ["  "], ["ignored without a target"], ["thank you"], max_length=32)
    assert (
        batch["input_ids"][0].tolist()[: batch["attention_mask"].sum()]
        == tokenizer("thank you")["input_ids"]
    )


def test_emoji_are_spelled_out_by_name() -> None:
    assert emoji_to_words("you are a 🐷🐷🐷") == "you are a  pig face "  # a run: named once
    assert emoji_to_words("👍🏽 ok 🇺🇸 👨\u200d👩\u200d👧 ❤️") == (
        " thumbs up sign  ok    man , woman , girl   heavy black heart "
    )  # skin tone, flag letters, joiners and variation selector dropped
    plain = "Café © 2024, naïve — 10°C; 東京"
    assert emoji_to_words(plain) == plain  # text without pictographs is left as it is


def test_emoji_words_encodes_the_spelled_text(tiny_encoder_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_encoder_dir))
    triple = (["the 🐷 article"], ["🔥 thread"], ["you 🐷"])
    spelled = encode(tokenizer, *triple, max_length=48, emoji_words=True)
    expected = encode(
        tokenizer, ["the pig face article"], ["fire thread"], ["you pig face"], max_length=48
    )
    assert spelled["input_ids"].tolist() == expected["input_ids"].tolist()
    raw = encode(tokenizer, *triple, max_length=48)  # off by default: the text as it is
    assert raw["input_ids"].tolist() != expected["input_ids"].tolist()


def test_comment_only_inputs(tiny_encoder_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_encoder_dir))
    batch = encode(tokenizer, [words(500)], None, ["you idiot"], max_length=32, comment_only=True)
    n = int(batch["comment_attention_mask"].sum())
    assert batch["comment_input_ids"][0, :n].tolist() == tokenizer("you idiot")["input_ids"]


# --------------------------------------------------------------------------- forward


@pytest.mark.parametrize("toxicity_input", ["pair", "comment_span", "comment"])
@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_forward_shapes(tiny_config: ModelConfig, toxicity_input: str, pooling: str) -> None:
    config = ModelConfig.from_dict(
        {**tiny_config.to_dict(), "toxicity_input": toxicity_input, "pooling": pooling}
    )
    model = ThreadguardModel.from_encoder(config)
    out = logits(model)
    assert out.stance_logits.shape == (3, len(STANCE_LABELS))
    assert out.toxicity_logits.shape == (3, len(TOXICITY_LABELS))
    assert torch.isfinite(out.stance_logits).all() and torch.isfinite(out.toxicity_logits).all()


def test_label_subset_sets_head_sizes(tiny_encoder_dir: Path) -> None:
    config = ModelConfig(
        encoder=str(tiny_encoder_dir), stance_labels=("deny", "support"), toxicity_labels=("spam",)
    )
    model = ThreadguardModel.from_encoder(config)
    assert model.stance_labels == ("support", "deny") and model.toxicity_labels == ("spam",)
    out = logits(model)
    assert out.stance_logits.shape == (3, 2) and out.toxicity_logits.shape == (3, 1)


def test_empty_comment_with_comment_span_is_finite(tiny_model: ThreadguardModel) -> None:
    out = logits(tiny_model, targets=["the war"], contexts=[""], texts=[""])
    assert torch.isfinite(out.toxicity_logits).all()


def test_roberta_encoder_works(tiny_roberta_dir: Path, tmp_path: Path) -> None:
    model = ThreadguardModel.from_encoder(ModelConfig(encoder=str(tiny_roberta_dir), max_length=64))
    before = logits(model)
    loaded = ThreadguardModel.from_pretrained(model.save_pretrained(tmp_path / "m"))
    assert torch.equal(before.stance_logits, logits(loaded).stance_logits)


# --------------------------------------------------------------------------- loss


def backward(model: ThreadguardModel, stance, mask, toxicity, **kwargs):  # type: ignore[no-untyped-def]
    model.zero_grad(set_to_none=True)
    out = logits(model)
    loss, parts = compute_loss(out, stance, mask, toxicity, **kwargs)
    loss.backward()
    return out, loss, parts


def zero_or_none(grad: torch.Tensor | None) -> bool:
    return grad is None or bool((grad == 0).all())


def test_unknown_toxicity_gives_no_gradient(tiny_model: ThreadguardModel) -> None:
    stance = torch.tensor([0, 1, 3])
    toxicity = torch.full((3, len(TOXICITY_LABELS)), -1.0)
    _, loss, parts = backward(tiny_model, stance, None, toxicity)
    assert parts["toxicity"] == 0 and torch.isfinite(loss)
    assert zero_or_none(tiny_model.toxicity_head.weight.grad)
    assert zero_or_none(tiny_model.toxicity_head.bias.grad)
    assert not zero_or_none(tiny_model.stance_head.weight.grad)


def test_partly_known_toxicity_only_trains_known_labels(tiny_model: ThreadguardModel) -> None:
    toxicity = torch.full((3, len(TOXICITY_LABELS)), -1.0)
    insult = TOXICITY_LABELS.index("insult")
    toxicity[:, insult] = torch.tensor([0.0, 1.0, 1.0])
    backward(tiny_model, torch.full((3,), -1), None, toxicity)
    grad = tiny_model.toxicity_head.weight.grad
    assert grad is not None and grad[insult].abs().sum() > 0
    assert (grad[[i for i in range(len(TOXICITY_LABELS)) if i != insult]] == 0).all()


def test_class_a_corpus_lacks_gets_no_gradient(tiny_model: ThreadguardModel) -> None:
    unrelated = STANCE_LABELS.index("unrelated")
    mask = torch.ones((3, len(STANCE_LABELS)), dtype=torch.bool)
    mask[:, unrelated] = False
    toxicity = torch.full((3, len(TOXICITY_LABELS)), -1.0)
    backward(tiny_model, torch.tensor([0, 1, 2]), mask, toxicity)
    weight, bias = tiny_model.stance_head.weight.grad, tiny_model.stance_head.bias.grad
    assert weight is not None and bias is not None
    assert (weight[unrelated] == 0).all() and bias[unrelated] == 0
    assert weight[STANCE_LABELS.index("comment")].abs().sum() > 0  # annotated, just absent


def test_no_stance_labels_gives_zero_not_nan(tiny_model: ThreadguardModel) -> None:
    mask = torch.zeros((3, len(STANCE_LABELS)), dtype=torch.bool)
    toxicity = torch.zeros((3, len(TOXICITY_LABELS)))
    _, loss, parts = backward(tiny_model, torch.full((3,), -1), mask, toxicity)
    assert parts["stance"] == 0 and torch.isfinite(loss)
    assert zero_or_none(tiny_model.stance_head.weight.grad)
    for param in tiny_model.parameters():
        assert param.grad is None or torch.isfinite(param.grad).all()


def test_soft_toxicity_labels(tiny_model: ThreadguardModel) -> None:
    toxicity = torch.full((3, len(TOXICITY_LABELS)), 0.3)
    out, _, parts = backward(tiny_model, torch.full((3,), -1), None, toxicity)
    expected = F.binary_cross_entropy_with_logits(out.toxicity_logits.detach(), toxicity)
    assert torch.allclose(parts["toxicity"], expected)


def test_weighted_losses_match_torch(tiny_model: ThreadguardModel) -> None:
    out = logits(tiny_model)
    stance = torch.tensor([0, 4, 2])
    weights = torch.tensor([1.0, 2.0, 3.0, 0.5, 4.0])
    toxicity = torch.tensor([[0.0, 1.0] * 3 + [1.0]] * 3)
    pos_weight = torch.linspace(1.0, 3.0, len(TOXICITY_LABELS))
    loss, parts = compute_loss(
        out,
        stance,
        None,
        toxicity,
        stance_class_weights=weights,
        toxicity_pos_weight=pos_weight,
        stance_weight=0.5,
        toxicity_weight=2.0,
    )
    ce = F.cross_entropy(out.stance_logits, stance, weight=weights)
    bce = F.binary_cross_entropy_with_logits(out.toxicity_logits, toxicity, pos_weight=pos_weight)
    assert torch.allclose(parts["stance"], ce) and torch.allclose(parts["toxicity"], bce)
    assert torch.allclose(loss, 0.5 * ce + 2.0 * bce)


def test_label_tensors_from_common_rows(tiny_encoder_dir: Path) -> None:
    from training.data import make_example

    rows = [
        make_example(id="1", source="rumoureval2019", split="train", text="where is the proof?",
                     target="the war is over", stance="query",
                     stance_classes=("support", "deny", "query", "comment")),
        make_example(id="2", source="fnc1", split="train", text="buy now", target="news",
                     stance="unrelated", stance_classes=STANCE_LABELS),
        make_example(id="3", source="olid", split="train", text="you idiot",
                     toxicity={"insult": 1.0, "toxicity": 0.8}),
    ]  # fmt: skip
    stance_labels = ("support", "deny", "query", "comment")  # no "unrelated"
    labels = label_tensors(rows, stance_labels, TOXICITY_LABELS)
    assert labels["stance"].tolist() == [2, -1, -1]
    assert labels["stance_class_mask"].tolist() == [[True] * 4] * 3
    assert labels["toxicity"][2, TOXICITY_LABELS.index("insult")] == 1.0
    assert labels["toxicity"][2, TOXICITY_LABELS.index("toxicity")] == pytest.approx(0.8)
    assert (labels["toxicity"][:2] == -1).all()

    model = ThreadguardModel.from_encoder(
        ModelConfig(encoder=str(tiny_encoder_dir), stance_labels=stance_labels, max_length=32)
    )
    loss, parts = batch_loss(model, training_batch(model, rows))
    assert torch.isfinite(loss)
    assert set(parts) == {"stance", "toxicity"}


def test_label_tensors_mask_follows_stance_classes() -> None:
    rows = [{"text": "x", "stance": 0, "stance_classes": ["support", "deny"]}]
    labels = label_tensors(rows, STANCE_LABELS, TOXICITY_LABELS)
    assert labels["stance_class_mask"].tolist() == [[True, True, False, False, False]]
    columns = {"text": ["x"], "stance": [0], "stance_classes": [["support", "deny"]]}
    by_column = label_tensors(columns, STANCE_LABELS, TOXICITY_LABELS)
    assert all(torch.equal(labels[k], by_column[k]) for k in labels)


# --------------------------------------------------------------------------- save / load


def perturb_trainable(model: ThreadguardModel, seed: int = 1) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(0.2 * torch.randn(param.shape, generator=generator))


def block_training_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import peft`` / ``import sklearn`` fail from now on, as without the train extra."""
    for name in [m for m in sys.modules if m.split(".")[0] in ("peft", "sklearn")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "peft", None)
    monkeypatch.setitem(sys.modules, "sklearn", None)


def test_full_round_trip_is_bit_identical(tiny_model: ThreadguardModel, tmp_path: Path) -> None:
    perturb_trainable(tiny_model)
    tiny_model.training_config = {"lr": 3e-4, "corpora": ["olid", "rumoureval2019"]}
    before = logits(tiny_model)
    path = tiny_model.save_pretrained(tmp_path / "model", mode="full")
    assert (path / ENCODER_DIR).is_dir() and not (path / DELTA_FILE).exists()
    loaded = ThreadguardModel.from_pretrained(path)
    after = logits(loaded)
    assert torch.equal(before.stance_logits, after.stance_logits)
    assert torch.equal(before.toxicity_logits, after.toxicity_logits)
    assert loaded.config == tiny_model.config
    assert loaded.training_config == tiny_model.training_config
    for name, tensor in tiny_model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    meta = (path / CONFIG_FILE).read_text()
    assert '"transformers"' in meta and '"torch"' in meta and '"threadguard"' in meta


def test_saved_tokenizer_carries_no_call_settings(
    tiny_model: ThreadguardModel, tmp_path: Path
) -> None:
    # a padded, truncated call (as training's collate makes) must not become the shipped default
    tiny_model.tokenizer(["a b c"], padding="max_length", truncation=True, max_length=16)
    path = tiny_model.save_pretrained(tmp_path / "model", mode="full")
    saved = json.loads((path / "tokenizer.json").read_text())
    assert saved["padding"] is None and saved["truncation"] is None


@pytest.mark.parametrize("toxicity_input", ["comment_span", "comment"])
def test_delta_round_trip_merges_lora(
    tiny_config: ModelConfig, toxicity_input: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = ThreadguardModel.from_encoder(
        ModelConfig.from_dict({**tiny_config.to_dict(), "toxicity_input": toxicity_input})
    )
    apply_lora(model, r=4, alpha=8, extra_trainable=["LayerNorm"])
    perturb_trainable(model)  # LoRA B starts at zero: make the adapters matter
    before = logits(model)
    path = model.save_pretrained(tmp_path / "delta")  # auto: LoRA -> delta
    assert (path / DELTA_FILE).is_file() and not (path / ENCODER_DIR).exists()

    block_training_extras(monkeypatch)
    loaded = ThreadguardModel.from_pretrained(path)
    after = logits(loaded)
    torch.testing.assert_close(after.stance_logits, before.stance_logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(after.toxicity_logits, before.toxicity_logits, atol=1e-5, rtol=0)
    assert loaded.config.lora == LoraSettings(r=4, alpha=8, extra_trainable=("LayerNorm",))


def test_full_save_of_a_lora_model_merges_it(tiny_model: ThreadguardModel, tmp_path: Path) -> None:
    apply_lora(tiny_model, r=2)
    perturb_trainable(tiny_model)
    before = logits(tiny_model)
    loaded = ThreadguardModel.from_pretrained(tiny_model.save_pretrained(tmp_path / "m", "full"))
    torch.testing.assert_close(
        logits(loaded).stance_logits, before.stance_logits, atol=1e-5, rtol=0
    )


def test_delta_without_lora_saves_only_heads(tiny_model: ThreadguardModel, tmp_path: Path) -> None:
    for param in tiny_model.encoder.parameters():
        param.requires_grad_(False)
    perturb_trainable(tiny_model)  # the heads only
    before = logits(tiny_model)
    path = tiny_model.save_pretrained(tmp_path / "m", mode="delta")
    assert (path / DELTA_FILE).stat().st_size < 1000  # no tensors, only the header
    assert torch.equal(logits(ThreadguardModel.from_pretrained(path)).stance_logits,
                       before.stance_logits)  # fmt: skip


def test_delta_refuses_a_different_base(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    from tests.conftest import build_tiny_bert

    base = Path(shutil.copytree(tiny_encoder_dir, tmp_path / "base"))
    model = ThreadguardModel.from_encoder(ModelConfig(encoder=str(base), max_length=32))
    path = model.save_pretrained(tmp_path / "m", mode="delta")
    build_tiny_bert(base, seed=123)  # the "installed" base changes under the saved delta
    with pytest.raises(ValueError, match="differ"):
        ThreadguardModel.from_pretrained(path)


def test_saved_config_keeps_the_encoder_reference(
    tiny_model: ThreadguardModel, tmp_path: Path
) -> None:
    path = tiny_model.save_pretrained(tmp_path / "m")
    loaded = ThreadguardModel.from_pretrained(path)
    assert loaded.config.encoder == tiny_model.config.encoder
    assert loaded.size_info() == tiny_model.size_info()


def test_resave_switches_mode_cleanly(tiny_model: ThreadguardModel, tmp_path: Path) -> None:
    path = tiny_model.save_pretrained(tmp_path / "m", mode="full")
    tiny_model.save_pretrained(path, mode="delta")
    assert not (path / ENCODER_DIR).exists()
    ThreadguardModel.from_pretrained(path)


# --------------------------------------------------------------------------- real encoder


@pytest.mark.slow
def test_default_encoder_forward_and_delta_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = ThreadguardModel.from_encoder(ModelConfig())
    assert model.config.encoder == DEFAULT_ENCODER
    inputs = {
        "targets": ["The council approved the new bike lanes.", ""],
        "contexts": ["City news", ""],
        "texts": ["Great, finally safer streets!", "Click here for cheap pills"],
    }
    out = logits(model, **inputs)
    assert out.stance_logits.shape == (2, 5) and out.toxicity_logits.shape == (2, 7)
    apply_lora(model, r=8, alpha=16)
    perturb_trainable(model)
    before = logits(model, **inputs)
    path = model.save_pretrained(tmp_path / "small", mode="delta")
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    assert size < 10 * 2**20, size
    after = logits(ThreadguardModel.from_pretrained(path), **inputs)
    # The delta is merged into the encoder's float32 weights, so the logits move by rounding,
    # which grows with their size (1.04e-5 on a logit of 1.37 under transformers 5.23).
    torch.testing.assert_close(after.stance_logits, before.stance_logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(after.toxicity_logits, before.toxicity_logits, atol=1e-5, rtol=1e-5)
