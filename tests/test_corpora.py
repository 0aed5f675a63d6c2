"""Tests for the corpus adapters (training.corpora).

Fast tests read the small invented fixtures in tests/fixtures/corpora/<folder>/,
written in each corpus's official layout with a few deliberately broken rows.
Tests marked ``slow`` read the real corpora from the data root
(``$THREADGUARD_DATA`` or ../shared/data) and skip when a corpus is absent.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import datasets
import pytest

from classifier.labels import STANCE_LABELS, TOXICITY_LABELS
from training.corpora import (
    CORPORA,
    DATA_ENV,
    CorpusLoad,
    civil_comments_identities,
    corpus_folder,
    default_data_root,
    hash_fraction,
    hash_split,
    load_corpus,
    load_toxic_spans_spans,
    madlibs_identity_terms,
    read_corpus,
)
from training.data import FEATURES, UNKNOWN

FIXTURES = Path(__file__).parent / "fixtures" / "corpora"
TOX = set(TOXICITY_LABELS)
OFFENSE = TOX - {"spam"}

#: The toxicity labels each corpus annotates; all others must be UNKNOWN.
ANNOTATED: dict[str, set[str]] = {
    "rumoureval2019": set(),
    "fnc1": set(),
    "arc": set(),
    "semeval2016_stance": set(),
    "olid": OFFENSE,
    "davidson": {"toxicity", "identity_attack"},
    "hateval2019": {"toxicity", "identity_attack"},
    "youtube_spam": {"spam"},
    "toxic_spans": {
        "toxicity",
        "severe_toxicity",
        "obscene",
        "threat",
        "insult",
        "identity_attack",
    },
    "hatexplain": {"toxicity", "identity_attack"},
    "c3": {"toxicity", "severe_toxicity", "insult"},
    "context_toxicity": {"toxicity"},
    "context_toxicity_gn": {"toxicity"},
    "ethos": {"toxicity", "identity_attack", "threat"},
    "news_threats": OFFENSE,
    "gab_hate": {"toxicity", "severe_toxicity", "threat", "identity_attack"},
    "contrast": TOX,  # v0.6.1: its spam kind says spam
    "bias_madlibs": {"toxicity"},
    "jigsaw2018": OFFENSE,
    "civil_comments": OFFENSE,
}

#: Split sizes of each fixture corpus and the malformed rows planted in it.
FIXTURE_SIZES: dict[str, tuple[dict[str, int], int]] = {
    "rumoureval2019": ({"train": 7, "dev": 4, "test": 4}, 3),
    "fnc1": ({"train": 4, "dev": 1, "test": 3}, 2),
    "arc": ({"train": 3, "dev": 1, "test": 2}, 0),
    "semeval2016_stance": ({"train": 5, "dev": 2, "test": 2}, 1),
    "olid": ({"train": 2, "dev": 2, "test": 2}, 3),
    "davidson": ({"train": 2, "dev": 1, "test": 1}, 1),
    "hateval2019": ({"train": 2, "dev": 1, "test": 2}, 2),
    "youtube_spam": ({"train": 5, "dev": 2, "test": 2}, 1),
    "toxic_spans": ({"train": 1, "dev": 1, "test": 3}, 5),
    "hatexplain": ({"train": 3, "dev": 1, "test": 1}, 2),
    "c3": ({"train": 2, "dev": 1, "test": 1}, 1),
    "context_toxicity": ({"train": 1, "dev": 1, "test": 1}, 1),
    "context_toxicity_gn": ({"train": 2}, 0),
    "ethos": ({"train": 4}, 1),
    "news_threats": ({"train": 6}, 2),
    "gab_hate": ({"train": 3, "dev": 1, "test": 2}, 1),
    "contrast": ({"train": 1379, "dev": 593}, 0),
    "bias_madlibs": ({"test": 7}, 1),
    "jigsaw2018": ({"train": 2, "dev": 1, "test": 2}, 1),
    "civil_comments": ({"train": 2, "dev": 1, "test": 1}, 1),
}


def fixture(name: str, **options: Any) -> CorpusLoad:
    return read_corpus(name, FIXTURES, **options)


def by_id(load: CorpusLoad) -> dict[str, dict[str, Any]]:
    return {row["id"]: row for rows in load.splits.values() for row in rows}


def labels(row: dict[str, Any]) -> dict[str, float]:
    """The known toxicity labels of a row."""
    return {k: row[k] for k in TOXICITY_LABELS if row[k] != UNKNOWN}


def stance(row: dict[str, Any]) -> str | None:
    return STANCE_LABELS[row["stance"]] if row["stance"] >= 0 else None


# --------------------------------------------------------------------------- every adapter


def test_registry_covers_every_fixture() -> None:
    assert set(CORPORA) == set(ANNOTATED) == set(FIXTURE_SIZES)
    for spec in CORPORA.values():
        assert (FIXTURES / spec.folder).is_dir(), spec.name
        assert spec.description and spec.task in ("stance", "toxicity")
    assert [n for n, s in CORPORA.items() if s.eval_only] == ["bias_madlibs"]


@pytest.mark.parametrize("name", sorted(CORPORA))
def test_fixture_common_format(name: str) -> None:
    loaded = load_corpus(name, FIXTURES)
    assert isinstance(loaded, datasets.DatasetDict)
    sizes, n_skipped = FIXTURE_SIZES[name]
    assert {split: len(ds) for split, ds in loaded.items()} == sizes
    assert fixture(name).n_skipped == n_skipped
    ids: list[str] = []
    for split, ds in loaded.items():
        assert ds.features == FEATURES
        for row in ds:
            ids.append(row["id"])
            assert row["source"] == name and row["split"] == split
            assert row["text"].strip()
            for label in TOXICITY_LABELS:
                value = row[label]
                if label in ANNOTATED[name]:
                    assert value == UNKNOWN or 0.0 <= value <= 1.0
                else:
                    assert value == UNKNOWN, (label, row)
            if CORPORA[name].task == "stance":
                assert row["target"] and row["stance_classes"]
                assert stance(row) in row["stance_classes"]
            else:
                assert row["stance"] == -1 and row["stance_classes"] == []
    assert len(ids) == len(set(ids)), "ids must be unique within a corpus"


def test_bad_row_is_logged_with_file_and_row(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="training.corpora"):
        load = fixture("davidson")
    assert load.skipped == Counter({str(FIXTURES / "davidson" / "labeled_data.csv"): 1})
    warning = next(r.getMessage() for r in caplog.records if "skipping" in r.getMessage())
    assert "labeled_data.csv" in warning and "row 4" in warning
    # the row after the bad one is still read
    assert "6" in by_id(load)


# --------------------------------------------------------------------------- registry and loading


def test_unknown_corpus_names_known_ones() -> None:
    with pytest.raises(ValueError, match=r"nope.*fnc1"):
        load_corpus("nope", FIXTURES)


def test_missing_folder_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "fnc1")):
        load_corpus("fnc1", tmp_path)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "ethos").mkdir()
    with pytest.raises(FileNotFoundError, match=r"Ethos_Dataset_Binary\.csv"):
        load_corpus("ethos", tmp_path)


def test_wrong_header_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "ethos").mkdir()
    (tmp_path / "ethos" / "Ethos_Dataset_Binary.csv").write_text("text;label\nhi;1\n")
    with pytest.raises(ValueError, match="missing column"):
        load_corpus("ethos", tmp_path)


def test_env_var_sets_the_data_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_ENV, str(FIXTURES))
    assert default_data_root() == FIXTURES
    assert corpus_folder("context_toxicity_gn") == FIXTURES / "context_toxicity"
    assert len(load_corpus("ethos", split="train")) == 4


def test_default_root_is_shared_data_next_to_the_project(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_ENV, raising=False)
    project = Path(__file__).resolve().parents[1]
    assert default_data_root() == project.parent / "shared" / "data"


def test_split_argument() -> None:
    test = load_corpus("fnc1", FIXTURES, split="test")
    assert isinstance(test, datasets.Dataset) and len(test) == 3
    with pytest.raises(ValueError, match="no 'train' split"):
        load_corpus("bias_madlibs", FIXTURES, split="train")
    with pytest.raises(ValueError, match="validation"):
        load_corpus("fnc1", FIXTURES, split="validation")


def test_hub_id_needs_a_hub_loader() -> None:
    with pytest.raises(ValueError, match="no Hub loader"):
        load_corpus("fnc1", hub_id="someone/fnc1")
    assert CORPORA["hateval2019"].hub_loader is not None


def test_hash_split_is_stable_and_proportional() -> None:
    # fixed values: the split of a key must never change across runs or machines
    assert hash_fraction("abc", "x") == pytest.approx(0.47108843514764603)
    assert [hash_split(str(i), salt="golden") for i in range(5)] == [
        "test",
        "train",
        "train",
        "test",
        "test",
    ]
    counts = Counter(hash_split(f"k{i}", dev=0.1, test=0.2) for i in range(20_000))
    assert counts["test"] / 20_000 == pytest.approx(0.2, abs=0.015)
    assert counts["dev"] / 20_000 == pytest.approx(0.1, abs=0.015)
    assert "test" not in Counter(hash_split(f"k{i}", test=0.0) for i in range(1000))


# --------------------------------------------------------------------------- stance corpora


def test_rumoureval_targets_context_and_platform() -> None:
    load = fixture("rumoureval2019")
    rows = by_id(load)
    source = rows["twitter:1001"]
    assert source["target"] == source["text"] and source["context"] == ""
    assert "&amp;" not in source["text"] and "& roads" in source["text"]
    # a direct reply: target = the source, no extra context
    assert rows["twitter:1002"]["target"] == source["text"]
    assert rows["twitter:1002"]["context"] == ""
    # a reply to a reply: target = its parent, context = the source post
    assert rows["twitter:1003"]["target"] == rows["twitter:1002"]["text"]
    assert rows["twitter:1003"]["context"] == source["text"]
    assert stance(rows["twitter:1003"]) == "deny" and rows["twitter:1003"]["group"] == "1001"
    # Reddit: submission = title + self-text, comment bodies unescaped
    assert rows["reddit:abc123"]["text"].startswith("Is it true that cats can see ghosts?\n\n")
    assert rows["reddit:c1"]["text"] == "No, that is a myth > trust me"
    assert rows["reddit:c1"]["target"] == rows["reddit:abc123"]["text"]
    assert "reddit:c2" not in rows  # a "more" stub has no text
    assert load.notes["labelled Reddit 'more' stubs without text, dropped"] == 1
    # test threads duplicated in twitter-eval-data are read once
    assert [r["id"] for r in load.splits["test"]].count("twitter:3001") == 1
    assert rows["reddit:g1"]["split"] == "test"
    assert rows["twitter:1001"]["stance_classes"] == ["support", "deny", "query", "comment"]


@pytest.mark.parametrize("name", ["fnc1", "arc"])
def test_fnc_format(name: str) -> None:
    load = fixture(name)
    train_bodies = {r["group"] for r in load.splits["train"]}
    dev_bodies = {r["group"] for r in load.splits["dev"]}
    assert dev_bodies and not train_bodies & dev_bodies
    for row in by_id(load).values():
        assert row["stance_classes"] == ["support", "deny", "comment", "unrelated"]
    first = by_id(load)["train-1"]
    if name == "fnc1":
        assert first["target"] == "Council approves tree planting"
        assert first["text"].endswith("Work starts in spring.")  # body kept whole
        assert stance(first) == "support" and first["group"] == "1"
        got = [stance(r) for r in load.splits["test"]]
        assert got == ["support", "deny", "unrelated"]
    else:
        assert first["target"] == "We don't need to hear from candidate's spouse"
        assert first["text"].startswith("Honestly, spouses")
        assert [stance(r) for r in load.splits["train"]] == ["deny", "comment", "unrelated"]


def test_semeval2016_targets_and_labels() -> None:
    rows = by_id(fixture("semeval2016_stance"))
    assert rows["abortion-train-1"]["target"] == "Legalization of Abortion"
    assert rows["hillary-train-1"]["target"] == "Hillary Clinton"
    assert rows["abortion-train-1"]["text"] == "Every life deserves protection #SemST"
    assert [stance(rows[f"abortion-train-{i}"]) for i in (1, 2, 3)] == [
        "deny",
        "support",
        "comment",
    ]
    assert rows["hillary-dev-1"]["split"] == "dev" and rows["hillary-dev-1"]["group"] == "hillary"
    assert rows["abortion-train-1"]["stance_classes"] == ["support", "deny", "comment"]


# --------------------------------------------------------------------------- toxicity corpora


def test_olid_levels() -> None:
    rows = by_id(fixture("olid"))
    assert labels(rows["14"]) == dict.fromkeys(OFFENSE, 0.0)  # NOT decides every offense label
    assert rows["14"]["text"] == '@USER what a wonderful "idea" & plan'
    assert labels(rows["20"]) == {"toxicity": 1.0, "insult": 1.0}  # TIN: threat unknown
    assert labels(rows["21"]) == {
        "toxicity": 1.0,
        "insult": 0.0,
        "threat": 0.0,
        "identity_attack": 0.0,
    }
    assert labels(rows["26"]) == {"toxicity": 1.0, "insult": 1.0}  # GRP: identity unknown
    assert labels(rows["15923"]) == {"toxicity": 1.0, "insult": 1.0}
    assert rows["15923"]["split"] == rows["27014"]["split"] == "test"
    assert {rows[i]["split"] for i in ("14", "20", "21", "26")} == {"train", "dev"}


def test_davidson_soft_and_hard() -> None:
    rows = by_id(fixture("davidson"))
    assert labels(rows["2"]) == pytest.approx({"toxicity": 1.0, "identity_attack": 4 / 6})
    assert labels(rows["6"]) == pytest.approx({"toxicity": 2 / 3, "identity_attack": 1 / 3})
    assert rows["0"]["text"] == "RT @user: lovely weather for a picnic & a nap"
    hard = by_id(fixture("davidson", soft=False))
    assert labels(hard["2"]) == {"toxicity": 1.0, "identity_attack": 1.0}
    assert labels(hard["6"]) == {"toxicity": 1.0, "identity_attack": 0.0}
    assert labels(hard["0"]) == {"toxicity": 0.0, "identity_attack": 0.0}


def test_hateval_leaves_toxicity_unknown_for_not_hate() -> None:
    rows = by_id(fixture("hateval2019"))
    assert labels(rows["train-1"]) == {"toxicity": 1.0, "identity_attack": 1.0}
    assert labels(rows["train-2"]) == {"identity_attack": 0.0}
    assert rows["test-1"]["text"] == "I met a great refugee chef today & ate well"


def test_youtube_split_by_video() -> None:
    load = fixture("youtube_spam")
    videos = {s: {r["group"] for r in rows} for s, rows in load.splits.items()}
    assert videos == {
        "train": {"Youtube01-Psy", "Youtube02-KatyPerry", "Youtube03-LMFAO"},
        "dev": {"Youtube04-Eminem"},
        "test": {"Youtube05-Shakira"},
    }
    rows = by_id(load)
    assert labels(rows["Youtube01:a1"]) == {"spam": 1.0}
    assert rows["Youtube05:e1"]["text"] == "Nice song"  # BOM character removed
    assert "Youtube04:d1#2" in rows  # a repeated comment id is made unique
    other = fixture("youtube_spam", test_video="Youtube01", dev_video="Youtube02")
    assert {r["group"] for r in other.splits["test"]} == {"Youtube01-Psy"}


def test_toxic_spans_soft_labels_and_splits() -> None:
    load = fixture("toxic_spans")
    rows = by_id(load)
    third, two_thirds = pytest.approx(1 / 3), pytest.approx(2 / 3)
    assert labels(rows["101"]) == {
        "toxicity": two_thirds,  # one of three ticked "not toxic"
        "insult": two_thirds,  # "Insu" is a truncated "Insult"
        "obscene": 0.0,
        "threat": 0.0,
        "identity_attack": 0.0,
        "severe_toxicity": 0.0,  # toxic, but no severe kind of span
    }
    assert rows["102"]["threat"] == third and rows["102"]["insult"] == two_thirds
    assert rows["104"]["identity_attack"] == two_thirds and rows["104"]["obscene"] == third
    assert labels(rows["103"])["toxicity"] == 0.0
    # split from the SemEval task files (trial -> dev; in trial and test -> test)
    assert [rows[i]["split"] for i in ("101", "102", "104")] == ["train", "dev", "test"]
    # comments outside the task files: hashed by text, so duplicates stay together
    assert rows["103"]["split"] == rows["105"]["split"]


def test_toxic_spans_spans() -> None:
    spans = load_toxic_spans_spans(FIXTURES)
    assert sum(map(len, spans.values())) == 11  # 13 rows less 2 malformed
    text = by_id(fixture("toxic_spans"))["101"]["text"]
    first = spans["101"][0]
    assert (first.start, first.end, first.type, first.annotation) == (11, 16, "Insult", "0")
    assert text[first.start : first.end] == "idiot"
    assert {s.type for s in spans["104"]} == {
        "Identity based Attack",
        "Profane/Obscene",
        "Other Toxicity",
        "",
    }


def test_hatexplain_majority() -> None:
    load = fixture("hatexplain")
    rows = by_id(load)
    assert labels(rows["train-1"]) == {"toxicity": 1.0, "identity_attack": 1.0}  # hate
    assert labels(rows["train-2"]) == {"toxicity": 0.0, "identity_attack": 0.0}  # normal
    assert labels(rows["train-3"]) == {"toxicity": 1.0, "identity_attack": 0.0}  # offensive
    assert rows["10_twitter"]["text"] == "<user> you are pathetic"
    assert rows["10_twitter"]["split"] == "dev"
    assert "21_twitter" not in rows  # labels 0, 1, 2: no majority


def test_context_toxicity_parent_is_target() -> None:
    rows = by_id(fixture("context_toxicity"))
    assert rows["c2"]["target"] == "I rewrote the lead section."
    assert labels(rows["c2"]) == {"toxicity": 1.0}
    gn = by_id(fixture("context_toxicity_gn"))
    assert gn["n1"]["target"] == "" and labels(gn["n1"]) == {"toxicity": 1.0}


def test_ethos_soft_identity_attack() -> None:
    rows = by_id(fixture("ethos"))
    # row 1 is in the multi-label file, whose violence share (0) becomes its threat
    assert labels(rows["1"]) == {"toxicity": 1.0, "identity_attack": 1.0, "threat": 0.0}
    assert labels(rows["3"]) == {"toxicity": 1.0, "identity_attack": 0.5}
    assert labels(rows["4"]) == {"identity_attack": pytest.approx(1 / 6)}  # toxicity unknown


def test_bias_madlibs_terms() -> None:
    load = fixture("bias_madlibs")
    assert set(load.splits) == {"test"}
    rows = by_id(load)
    assert labels(rows["verb_adj-1"]) == {"toxicity": 1.0}
    assert labels(rows["verb_adj-2"]) == {"toxicity": 0.0}
    terms = madlibs_identity_terms(FIXTURES)
    assert terms == {
        "verb_adj-1": "american",
        "verb_adj-2": "middle eastern",
        "being_adj-3": "african american",
        "you_are_adj-4": "queer",
        "name_adj-5": "trans",
        "am_hate_adj-6": "muslim",
    }
    assert all(rows[i]["group"] == t for i, t in terms.items())
    with_jobs = madlibs_identity_terms(FIXTURES, include_occupations=True)
    assert with_jobs["you_occupation-7"] == "fire fighter"


def test_jigsaw2018() -> None:
    load = fixture("jigsaw2018")
    rows = by_id(load)
    assert labels(rows["0002a1b2c3d4e5f6"]) == {
        "toxicity": 1.0,
        "severe_toxicity": 1.0,
        "obscene": 0.0,
        "threat": 1.0,
        "insult": 1.0,
        "identity_attack": 0.0,
    }
    assert (
        rows["0002a1b2c3d4e5f6"]["split"] == "dev" and rows["0000a1b2c3d4e5f6"]["split"] == "train"
    )
    assert "t3" not in rows and load.notes["unscored test rows (-1) dropped"] == 1
    assert labels(rows["t2"])["insult"] == 1.0


def test_civil_comments_kaggle_layout() -> None:
    rows = by_id(fixture("civil_comments"))
    assert labels(rows["59849"]) == pytest.approx(
        {
            "toxicity": 0.8,
            "severe_toxicity": 0.1,
            "obscene": 0.0,
            "threat": 0.0,
            "insult": 0.8,
            "identity_attack": 0.0,
        }
    )
    assert rows["59849"]["target"] == "This is so cool. Great reporting."  # parent comment
    assert rows["59849"]["group"] == "2006"
    assert (rows["7000000"]["split"], rows["7000001"]["split"]) == ("dev", "test")
    assert rows["7000001"]["target"] == "Muslims are welcome in our town."
    identities = civil_comments_identities(FIXTURES)
    assert set(identities) == {"59849", "7000000"}
    assert identities["7000000"]["muslim"] == 1.0


def test_civil_comments_all_data_layout(tmp_path: Path) -> None:
    folder = tmp_path / "civil_comments"
    folder.mkdir()
    header = "id,comment_text,split,toxicity,severe_toxicity,obscene,threat,insult,identity_attack,parent_id,article_id"
    lines = [
        header,
        "1.0,Fine point.,train,0.0,0.0,0.0,0.0,0.0,0.0,,5",
        '2.0,"No, you are a fool.",test_public,0.7,0.0,0.0,0.0,0.6,0.0,1.0,5',
        "3.0,See above.,test_private,0.1,,,,,,,6",
        "4.0,Odd split.,validation,0.1,0.0,0.0,0.0,0.0,0.0,,6",
    ]
    (folder / "all_data.csv").write_text("\n".join(lines) + "\n")
    load = read_corpus("civil_comments", tmp_path)
    rows = by_id(load)
    assert {i: r["split"] for i, r in rows.items()} == {"1": "train", "2": "dev", "3": "test"}
    assert rows["2"]["target"] == "Fine point."
    assert labels(rows["3"]) == {"toxicity": pytest.approx(0.1)}  # blank subtypes unknown
    assert load.n_skipped == 1


# --------------------------------------------------------------------------- real corpora (slow)

DATA = default_data_root()


def real(name: str) -> CorpusLoad:
    """Load ``name`` from the data root, or skip when that corpus is not there."""
    folder = corpus_folder(name, DATA)
    if not folder.is_dir():
        pytest.skip(f"{folder} not present")
    return read_corpus(name, DATA)


def sizes(load: CorpusLoad) -> dict[str, int]:
    return {split: len(rows) for split, rows in load.splits.items()}


def stance_counts(load: CorpusLoad) -> dict[str, dict[str | None, int]]:
    return {s: dict(Counter(stance(r) for r in rows)) for s, rows in load.splits.items()}


def positives(load: CorpusLoad, label: str) -> dict[str, int]:
    """Rows per split whose ``label`` is known and >= 0.5."""
    return {s: sum(r[label] >= 0.5 for r in rows) for s, rows in load.splits.items()}


def known(load: CorpusLoad, label: str) -> dict[str, int]:
    return {s: sum(r[label] != UNKNOWN for r in rows) for s, rows in load.splits.items()}


@pytest.mark.slow
def test_real_rumoureval2019() -> None:
    import json

    load = real("rumoureval2019")
    folder = corpus_folder("rumoureval2019", DATA)
    keys = [
        "rumoureval-2019-training-data/train-key.json",
        "rumoureval-2019-training-data/dev-key.json",
        "final-eval-key.json",
    ]
    # README: train 5,217 / dev 1,485 / test 1,827 labelled posts
    n_keys = [len(json.loads((folder / k).read_text())["subtaskaenglish"]) for k in keys]
    assert n_keys == [5217, 1485, 1827]
    # measured: 90 labelled Reddit posts (12 / 7 / 71, all "comment") exist only as
    # "more" stubs without text, so 5,205 / 1,478 / 1,756 examples
    assert load.notes["labelled Reddit 'more' stubs without text, dropped"] == 90
    assert load.n_skipped == 0
    assert sizes(load) == {"train": 5205, "dev": 1478, "test": 1756}
    assert stance_counts(load) == {
        "train": {"comment": 3507, "support": 925, "deny": 378, "query": 395},
        "dev": {"comment": 1174, "support": 102, "deny": 82, "query": 120},
        "test": {"comment": 1405, "support": 157, "deny": 101, "query": 93},
    }
    platforms = Counter(r["id"].split(":")[0] for rows in load.splits.values() for r in rows)
    assert set(platforms) == {"twitter", "reddit"}


@pytest.mark.slow
def test_real_fnc1() -> None:
    load = real("fnc1")
    # README: 49,972 train pairs over 1,683 bodies; 25,413 test pairs
    n = sizes(load)
    assert n["train"] + n["dev"] == 49972 and n["test"] == 25413
    assert n == {"train": 45103, "dev": 4869, "test": 25413}  # measured holdout
    bodies = {s: {r["group"] for r in rows} for s, rows in load.splits.items()}
    assert len(bodies["train"] | bodies["dev"]) == 1683
    assert not bodies["train"] & bodies["dev"]
    assert stance_counts(load)["test"] == {
        "unrelated": 18349,
        "comment": 4464,
        "support": 1903,
        "deny": 697,
    }


@pytest.mark.slow
def test_real_arc() -> None:
    load = real("arc")
    n = sizes(load)
    assert n["train"] + n["dev"] == 14233 and n["test"] == 3559  # README
    assert n == {"train": 12746, "dev": 1487, "test": 3559}  # measured holdout
    train_bodies = {r["group"] for r in load.splits["train"]}
    assert not train_bodies & {r["group"] for r in load.splits["dev"]}
    assert stance_counts(load)["test"] == {
        "unrelated": 2674,
        "deny": 372,
        "support": 334,
        "comment": 179,
    }


@pytest.mark.slow
def test_real_semeval2016_stance() -> None:
    load = real("semeval2016_stance")
    assert sizes(load) == {"train": 2620, "dev": 294, "test": 1249}  # README
    assert stance_counts(load)["test"] == {"deny": 715, "support": 304, "comment": 230}
    targets = {r["target"] for rows in load.splits.values() for r in rows}
    assert len(targets) == 5 and "Climate Change is a Real Concern" in targets


@pytest.mark.slow
def test_real_olid() -> None:
    load = real("olid")
    n = sizes(load)
    assert n["train"] + n["dev"] == 13240 and n["test"] == 860  # README
    off = positives(load, "toxicity")
    assert off["train"] + off["dev"] == 4400 and off["test"] == 240  # OFF (measured)
    tin = positives(load, "insult")
    assert tin["train"] + tin["dev"] == 3876 and tin["test"] == 213  # TIN (measured)


@pytest.mark.slow
def test_real_davidson() -> None:
    load = real("davidson")
    n = sizes(load)
    assert sum(n.values()) == 24783  # README
    assert n == {"train": 19907, "dev": 2436, "test": 2440}  # measured 80/10/10
    hard = read_corpus("davidson", DATA, soft=False)
    # class counts in labeled_data.csv (measured): 1,430 hate, 19,190 offensive
    assert sum(positives(hard, "identity_attack").values()) == 1430
    assert sum(positives(hard, "toxicity").values()) == 1430 + 19190


@pytest.mark.slow
def test_real_hateval2019() -> None:
    load = real("hateval2019")
    # README: 9,000 / 1,000 / 2,970 lines; 7 train lines and 1 val line have an
    # empty text in this release and are skipped (measured)
    assert load.n_skipped == 8
    assert sizes(load) == {"train": 8993, "dev": 999, "test": 2970}
    assert positives(load, "identity_attack") == {"train": 3783, "dev": 427, "test": 1252}
    assert known(load, "toxicity") == positives(load, "identity_attack")


@pytest.mark.slow
def test_real_youtube_spam() -> None:
    load = real("youtube_spam")
    assert sum(sizes(load).values()) == 1956  # README
    assert sum(positives(load, "spam").values()) == 1005  # README
    assert sizes(load) == {"train": 1138, "dev": 448, "test": 370}


@pytest.mark.slow
def test_real_toxic_spans() -> None:
    from training.corpora import jigsaw
    from training.corpora._common import Collector

    load = real("toxic_spans")
    folder = corpus_folder("toxic_spans", DATA)
    comments, judgements, spans = jigsaw.read_toxic_spans(folder, Collector("toxic_spans"))
    # README: 16,100 comments, 59,215 judgements, 46,784 spans
    assert len(comments) == 16100
    assert sum(map(len, judgements.values())) == 59215
    assert sum(map(len, spans.values())) == 46784
    assert load.n_skipped == 0
    assert sizes(load) == {"train": 12302, "dev": 1269, "test": 2529}  # measured
    # README: "about 4,800 comments are judged not toxic by most annotators"
    not_toxic = sum(r["toxicity"] < 0.5 for rows in load.splits.values() for r in rows)
    assert not_toxic == 4796


@pytest.mark.slow
def test_real_hatexplain() -> None:
    import json

    load = real("hatexplain")
    assert sizes(load) == {"train": 15383, "dev": 1922, "test": 1924}  # README
    divisions = json.loads(
        (corpus_folder("hatexplain", DATA) / "post_id_divisions.json").read_text()
    )
    assert {r["id"] for r in load.splits["test"]} == set(divisions["test"])
    # measured: hate 4,748 / 593 / 594; hate + offensive 9,132 / 1,141 / 1,142
    assert positives(load, "identity_attack") == {"train": 4748, "dev": 593, "test": 594}
    assert positives(load, "toxicity") == {"train": 9132, "dev": 1141, "test": 1142}


@pytest.mark.slow
def test_real_context_toxicity() -> None:
    gc = real("context_toxicity")
    gn = read_corpus("context_toxicity_gn", DATA)
    # README: 10,000 + 10,000, about 1-2 % toxic; measured 151 and 59 toxic
    assert sum(sizes(gc).values()) == sum(sizes(gn).values()) == 10000
    assert sum(positives(gc, "toxicity").values()) == 151
    assert sum(positives(gn, "toxicity").values()) == 59
    assert all(r["target"] for rows in gc.splits.values() for r in rows)


@pytest.mark.slow
def test_real_ethos() -> None:
    load = real("ethos")
    assert sum(sizes(load).values()) == 998  # README
    assert sum(positives(load, "identity_attack").values()) == 433  # README: 433 at >= 0.5
    assert sum(known(load, "toxicity").values()) == 433


@pytest.mark.slow
def test_real_bias_madlibs() -> None:
    load = real("bias_madlibs")
    assert sizes(load) == {"test": 76564}  # README
    assert positives(load, "toxicity") == {"test": 38282}  # measured: half BAD
    terms = madlibs_identity_terms(DATA)
    assert len(terms) == 76564 - 864  # measured: 864 you_occupation rows
    assert len(set(terms.values())) == 50  # measured: 50 identity terms


@pytest.mark.slow
@pytest.mark.parametrize("name", ["jigsaw2018", "civil_comments"])
def test_real_jigsaw_family_loads(name: str) -> None:
    # not shipped in ../shared/data; runs only when someone provides a copy
    load = real(name)
    assert load.splits["train"] and load.splits["test"]


def test_c3_labels_split_by_article() -> None:
    load = fixture("c3")
    rows = by_id(load)
    # level 1 -> 0, level 2.6 -> 0.8 (C3's toxic cut, level 2, sits at 0.5), 3+ -> 1
    # severe_toxicity: the scale's severe end, level 2 or less -> 0, 3 -> 0.5, 4 -> 1
    assert labels(rows["source1_a_1"]) == {"toxicity": 0.0, "severe_toxicity": 0.0, "insult": 0.0}
    assert labels(rows["source1_a_2"]) == pytest.approx(
        {"toxicity": 0.8, "severe_toxicity": 0.3, "insult": 0.8}
    )
    assert labels(rows["source1_c_1"])["toxicity"] == 1.0
    assert labels(rows["source1_c_1"])["insult"] == pytest.approx(0.4)
    # both comments of one article land in one split
    assert {r["id"] for r in load.splits["train"]} == {"source1_a_1", "source1_a_2"}
    assert rows["source1_a_1"]["group"] == rows["source1_a_2"]["group"]
    assert load.n_skipped == 1  # the rating of 5
