"""Toxic spans and constructiveness: targets from annotations, the heads, decoding to
character offsets, and the same spans from every backend and through every writer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from classifier.model.config import ModelConfig
from classifier.model.constants import COMMENT_DIR
from classifier.model.loading import load_predictor
from classifier.model.network import ThreadguardModel
from classifier.model.spans import (
    char_values,
    decode_spans,
    explaining_spans,
    span_chars,
    span_f1,
    token_targets,
)
from tests.conftest import span_config
from tests.test_backends import needs_onnx
from training.batches import training_batch
from training.corpora import load_corpus
from training.corpora.jigsaw import ToxicSpan, span_runs
from training.data import make_example
from training.losses import batch_loss, compute_loss

FIXTURES = Path(__file__).parent / "fixtures" / "corpora"
LABELS = ("toxicity", "insult", "obscene", "identity_attack", "threat")
HARD_TEXTS = [
    "You are a pathetic idiot and everyone here knows it",
    "Caf\u00e9 cre\u0300me 😂😂 and then: idiot!",
    "line one\r\nsecond line, idiot\r\nthird",
    "👍🏽 ok idiot 🇨🇦 done",
]


def test_span_f1_follows_semeval_2021_task_5() -> None:
    assert span_f1([], []) == 1.0  # no gold span: 1 only for an empty prediction
    assert span_f1([1, 2], []) == 0.0
    assert span_f1([], [1, 2]) == 0.0
    assert span_f1([1, 2, 3, 4], [3, 4, 5, 6]) == pytest.approx(0.5)


def test_span_runs_share_annotators_by_character_and_type() -> None:
    spans = [
        ToxicSpan(4, 9, "Insult", "a1"),
        ToxicSpan(4, 9, "Profane/Obscene", "a2"),
        ToxicSpan(0, 3, "Other Toxicity", "a2"),
        ToxicSpan(7, 40, "Insult", "a1"),  # overlaps a1's own span: one vote; runs past the end
    ]
    runs = span_runs(12, spans, annotators=4)
    values = char_values(json.dumps([list(r) for r in runs]), 12, LABELS)
    assert values is not None
    assert values[5, 0] == pytest.approx(0.5)  # two of four annotators
    assert values[5, 1] == pytest.approx(0.25) and values[5, 2] == pytest.approx(0.25)
    assert values[1, 0] == pytest.approx(0.25) and values[1, 1:].sum() == 0  # untyped
    assert values[11, 1] == pytest.approx(0.25)  # cut at the text's end
    assert values[3, 0] == 0


def test_make_example_checks_spans() -> None:
    row = make_example(
        id="x", source="s", split="train", text="you idiot", spans=[(4, 9, "insult", 1.0)]
    )
    assert json.loads(row["spans"]) == [[4, 9, "insult", 1.0]]
    assert make_example(id="y", source="s", split="train", text="hi")["spans"] == ""
    with pytest.raises(ValueError, match="bad span"):
        make_example(id="z", source="s", split="train", text="hi", spans=[(0, 9, "insult", 1.0)])
    with pytest.raises(ValueError, match="unknown span label"):
        make_example(id="z", source="s", split="train", text="hi", spans=[(0, 1, "rude", 1.0)])


def test_corpora_carry_spans_and_constructiveness() -> None:
    spans = load_corpus("toxic_spans", FIXTURES)
    marked = [r for split in spans.values() for r in split if r["spans"] not in ("", "[]")]
    assert marked, "the ToxicSpans fixture has annotated spans"
    for row in marked:
        for start, end, label, value in json.loads(row["spans"]):
            assert 0 <= start < end <= len(row["text"]) and label in LABELS and 0 < value <= 1
    c3 = load_corpus("c3", FIXTURES)
    rows = {r["id"]: r for split in c3.values() for r in split}
    assert rows["source1_a_1"]["constructive"] == 1.0
    assert rows["source1_a_1"]["evidence"] == pytest.approx(0.6)
    assert rows["source1_a_2"]["solution"] == 0.0
    assert rows["source1_a_2"]["spans"] == ""  # C3 does not annotate spans
    assert spans["train"][0]["constructive"] == -1.0  # ToxicSpans does not rate it


@pytest.mark.parametrize("text", HARD_TEXTS)
def test_offsets_index_the_original_text(tiny_model: ThreadguardModel, text: str) -> None:
    """A span decoded from the tokens of "idiot" is exactly "idiot" in the text as given:
    emoji, combining characters, CRLF and flags do not shift it."""
    ((offsets, word_ids),) = tiny_model.input_encoder.alignment([text])
    start = text.index("idiot")
    probs = np.zeros((len(offsets), len(LABELS)), dtype=np.float32)
    for t, (a, b) in enumerate(offsets):
        if a >= start and b <= start + len("idiot"):
            probs[t, [0, 1]] = 0.9
    (span,) = decode_spans(offsets, word_ids, probs, LABELS)
    assert text[span["start"] : span["end"]] == "idiot"
    assert span["label"] == "insult" and span["score"] == pytest.approx(0.9)
    # and the targets training builds from that character range mark those tokens only
    values = char_values(json.dumps([[start, start + 5, "insult", 1.0]]), len(text), LABELS)
    assert values is not None
    targets = token_targets(values, offsets)
    assert (targets[:, 1] > 0).tolist() == (probs[:, 1] > 0).tolist()


def test_decode_joins_neighbouring_words_and_whole_words() -> None:
    text = "you pathetic idiot, really"
    offsets = [(0, 3), (4, 8), (8, 12), (13, 18), (18, 19), (20, 26)]  # "pathetic" in two pieces
    words = [0, 1, 1, 2, 3, 4]
    probs = np.zeros((6, len(LABELS)), dtype=np.float32)
    probs[1, 0] = 0.7  # one piece of "pathetic" reaches the threshold: the whole word counts
    probs[3, 0], probs[3, 2] = 0.8, 0.2  # "idiot": its type stays below half the threshold
    (span,) = decode_spans(offsets, words, probs, LABELS, threshold=0.5)
    assert text[span["start"] : span["end"]] == "pathetic idiot"
    assert span["label"] == "toxicity" and span["score"] == pytest.approx(0.8)
    assert decode_spans(offsets, words, probs, LABELS, threshold=0.9) == []
    assert span_chars([span]) == list(range(4, 18))


def test_config_checks_span_and_constructive_labels(tiny_encoder_dir: Path) -> None:
    with pytest.raises(ValueError, match="must include 'toxicity'"):
        ModelConfig(encoder=str(tiny_encoder_dir), span_labels=("insult",))
    with pytest.raises(ValueError, match="toxicity_input 'comment_span'"):
        ModelConfig(encoder=str(tiny_encoder_dir), span_labels=LABELS, toxicity_input="pair")
    with pytest.raises(ValueError, match="unknown constructive label"):
        ModelConfig(encoder=str(tiny_encoder_dir), constructive_labels=("kind",))
    plain = ModelConfig(encoder=str(tiny_encoder_dir)).to_dict()
    assert (
        "span_labels" not in plain and "constructive_labels" not in plain
    )  # old configs as they were


def test_heads_train_save_and_load(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = ThreadguardModel.from_encoder(span_config(tiny_encoder_dir)).train()
    text = "you are an idiot"
    rows = [
        make_example(
            id="a", source="toxic_spans", split="train", text=text,
            toxicity={"toxicity": 1.0}, spans=[(11, 16, "toxicity", 1.0), (11, 16, "insult", 0.5)],
        ),
        make_example(
            id="b", source="c3", split="train", text="the figures do not add up",
            toxicity={"toxicity": 0.0}, constructive={"constructive": 0.8, "evidence": 0.4},
        ),
    ]  # fmt: skip
    batch = training_batch(model, rows)
    targets = batch["span_targets"]
    assert targets.shape[:2] == batch["input_ids"].shape and targets.shape[2] == len(LABELS)
    assert (targets[1] == -1).all()  # C3 has no spans: every token unknown
    marked = targets[0, :, 0] == 1.0
    assert marked.sum() >= 1 and (targets[0, ~batch["comment_mask"][0]] == -1).all()
    assert batch["constructive"].tolist() == [
        [-1.0, -1.0],
        [pytest.approx(0.8), pytest.approx(0.4)],
    ]
    loss, parts = batch_loss(model, batch)
    assert set(parts) == {"stance", "toxicity", "spans", "constructive"}
    loss.backward()
    assert model.span_head is not None and model.span_head.weight.grad is not None
    assert model.constructive_head is not None and model.constructive_head.weight.grad is not None
    with pytest.raises(ValueError, match="without a spans head"):
        plain = ThreadguardModel.from_encoder(ModelConfig(encoder=str(tiny_encoder_dir)))
        compute_loss(plain(**plain.encode([""], None, ["x"])), torch.tensor([-1]), None,
                     torch.tensor([[-1.0] * 7]), span_targets=torch.zeros(1, 3, 5))  # fmt: skip
    model.eval().save_pretrained(tmp_path / "m")
    loaded = ThreadguardModel.from_pretrained(tmp_path / "m")
    assert loaded.config == model.config
    assert loaded.span_head is not None and model.span_head is not None
    torch.testing.assert_close(loaded.span_head.weight, model.span_head.weight)


def _spans(rows: list[dict]) -> list[list[tuple[int, int, str]]]:
    return [[(s["start"], s["end"], s["label"]) for s in r["spans"]] for r in rows]


@needs_onnx
def test_spans_agree_across_backends_and_index_the_text(span_folder: Path) -> None:
    long = " ".join(["the council met to discuss the budget"] * 12) + " you idiot"
    items = [{"text": t, "target": "", "context": ""} for t in [*HARD_TEXTS, long, ""]]
    found = {b: load_predictor(span_folder, backend=b).predict(items) for b in ("torch", "onnx")}
    assert _spans(found["torch"]) == _spans(found["onnx"])
    assert any(r["spans"] for r in found["torch"]), "the fixture's heads mark some words"
    for item, row in zip(items, found["torch"], strict=True):
        text = item["text"]
        assert set(row["constructive"]) == {"constructive", "evidence"}
        for span in row["spans"]:
            piece = text[span["start"] : span["end"]]
            assert piece and piece == piece.strip()  # whole words, no stray space
            assert span["label"] in LABELS and 0.0 <= span["score"] <= 1.0
    # the windows of a long comment reach its end
    assert found["torch"][-2]["spans"] == [] or found["torch"][-2]["spans"][-1]["end"] <= len(long)
    int8 = load_predictor(span_folder, backend="onnx-int8").predict(items)
    for item, row in zip(items, int8, strict=True):
        for span in row["spans"]:
            assert 0 <= span["start"] < span["end"] <= len(item["text"])


def test_spans_can_be_turned_off(span_folder: Path) -> None:
    predictor = load_predictor(span_folder, backend="torch")
    assert predictor.comment_model is not None
    items = [{"text": HARD_TEXTS[0], "target": "", "context": ""}]
    (row,) = predictor.with_options(spans=False).predict(items)
    assert "spans" not in row and "constructive" in row
    (row,) = predictor.predict(items)  # the predictor it was derived from is unchanged
    assert "spans" in row


def test_score_rows_carry_spans_and_constructiveness_through_every_writer(
    span_folder: Path, tmp_path: Path
) -> None:
    """``threadguard score`` rows: spans as offsets into the text as read (CRLF and emoji
    kept), the same through JSONL, CSV (JSON text) and Parquet; --no-spans drops them;
    --sort constructive puts each thread's most constructive comment first."""
    import pandas as pd
    from typer.testing import CliRunner

    from classifier.cli import app

    texts = [*HARD_TEXTS, "Thanks, the figures in the second table answer my question."]
    src = tmp_path / "in.jsonl"
    src.write_text(
        "\n".join(
            json.dumps({"thread_id": "t", "comment_id": str(i), "parent_id": None, "text": t})
            for i, t in enumerate(texts)
        )
        + "\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    base = ["score", str(src), "--model", str(span_folder), "--backend", "torch"]
    rows = {}
    for fmt in ("jsonl", "csv", "parquet"):
        out = tmp_path / f"out.{fmt}"
        result = runner.invoke(app, [*base, "-f", fmt, "-o", str(out)])
        assert result.exit_code == 0, result.output
        if fmt == "jsonl":
            found = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
            rows[fmt] = [(r["text"], r["spans"], r["constructive"]["constructive"]) for r in found]
        else:
            frame = (
                pd.read_csv(out, keep_default_na=False) if fmt == "csv" else pd.read_parquet(out)
            )
            assert {"constructive", "constructive_evidence", "spans"} <= set(frame.columns)
            rows[fmt] = [
                (t, json.loads(s), c)
                for t, s, c in zip(
                    frame["text"], frame["spans"], frame["constructive"], strict=True
                )
            ]
    assert (
        [r[1] for r in rows["jsonl"]]
        == [r[1] for r in rows["csv"]]
        == [r[1] for r in rows["parquet"]]
    )
    assert [r[0] for r in rows["parquet"]] == texts  # the text as read, CRLF included
    assert any(r[1] for r in rows["jsonl"])
    for text, spans, _ in rows["jsonl"]:
        for span in spans:
            assert text[span["start"] : span["end"]].strip() == text[span["start"] : span["end"]]
    plain = runner.invoke(app, [*base, "-f", "jsonl", "--no-spans"])
    assert plain.exit_code == 0
    assert all("spans" not in json.loads(x) for x in plain.stdout.splitlines() if x.startswith("{"))
    ranked = runner.invoke(app, [*base, "-f", "jsonl", "--sort", "constructive"])
    scores = [
        json.loads(x)["constructive"]["constructive"]
        for x in ranked.stdout.splitlines()
        if x.startswith("{")
    ]
    assert scores == sorted(scores, reverse=True) and len(scores) == len(texts)
    assert sorted(scores) == sorted(r[2] for r in rows["jsonl"])  # the same rows, reordered


def test_table_highlights_spans() -> None:
    from classifier.scoring import highlighted

    text = "line one\r\nyou idiot"
    start = text.index("idiot")
    out = highlighted(text, [{"start": start, "end": start + 5, "label": "insult", "score": 0.9}])
    assert out.plain[start : start + 5] == "idiot" and "\n" not in out.plain
    (style,) = out.spans
    assert (style.start, style.end, str(style.style)) == (start, start + 5, "bold red")


def test_span_threshold_is_fitted_on_the_task_dev_file_and_loaded(
    span_folder: Path, tiny_config: ModelConfig, tmp_path: Path
) -> None:
    from classifier.model.constants import CONFIG_FILE
    from training.calibrate import SPAN_GRID, fit_span_threshold
    from training.span_eval import read_tsd, tsd_path

    saved = fit_span_threshold(span_folder, data_root=FIXTURES)
    assert saved["threshold"] in SPAN_GRID and saved["n"] == len(
        read_tsd(tsd_path("dev", FIXTURES))
    )
    meta = json.loads((span_folder / COMMENT_DIR / CONFIG_FILE).read_text(encoding="utf-8"))
    assert meta["span_threshold"] == saved["threshold"]
    predictor = load_predictor(span_folder, backend="torch")
    assert predictor.comment_model is not None
    assert predictor.comment_model.span_threshold == saved["threshold"]
    # the chosen threshold is the best of the grid on that file, for the spans a user gets:
    # rule 3 under the default policy (a post no label holds has none)
    from classifier.moderation.policy import Policy

    posts = read_tsd(tsd_path("dev", FIXTURES))
    comment = predictor.comment_model
    tokens = comment.span_token_probabilities([p.text for p in posts])
    probs = comment.comment_scores([p.text for p in posts]).toxicity
    names = comment.toxicity_labels
    label_scores = [dict(zip(names, map(float, row), strict=True)) for row in probs]
    holds = Policy.default().holds()

    def reported(t: Any, p: Any, score: dict[str, float], th: float) -> list[int]:
        spans = decode_spans(t.offsets, t.word_ids, t.probs, LABELS, th)
        return span_chars(explaining_spans(spans, p.text, score, holds))

    scores = [
        np.mean([
            span_f1(reported(t, p, s, th), p.gold)
            for t, p, s in zip(tokens, posts, label_scores, strict=True)
        ])
        for th in SPAN_GRID
    ]  # fmt: skip
    assert saved["dev_f1"] == pytest.approx(max(scores))
    assert "rule 3" in saved["fitted_on"]
    plain = tmp_path / "plain"
    ThreadguardModel.from_encoder(tiny_config).save_pretrained(plain / COMMENT_DIR)
    with pytest.raises(ValueError, match="no span head"):
        fit_span_threshold(plain, data_root=FIXTURES)
