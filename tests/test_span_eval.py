"""Span and constructiveness evaluation: the SemEval-2021 Task 5 figures and their
baselines (lexicon, gradient x input attribution, random), the two benchmarks on a
tiny model folder, and ``threadguard evaluate`` on a model with span and
constructiveness heads."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from classifier.cli import app
from classifier.model.constants import WINDOW_OVERLAP
from classifier.model.loading import load_predictor
from classifier.model.network import ThreadguardModel
from classifier.model.spans import span_chars, span_f1
from tests.conftest import span_config
from tests.scripts import load_benchmark
from training.bootstrap import binary_scores, characteristic_target, constructive_metrics
from training.report_tables import highlight
from training.span_eval import (
    Attribution,
    GoldPost,
    LexiconBaseline,
    TokenScores,
    evaluate_spans,
    official_gold,
    post_f1,
    random_words,
    read_tsd,
    runs,
    summarise,
    words,
)

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "corpora"
runner = CliRunner()


def _chars(text: str, *pieces: str) -> tuple[int, ...]:
    """The offsets of each piece (its first occurrence) in ``text``."""
    out: list[int] = []
    for piece in pieces:
        start = text.index(piece)
        out += range(start, start + len(piece))
    return tuple(sorted(out))


# --------------------------------------------------------------------------- metric


def test_summarise_follows_the_task_metric() -> None:
    gold = [(1, 2, 3, 4), (), (), (5, 6)]
    predicted = [[3, 4, 5, 6], [], [9], []]
    # per post: 2*2/(4+4) = 0.5; empty/empty 1; a false alarm 0; a miss 0
    assert post_f1(predicted, gold).tolist() == [0.5, 1.0, 0.0, 0.0]
    found = summarise(predicted, gold, n_resamples=200, seed=1)
    assert found["f1"] == pytest.approx(1.5 / 4)
    assert found["with_gold"] == {"n": 2, "f1": pytest.approx(0.25), "ci": found["with_gold"]["ci"]}
    assert found["no_gold"]["n"] == 2 and found["no_gold"]["empty_share"] == 0.5
    assert found["predicted_empty_share"] == 0.5
    low, high = found["ci"]
    assert 0.0 <= low <= found["f1"] <= high <= 1.0 and low < high
    assert len(found["samples"]) == 200
    with pytest.raises(ValueError, match="predictions"):
        post_f1([[1]], [])
    assert runs([7, 1, 2, 3, 9, 8]) == [(1, 4), (7, 10)]


def test_task_files_keep_texts_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "tsd.csv"
    text = 'a "quoted"\r\nidiot, there'
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["spans", "text"])
        writer.writerow([str(list(_chars(text, "idiot"))), text])
        writer.writerow(["[]", "fine"])
    posts = read_tsd(path)
    assert posts == [GoldPost(text, _chars(text, "idiot")), GoldPost("fine", ())]
    assert text[posts[0].gold[0] : posts[0].gold[-1] + 1] == "idiot"
    # the fixture's official files, by split; a text the task left out has no gold
    texts = ["Those people are vermin, damn them.", "Have a nice day, neighbour."]
    assert official_gold(texts, "test", FIXTURES) == [tuple(range(24)), None]
    assert official_gold(texts, "test", tmp_path) is None  # no ToxicSpans folder there


# --------------------------------------------------------------------------- baselines


def test_words_keep_masked_profanity_and_contractions() -> None:
    assert [w for _, _, w in words("F*ck you, don't—IDIOT!")] == ["f*ck", "you", "don't", "idiot"]
    text = "ok idiot"
    ((start, end, _),) = words(text)[1:]
    assert text[start:end] == "idiot"


def test_lexicon_is_chosen_by_word_precision() -> None:
    def post(text: str, *toxic: str) -> GoldPost:
        return GoldPost(text, _chars(text, *toxic) if toxic else ())

    train = [
        post("you idiot", "idiot"),
        post("what an idiot", "idiot"),
        post("idiot again", "idiot"),
        post("the idiot said", ""),  # "" marks nothing: this occurrence is not toxic
        GoldPost("idiot x", (0, 1)),  # two of five characters: not inside a span
        post("you are wrong you know"),
        post("stupid you", "stupid"),
        post("Stupid idea", "Stupid"),
        post("stupid", "stupid"),
    ]
    lexicon = LexiconBaseline.fit(train, min_count=3)
    assert lexicon.precision["idiot"] == pytest.approx(3 / 5)
    assert lexicon.precision["stupid"] == 1.0  # case-insensitive
    assert lexicon.precision["you"] == 0.0 and "what" not in lexicon.precision  # seen once
    assert lexicon.vocabulary(0.7) == {"stupid"}
    assert lexicon.vocabulary(0.6) == {"stupid", "idiot"}
    text = "Idiot and idiot, stupid."
    (marked,) = lexicon.predict([text], 0.6)
    assert marked == list(_chars(text, "Idiot")) + list(range(10, 15)) + list(
        _chars(text, "stupid")
    )
    # on dev posts where "idiot" is never toxic, the tuned cut leaves it out
    dev = [post("an idiot idea"), post("stupid move", "stupid")]
    assert lexicon.tune(dev) == pytest.approx(1.0)
    assert 0.6 < lexicon.threshold <= 1.0
    assert lexicon.top_words(1) == [("stupid", 1.0, 3)]


def test_random_words_are_seeded_whole_words() -> None:
    texts = ["one two three four five six seven eight nine ten"] * 3
    first, again = random_words(texts, seed=3), random_words(texts, seed=3)
    assert first == again and first != random_words(texts, seed=4)
    marked = set(first[0])
    for start, end, _ in words(texts[0]):
        inside = {i in marked for i in range(start, end)}
        assert len(inside) == 1  # a word is marked whole or not at all
    assert random_words(texts, rate=0.0) == [[], [], []]


def _double_model(tiny_encoder_dir: Path) -> ThreadguardModel:
    torch.manual_seed(2)
    return ThreadguardModel.from_encoder(span_config(tiny_encoder_dir)).double()


def test_attribution_is_the_gradient_times_the_embedding_of_each_comment_token(
    tiny_encoder_dir: Path,
) -> None:
    """Each token's score is d logit / d(scale of its word embedding) at 1, checked by
    central finite differences: the token positions after [CLS] line up with the text's."""
    model = _double_model(tiny_encoder_dir)
    text = "you are an idiot"
    ((scored,),) = [Attribution(model).token_scores([text])]
    ((offsets, _),) = model.input_encoder.alignment([text])
    assert scored.offsets == offsets and len(scored.scores) == len(offsets)
    batch = model.input_encoder([""], None, [text])
    column = list(model.toxicity_labels).index("toxicity")
    embeddings = model.encoder.get_input_embeddings()

    def logit(position: int, scale: float) -> float:
        def hook(_module: object, _args: object, output: torch.Tensor) -> torch.Tensor:
            output = output.clone()
            output[:, position] *= scale
            return output

        handle = embeddings.register_forward_hook(hook)
        try:
            with torch.no_grad():
                out = model(**batch).toxicity_logits
        finally:
            handle.remove()
        assert out is not None
        return float(out[0, column])

    eps = 1e-4
    for t in range(len(offsets)):
        position = t + 1  # after [CLS]
        expected = (logit(position, 1 + eps) - logit(position, 1 - eps)) / (2 * eps)
        assert scored.scores[t] == pytest.approx(expected, rel=1e-4, abs=1e-8)


def test_attribution_covers_every_token_of_a_long_comment(tiny_encoder_dir: Path) -> None:
    model = _double_model(tiny_encoder_dir)
    long = " ".join(["the council met to discuss the budget"] * 10) + " you idiot"
    short = "thanks"
    scored = Attribution(model, batch_size=3).token_scores([long, short])
    assert len(model.input_encoder.windows([long], WINDOW_OVERLAP)) > 1
    assert all(np.isfinite(s.scores).all() for s in scored)
    # the last window's scores land on the last tokens: as scored alone, they agree
    ((tail,),) = [Attribution(model).token_scores(["you idiot"])]
    assert len(tail.scores) == 2 and np.isfinite(tail.scores).all()
    assert len(scored[1].scores) == len(model.input_encoder.alignment([short])[0][0])


def test_attribution_spans_are_whole_words_above_the_threshold() -> None:
    text = "you pathetic idiot, really"
    scored = TokenScores(
        [(0, 3), (4, 8), (8, 12), (13, 18), (18, 19), (20, 26)],
        [0, 1, 1, 2, 3, 4],
        np.array([0.1, 2.0, -1.0, 3.0, 0.0, -0.5], dtype=np.float32),
    )
    (raw,) = Attribution.spans([scored], 1.5)
    assert text[raw[0] : raw[-1] + 1] == "pathetic idiot"
    (normalised,) = Attribution.spans([scored], 0.9, normalise=True)  # 3.0 / 3.0 only
    assert text[normalised[0] : normalised[-1] + 1] == "idiot"
    quiet = TokenScores([(0, 3)], [0], np.array([-1.0], dtype=np.float32))
    assert Attribution.spans([quiet], 0.5, normalise=True) == [[]]


def test_attribution_tunes_on_gold(tiny_encoder_dir: Path) -> None:
    model = _double_model(tiny_encoder_dir)
    texts = ["you are an idiot", "thanks for the report", "stupid idiot"]
    gold = [_chars(texts[0], "idiot"), (), tuple(range(len(texts[2])))]
    saliency = Attribution(model)
    scored = saliency.token_scores(texts)
    tuned = saliency.tune(scored, gold)
    assert tuned["f1"] == max(tuned["raw_f1"], tuned["normalised_f1"])
    chosen = saliency.spans(scored, tuned["threshold"], tuned["normalise"])
    assert post_f1(chosen, gold).mean() == pytest.approx(tuned["f1"])


# --------------------------------------------------------------------------- constructiveness


def test_binary_scores_and_characteristics() -> None:
    y = np.array([0, 0, 1, 1, 1])
    prob = np.array([0.1, 0.6, 0.4, 0.8, 0.9])
    found = binary_scores(y, prob, 0.5, n_resamples=100)
    assert found["roc_auc"] == pytest.approx(roc_auc_score(y, prob))
    # at 0.5: TP 2, FP 1, FN 1 → F1 2/3; class 0: TP 1, FP 1, FN 1 → 1/2
    assert found["f1"] == pytest.approx(2 / 3)
    assert found["macro_f1"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert found["f1_ci"][0] <= found["f1"] <= found["f1_ci"][1]
    assert binary_scores(np.ones(3), prob[:3])["roc_auc"] is None
    shares = np.array([0.0, 0.2, 0.6, 0.8] + [0.0] * 10)
    assert characteristic_target(shares, min_positives=2)[1] == ">= 0.5"
    target, rule = characteristic_target(shares, min_positives=3)
    assert rule == "> 0" and target.tolist()[:4] == [0, 1, 1, 1]
    gold = {"constructive": np.array([0.8, 0.2, 1.0, -1.0, 0.6]), "evidence": np.array([0.6, 0.0, 0.2, -1.0, 0.0])}  # fmt: skip
    probs = np.array([[0.9, 0.7], [0.2, 0.1], [0.4, 0.3], [0.5, 0.5], [0.7, 0.2]])
    found = constructive_metrics(gold, probs, ["constructive", "evidence"], n_resamples=0)
    binary = found["constructive_binary"]
    assert binary["n"] == 4 and binary["positives"] == 3  # the unrated row left out
    assert binary["roc_auc"] == pytest.approx(1.0) and binary["f1"] == pytest.approx(2 * 2 / (2 + 3))  # fmt: skip
    evidence = found["characteristics"]["evidence"]
    assert evidence["binarised"] == "> 0" and evidence["positives"] == 2  # too few at 0.5
    assert evidence["roc_auc"] == pytest.approx(1.0)


# --------------------------------------------------------------------------- benchmarks


def _expected_span_f1(folder: Path, posts: list[GoldPost]) -> float:
    predictor = load_predictor(folder, backend="torch")
    rows = predictor.predict([{"text": p.text, "target": "", "context": ""} for p in posts])
    return float(np.mean([span_f1(span_chars(r["spans"]), p.gold) for r, p in zip(rows, posts, strict=True)]))  # fmt: skip


def _span_root(tmp_path: Path) -> Path:
    """A data root whose task files hold a few posts with and without gold spans."""
    folder = tmp_path / "data" / "toxic_spans"
    folder.mkdir(parents=True)
    posts = [
        ("you are an idiot and a liar", ("idiot", "liar")),
        ("stupid idea from a stupid man", ("stupid",)),
        ("thanks for the report", ()),
        ("the idiot said so", ("idiot",)),
        ("what an idiot", ("idiot",)),
        ("a stupid plan", ("stupid",)),
        ("nice day", ()),
    ]
    for name, chosen in (("tsd_train.csv", posts), ("tsd_trial.csv", posts[:4]), ("tsd_test.csv", posts[2:])):  # fmt: skip
        with (folder / name).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["spans", "text"])
            for text, toxic in chosen:
                writer.writerow([str(list(_chars(text, *toxic)) if toxic else []), text])
    return tmp_path / "data"


def test_span_benchmark_on_a_tiny_model(span_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    spans = load_benchmark("spans")
    root = _span_root(tmp_path)
    results = spans.run(str(span_folder), "torch", None, 50, str(root))
    systems = results["systems"]
    assert list(systems) == [
        "model spans", "lexicon (tsd_train precision)", "attribution (grad x input)",
        "random words (p = 0.5)",
    ]  # fmt: skip
    test = read_tsd(root / "toxic_spans" / "tsd_test.csv")
    assert results["test_posts"] == 5 and systems["model spans"]["n"] == 5
    assert systems["model spans"]["f1"] == pytest.approx(_expected_span_f1(span_folder, test))
    assert systems["model spans"]["threshold"] == 0.5
    lexicon = systems["lexicon (tsd_train precision)"]
    # "idiot" is always marked in train and "stupid" two times in three: the lexicon tuned
    # on trial keeps both, and on the test posts marks exactly the gold
    assert set(lexicon["top_words"]) >= {"idiot", "stupid"}
    assert lexicon["f1"] == pytest.approx(1.0) and lexicon["no_gold"]["empty_share"] == 1.0
    assert lexicon["vs_model"]["difference"] == pytest.approx(1.0 - systems["model spans"]["f1"])
    assert 0.0 <= systems["attribution (grad x input)"]["f1"] <= 1.0
    assert results["speed"]["comments"] == 5 and results["speed"]["ratio"] > 0
    spans.print_table(results)
    printed = capsys.readouterr().out
    assert "published best: HITSZ-HLT" in printed and "0.7083" in printed
    assert "comments/s with spans" in printed


def _c3_root(tmp_path: Path) -> Path:
    """A data root with a synthetic C3: long comments with evidence are constructive,
    short insults are not, over enough articles that every split has both."""
    folder = tmp_path / "data" / "c3"
    folder.mkdir(parents=True)
    header = ["article_id", "comment_counter", "comment_text", "crowd_toxicity_level",
              "njudgements_toxicity_expt", "toxicity_characteristics", "constructive",
              "constructive_binary", "njudgements_constructiveness_expt",
              "constructive_characteristics"]  # fmt: skip
    rng = np.random.default_rng(0)
    with (folder / "C3_anonymized.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for article in range(60):
            for k in range(4):
                good = k % 2 == 0
                words_ = rng.integers(12, 40) if good else rng.integers(2, 6)
                text = (
                    " ".join(
                        ["the report says the budget figures do not add up"] * (words_ // 10 + 1)
                    )
                    if good
                    else " ".join(["stupid idiot"] * int(words_))
                )
                share = (
                    float(rng.choice([0.6, 0.8, 1.0])) if good else float(rng.choice([0.0, 0.2]))
                )
                chars = "evidence:3\nspecific_points:2" if good and k == 0 else "no_con:5"
                writer.writerow([str(1000 + article), f"s_{article}_{k}", text, "1.0", "5.0",
                                 "no_toxic:5", str(share), str(float(share > 0.5)), "5.0", chars])  # fmt: skip
    return tmp_path / "data"


def test_constructive_benchmark_on_a_tiny_model(span_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    constructive = load_benchmark("constructive")
    root = _c3_root(tmp_path)
    results = constructive.run(str(span_folder), "torch", 50, str(root))
    scorers = results["scorers"]
    assert list(scorers) == ["model", "TF-IDF + LR (C3 train)", "length only (LR on log chars)"]
    from training.corpora import load_corpus

    test = load_corpus("c3", root, split="test")
    y = (np.asarray(test["constructive"]) > 0.5).astype(int)
    assert 0 < y.sum() < len(y) and results["rows"]["test"] == len(test)
    predictor = load_predictor(span_folder, backend="torch")
    assert predictor.comment_model is not None
    found = predictor.comment_model.comment_scores(list(test["text"]), spans=False).constructive
    assert found is not None
    assert scorers["model"]["auc"]["roc_auc"] == pytest.approx(roc_auc_score(y, found[:, 0]))
    # the length baseline ranks by length: long comments are the constructive ones here
    lengths = [len(t) for t in test["text"]]
    assert scorers["length only (LR on log chars)"]["auc"]["roc_auc"] == pytest.approx(roc_auc_score(y, lengths))  # fmt: skip
    assert scorers["TF-IDF + LR (C3 train)"]["auc"]["roc_auc"] == pytest.approx(1.0)
    assert results["characteristic_rules"] == {"evidence": "> 0"}  # the tiny head has evidence only
    assert list(scorers["model"]["characteristics"]) == ["evidence"]
    assert len(scorers["model"]["length_buckets"]) == 3
    tuned = scorers["model"]["at_dev_threshold"]
    assert 0 < tuned["threshold"] < 1 and tuned["f1_ci"][0] <= tuned["f1_ci"][1]
    assert "auc_vs_model" in scorers["TF-IDF + LR (C3 train)"]
    constructive.print_table(results)
    printed = capsys.readouterr().out
    assert "Kolhatkar et al. 2020" in printed and "ROC-AUC per characteristic" in printed
    json.dumps(constructive._without_samples(results))  # the --json output is plain JSON


# --------------------------------------------------------------------------- evaluate


def test_evaluate_spans_reads_the_official_gold() -> None:
    texts = ["Have a nice day, neighbour.", "Those people are vermin, damn them."]
    predicted = [[], [{"start": 0, "end": 12, "label": "toxicity", "score": 0.9}]]
    found = evaluate_spans(["103", "104"], texts, predicted, "test", FIXTURES, 0)
    assert found["n"] == 1 and found["gold"] == "tsd_test.csv"  # the other text is not in it
    assert found["f1"] == pytest.approx(2 * 12 / (12 + 24))
    (example,) = found["examples"]
    assert example["predicted"] == [[0, 12, "toxicity"]] and example["gold"] == [[0, 24]]
    assert "skipped" in evaluate_spans(["x"], ["x"], [[]], "test", Path("/nonexistent"), 0)


def test_highlight_bolds_ranges_and_escapes_markdown() -> None:
    text = "you *are* an idiot_ and a liar"
    assert (
        highlight(text, [[12, 19], [25, 30]]) == r"you \*are\* an <b>idiot\_</b> and a <b>liar</b>"
    )
    assert highlight("so, idiot", [[2, 9]]) == "so<b>, idiot</b>"
    assert highlight("a b", []) == "a b"


def test_evaluate_reports_spans_and_constructiveness(
    span_folder: Path, tiny_model: ThreadguardModel, tmp_path: Path
) -> None:
    plain = tiny_model.save_pretrained(tmp_path / "plain", mode="full")
    out = tmp_path / "report"
    args = ["evaluate", "--model", str(span_folder), "--model", str(plain), "--model",
            "baseline:majority", "--dataset", "toxic_spans", "--dataset", "toxic_spans:dev",
            "--dataset", "c3:train", "--data-root", str(FIXTURES), "--report", str(out),
            "--bootstrap", "30"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    by = {(r["model"], r["dataset"]): r for r in report["results"]}
    spans = by[("model", "toxic_spans:test")]["spans"]
    post = "Those people are vermin, damn them."
    assert spans["n"] == 1 and spans["gold"] == "tsd_test.csv"
    assert spans["f1"] == pytest.approx(_expected_span_f1(span_folder, [GoldPost(post, tuple(range(24)))]))  # fmt: skip
    assert spans["examples"][0]["gold"] == [[0, 24]]
    dev = by[("model", "toxic_spans:dev")]["spans"]
    assert dev["n"] == 1 and dev["no_gold"]["n"] == 1  # "I will find you, you moron.": no gold
    constructive = by[("model", "c3:train")]["constructive"]
    assert constructive["constructive_binary"]["n"] == 2
    assert constructive["constructive_binary"]["positives"] == 1
    assert set(constructive["characteristics"]) == {"evidence"}
    for name in ("plain", "baseline:majority"):  # no heads: the results are as they were
        for dataset in ("toxic_spans:test", "c3:train"):
            assert "spans" not in by[(name, dataset)] and "constructive" not in by[(name, dataset)]
    md = (out / "report.md").read_text()
    assert "### Toxic spans" in md and "### Constructiveness" in md
    assert "<b>Those people are vermin,</b> damn them." in md  # the gold span, highlighted
    assert "span F1" in md and "constructive AUC" in md
