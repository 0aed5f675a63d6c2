"""Training: recipes, a few steps on every adapter's fixtures, determinism and resuming."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from classifier.model.network import ThreadguardModel
from training import trainer as trainer_module
from training.config import TrainConfig, load_config
from training.corpora import CORPORA, load_corpus
from training.data import make_example, to_dataset
from training.mixing import CorpusData
from training.trainer import train

FIXTURES = Path(__file__).parent / "fixtures" / "corpora"
TRAINABLE = [name for name, spec in CORPORA.items() if not spec.eval_only]


def recipe(encoder: Path, out: Path, **kw: object) -> TrainConfig:
    data = {
        "model": {"encoder": str(encoder), "max_length": 64},
        "corpora": TRAINABLE,
        "data_root": str(FIXTURES),
        "output_dir": str(out),
        "batch_size": 4,
        "max_steps": 4,
        "eval_every": 2,
        "seed": 3,
        **kw,
    }
    return TrainConfig.from_dict(data)


def test_recipe_rejects_unknown_keys_and_bad_values(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown key 'epochz'"):
        TrainConfig.from_dict({"corpora": ["olid"], "epochz": 3})
    with pytest.raises(
        ValueError, match="batch_size: input should be greater than or equal to 1, got 0"
    ):
        TrainConfig.from_dict({"corpora": ["olid"], "batch_size": 0})
    with pytest.raises(ValueError, match=r"scheduler: input should be .* got 'cosin'"):
        TrainConfig.from_dict({"corpora": ["olid"], "scheduler": "cosin"})
    with pytest.raises(ValueError, match=r"corpora.0: unknown key 'wieght'"):
        TrainConfig.from_dict({"corpora": [{"name": "olid", "wieght": 2}]})
    with pytest.raises(ValueError, match=r"ema_decay: input should be less than 1, got 1.5"):
        TrainConfig.from_dict({"corpora": ["olid"], "ema_decay": 1.5})
    with pytest.raises(ValueError, match=r"model.toxicity_input: input should be .* got 'both'"):
        TrainConfig.from_dict({"corpora": ["olid"], "model": {"toxicity_input": "both"}})


def test_yaml_recipe_with_overrides(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("corpora: [olid, {name: arc, weight: 0.5}]\nmodel:\n  max_length: 128\n")
    cfg = load_config(path, ["model.max_length=64", "learning_rate=1e-4", "seed=7"])
    assert cfg.model.max_length == 64 and cfg.learning_rate == 1e-4 and cfg.seed == 7
    assert [(c.name, c.weight) for c in cfg.corpora] == [("olid", 1.0), ("arc", 0.5)]
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        load_config(path, ["seed"])


def test_shipped_recipes_load() -> None:
    for path in sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml")):
        if path.name != "moderation.yaml":
            assert load_config(path).corpora, path


def test_a_few_steps_on_every_adapter(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    result = train(recipe(tiny_encoder_dir, tmp_path / "m"))
    assert result.steps == 4
    assert [h["step"] for h in result.history] == [0, 2, 4]
    evaluated = {k.split("/")[1] for h in result.history for k in h if k.count("/") == 2}
    assert {"rumoureval2019", "fnc1", "arc", "olid", "youtube_spam", "toxic_spans"} <= evaluated
    assert all("dev/score" in h for h in result.history)
    model = ThreadguardModel.from_pretrained(tmp_path / "m")
    assert model.training_config is not None and model.training_config["seed"] == 3
    # the fixture corpora between them annotate every stance class and toxicity label
    assert len(model.stance_labels) == 5 and "spam" in model.toxicity_labels


def test_labels_come_from_the_training_data(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    cfg = recipe(tiny_encoder_dir, tmp_path / "m", corpora=["semeval2016_stance", "youtube_spam"])
    train(cfg)
    model = ThreadguardModel.from_pretrained(tmp_path / "m")
    assert model.stance_labels == ("support", "deny", "comment")
    assert model.toxicity_labels == ("spam",)


@pytest.mark.parametrize(
    ("corpus", "untrained", "metric"),
    [
        ("rumoureval2019", "toxicity", "dev/score"),
        ("olid", "stance", "dev/olid/insult_auc"),  # the fixture's dev has one toxicity class
    ],
)
def test_a_one_task_recipe_keeps_the_other_head_untrained(
    tiny_encoder_dir: Path, tmp_path: Path, corpus: str, untrained: str, metric: str, caplog: Any
) -> None:
    cfg = recipe(tiny_encoder_dir, tmp_path / "m", corpora=[corpus], early_stopping_metric=metric)
    with caplog.at_level("WARNING", logger="training.recipe"):
        train(cfg)
    assert f"the {untrained} head is not trained" in caplog.text
    model = ThreadguardModel.from_pretrained(tmp_path / "m")
    config = TrainConfig.from_dict({"corpora": [corpus]}).model
    assert getattr(model, f"{untrained}_labels") == getattr(config, f"{untrained}_labels")


def test_train_command_reports_an_impossible_recipe_without_a_traceback(
    tiny_encoder_dir: Path, tmp_path: Path
) -> None:
    import yaml
    from typer.testing import CliRunner

    from classifier.cli import app

    config = tmp_path / "recipe.yaml"
    data = recipe(tiny_encoder_dir, tmp_path / "m", corpora=["olid"]).to_dict()
    data["early_stopping_metric"] = "dev/olid/nothing"
    config.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(app, ["train", str(config)])
    assert result.exit_code == 2  # a usage error, not an unhandled exception (exit code 1)
    assert isinstance(result.exception, SystemExit)
    assert "dev/olid/nothing" in result.output


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return ThreadguardModel.from_pretrained(path).state_dict()


def test_same_seed_same_model(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    corpora = ["rumoureval2019", "olid"]
    train(recipe(tiny_encoder_dir, tmp_path / "a", corpora=corpora))
    train(recipe(tiny_encoder_dir, tmp_path / "b", corpora=corpora))
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("ema_decay", [None, 0.5])
def test_interrupted_run_resumes_to_the_same_model(
    tiny_encoder_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ema_decay: float | None
) -> None:
    # with a weight average, the checkpoint carries it: a restart from the raw weights differs
    kw = {"corpora": ["rumoureval2019", "olid"], "max_steps": 6, "eval_every": 3}
    kw["ema_decay"] = ema_decay
    # every evaluation scores better than the last, so the saved model is the final one
    counter = itertools.count()
    monkeypatch.setattr(
        trainer_module, "evaluate_dev", lambda *a: {"dev/score": float(next(counter))}
    )
    real_save = trainer_module._save_checkpoint

    def save_then_die(*args: Any, **kwargs: Any) -> None:
        real_save(*args, **kwargs)  # the step-3 checkpoint is written, then the machine goes away
        raise KeyboardInterrupt

    train(recipe(tiny_encoder_dir, tmp_path / "whole", **kw))
    monkeypatch.setattr(trainer_module, "_save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(recipe(tiny_encoder_dir, tmp_path / "cut", **kw))
    monkeypatch.setattr(trainer_module, "_save_checkpoint", real_save)
    result = train(recipe(tiny_encoder_dir, tmp_path / "cut", **kw))
    assert result.steps == 6 and [h["step"] for h in result.history] == [0, 3, 6]
    whole, cut = _weights(tmp_path / "whole"), _weights(tmp_path / "cut")
    assert all(torch.equal(whole[k], cut[k]) for k in whole)
    # the resumed run's log continues the cut one's; a fresh run in the same folder starts its own
    assert _logged_steps(tmp_path / "cut") == [0, 3, 6]
    train(recipe(tiny_encoder_dir, tmp_path / "cut", **kw), resume=False)
    assert _logged_steps(tmp_path / "cut") == [0, 3, 6]


def test_ema_saves_the_moving_average_of_the_trained_weights(
    tiny_encoder_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kw = {"corpora": ["rumoureval2019", "olid"], "max_steps": 4, "eval_every": 1}
    kw["learning_rate"] = 1e-2  # steps big enough that the average and the last step differ
    snapshots: list[dict[str, torch.Tensor]] = []

    def record(model: ThreadguardModel, *args: Any) -> dict[str, float]:
        snapshots.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return {"dev/score": float(len(snapshots))}  # rising: every step's model is saved

    monkeypatch.setattr(trainer_module, "evaluate_dev", record)
    train(recipe(tiny_encoder_dir, tmp_path / "raw", eval_at_start=False, **kw))
    raw = snapshots[:]  # the raw weights after steps 1..4; the same seed retraces them below
    assert len(raw) == 4
    train(recipe(tiny_encoder_dir, tmp_path / "ema", eval_at_start=False, ema_decay=0.75, **kw))
    expected = dict(raw[0])
    for weights in raw[1:]:
        expected = {k: 0.75 * expected[k] + 0.25 * weights[k] for k in expected}
    saved = _weights(tmp_path / "ema")
    changed = [k for k in saved if not torch.equal(raw[0][k], raw[-1][k])]
    assert changed  # training moved some weights, so the average differs from the last step
    for key in changed:
        assert torch.allclose(saved[key], expected[key], atol=1e-6), key
    assert any(not torch.allclose(saved[k], raw[-1][k], atol=1e-4) for k in changed)


def _logged_steps(out: Path) -> list[int]:
    lines = (out / trainer_module.CHECKPOINT_DIR / trainer_module.LOG_FILE).read_text().splitlines()
    return [json.loads(line)["step"] for line in lines]


def test_corpus_balanced_weights_balance_classes_within_each_corpus(tiny_model: Any) -> None:
    from training.data import make_example, to_dataset
    from training.mixing import class_weights

    rows = [
        make_example(id=f"r{i}", source="rumour", split="train", text="t", stance=s,
                     stance_classes=("support", "deny", "query", "comment"))
        for i, s in enumerate(["comment"] * 6 + ["deny"] * 2)
    ] + [
        make_example(id=f"f{i}", source="fnc", split="train", text="t", stance=s,
                     stance_classes=("support", "deny", "comment", "unrelated"))
        for i, s in enumerate(["unrelated"] * 3 + ["support"])
    ] + [make_example(id="o", source="olid", split="train", text="t", toxicity={"toxicity": 1.0})]  # fmt: skip
    _, _, w = class_weights(to_dataset(rows), tiny_model, "corpus_balanced")
    assert w is not None
    rumour_comment, rumour_deny, fnc_unrel, fnc_support, olid = w[0], w[6], w[8], w[11], w[12]
    # within a corpus each class carries the same total weight
    assert 6 * rumour_comment == pytest.approx(2 * rumour_deny)
    assert 3 * fnc_unrel == pytest.approx(fnc_support)
    assert olid == 0.0  # no stance label: no stance weight
    assert w[:12].mean() == pytest.approx(1.0)


def test_stance_loss_weight_scales_one_corpus_without_repeating_it(tiny_model: Any) -> None:
    from training.config import CorpusEntry
    from training.data import make_example, to_dataset
    from training.mixing import class_weights

    classes = ("support", "deny", "query", "comment")
    rows = [
        make_example(id=f"{src}{i}", source=src, split="train", text="t", stance=s,
                     stance_classes=classes)
        for src in ("rumour", "semeval")
        for i, s in enumerate(["comment"] * 3 + ["deny"])
    ] + [make_example(id="o", source="olid", split="train", text="t", toxicity={"toxicity": 1.0})]  # fmt: skip
    data = to_dataset(rows)
    _, _, base = class_weights(data, tiny_model, "corpus_balanced")
    _, _, leaned = class_weights(data, tiny_model, "corpus_balanced", {"rumour": 3.0})
    assert base is not None and leaned is not None
    assert np.allclose(leaned[:4], 3 * base[:4]) and np.allclose(leaned[4:], base[4:])
    # without class weighting the factor still applies: ones elsewhere, none for no stance
    _, _, plain = class_weights(data, tiny_model, "none", {"rumour": 2.0, "semeval": 1.0})
    assert plain is not None and list(plain) == [2.0] * 4 + [1.0] * 4 + [0.0]
    assert class_weights(data, tiny_model, "none", {"rumour": 1.0})[2] is None
    with pytest.raises(
        ValueError, match="stance_loss_weight: input should be greater than 0, got 0"
    ):
        CorpusEntry(name="rumour", stance_loss_weight=0)


def test_lora_recipe_saves_a_small_delta_that_loads(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    lora = {"r": 4, "alpha": 8, "dropout": 0.0, "extra_trainable": ["LayerNorm"]}
    cfg = recipe(
        tiny_encoder_dir,
        tmp_path / "m",
        model={"encoder": str(tiny_encoder_dir), "max_length": 64, "lora": lora},
        corpora=["rumoureval2019", "olid"],
        checkpoint_dir=str(tmp_path / "ckpt"),
    )
    train(cfg)
    saved = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert "encoder_delta.safetensors" in saved and "encoder" not in saved
    assert not (tmp_path / "m" / "checkpoint").exists()  # checkpoints live elsewhere
    assert (tmp_path / "ckpt" / "state.pt").exists()
    model = ThreadguardModel.from_pretrained(tmp_path / "m")
    assert model.config.lora is not None and model.config.lora.r == 4


def test_a_corpus_can_be_checked_on_more_of_its_dev_split(tiny_encoder_dir: Path) -> None:
    corpora = [{"name": "rumoureval2019", "eval_max_examples": 1000}, "olid"]
    config = recipe(tiny_encoder_dir, Path("unused"), corpora=corpora, eval_max_examples=2)
    rumours, olid = trainer_module.load_corpora(config)
    assert rumours.dev is not None and olid.dev is not None
    assert len(rumours.dev) > 2 and len(olid.dev) == 2
    with pytest.raises(
        ValueError,
        match=r"corpora.0.eval_max_examples: input should be greater than or equal to 1, got 0",
    ):
        TrainConfig.from_dict({"corpora": [{"name": "olid", "eval_max_examples": 0}]})


def test_a_recipe_can_assume_a_label_the_corpus_leaves_unknown(tiny_encoder_dir: Path) -> None:
    corpora = [{"name": "toxic_spans", "assume": {"spam": 0.0}}, "olid"]
    config = recipe(tiny_encoder_dir, Path("unused"), corpora=corpora)
    spans, olid = trainer_module.load_corpora(config)
    assert spans.train is not None and spans.dev is not None and olid.train is not None
    assert set(spans.train["spam"]) == {0.0}  # every training row is a spam negative now
    assert set(spans.dev["spam"]) == {-1.0}  # dev keeps the corpus's own labels
    assert set(olid.train["spam"]) == {-1.0}
    assert spans.train["toxicity"] == load_corpus("toxic_spans", FIXTURES)["train"]["toxicity"]
    with pytest.raises(ValueError, match=r"corpora.0.assume: 'spamm' is not a toxicity label"):
        TrainConfig.from_dict({"corpora": [{"name": "olid", "assume": {"spamm": 0}}]})
    with pytest.raises(
        ValueError, match=r"corpora.0.assume.spam: input should be less than or equal to 1, got 2"
    ):
        TrainConfig.from_dict({"corpora": [{"name": "olid", "assume": {"spam": 2}}]})


def test_a_stance_loss_weight_on_a_corpus_without_stance_is_refused(
    tiny_encoder_dir: Path, tmp_path: Path
) -> None:
    corpora = [{"name": "olid", "stance_loss_weight": 2.0}, "rumoureval2019"]
    config = recipe(tiny_encoder_dir, tmp_path / "m", corpora=corpora)
    with pytest.raises(
        ValueError, match=r"corpus olid: stance_loss_weight 2\.0 has nothing to weigh"
    ):
        train(config)
    assert not (tmp_path / "m" / "heads.safetensors").exists()


def test_a_comment_only_recipe_drops_targets_and_scores_dev_on_the_named_corpora(
    tiny_encoder_dir: Path, tmp_path: Path
) -> None:
    corpora = ["context_toxicity", "c3", "olid"]
    config = recipe(
        tiny_encoder_dir,
        tmp_path / "m",
        corpora=corpora,
        comment_only=True,
        dev_score_corpora=["c3", "context_toxicity"],
    )
    context, c3, olid = trainer_module.load_corpora(config)
    assert any(load_corpus("context_toxicity", FIXTURES)["train"]["target"])  # it has parents
    for data in (context, c3, olid):
        for split in (data.train, data.dev):
            if split is not None:
                assert set(split["target"]) <= {""} and set(split["context"]) <= {""}

    # dev/score averages only the named corpora's primaries (dev splits with both classes)
    def dev(corpus: str) -> CorpusData:
        rows = [
            make_example(id=f"{corpus}{i}", source=corpus, split="dev", text=text,
                         toxicity={"toxicity": float(i % 2)})
            for i, text in enumerate(["calm words", "you idiot", "a bus plan", "shut up fool"])
        ]  # fmt: skip
        return CorpusData(corpus, None, to_dataset(rows))

    model = ThreadguardModel.from_encoder(config.model)
    scored = trainer_module.evaluate_dev(model, [dev("c3"), dev("olid")], 8, ["c3"])
    assert scored["dev/score"] == pytest.approx(scored["dev/c3/primary"])
    everything = trainer_module.evaluate_dev(model, [dev("c3"), dev("olid")], 8)
    assert everything["dev/score"] == pytest.approx(
        (scored["dev/c3/primary"] + scored["dev/olid/primary"]) / 2
    )
    with pytest.raises(ValueError, match=r"dev_score_corpora names \['arc'\], not among"):
        recipe(tiny_encoder_dir, tmp_path, corpora=corpora, dev_score_corpora=["arc"])
    with pytest.raises(
        ValueError, match="comment_only: input should be a valid boolean, got 'yes'"
    ):
        recipe(tiny_encoder_dir, tmp_path, corpora=corpora, comment_only="yes")
