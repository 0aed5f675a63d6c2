"""Toxicity, hate-speech and spam corpora: OLID, Davidson, HatEval, YouTube spam,
HateXplain, context toxicity, ETHOS, bias madlibs.

Each corpus sets only the toxicity labels its annotation decides and leaves the
others unknown (``-1.0``): a tweet that is "not hate" may still be offensive, so
HatEval says nothing about ``toxicity`` for it. docs/corpora.md lists the choices.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import datasets

from classifier.labels import CONSTRUCTIVE_LABELS
from training.corpora._common import (
    HUB_SPLITS,
    TWEETEVAL_PARTS,
    Collector,
    clean_text,
    hash_split,
    lookup,
    parse_float,
    read_csv,
    read_lines,
    read_mapping,
    read_tweeteval,
)

# --------------------------------------------------------------------------- OLID

#: OLID level A "NOT" is defined as "no offense and no profanity of any kind",
#: which decides every offense label (spam stays unknown).
_OLID_NOT = {
    name: 0.0
    for name in ("toxicity", "severe_toxicity", "obscene", "threat", "insult", "identity_attack")
}


def olid_labels(level_a: str, level_b: str = "") -> dict[str, float]:
    """Our toxicity labels for one OLID post from its level A and level B labels.

    NOT → every offense label 0. OFF → toxicity 1, and from level B: TIN
    (targeted insult *or threat*, not separable) → insult 1 with threat and
    identity_attack unknown; UNT (untargeted, typically profanity) → insult,
    threat, identity_attack 0. Level C (IND/GRP/OTH) is not mapped: GRP mixes
    identity groups with political and other groups, so identity_attack stays
    unknown for every targeted post.
    """
    a, b = level_a.strip().upper(), level_b.strip().upper()
    if a == "NOT":
        return dict(_OLID_NOT)
    if a != "OFF":
        raise ValueError(f"unknown OLID level-A label {level_a!r}")
    labels = {"toxicity": 1.0}
    if b == "TIN":
        labels["insult"] = 1.0
    elif b == "UNT":
        labels.update(insult=0.0, threat=0.0, identity_attack=0.0)
    elif b not in ("", "NULL"):
        raise ValueError(f"unknown OLID level-B label {level_b!r}")
    return labels


def _olid_test_labels(path: Path) -> dict[str, str]:
    """``labels-level?.csv`` (``id,label`` rows, with or without a header) as a dict."""
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return {r[0].strip(): r[1].strip() for r in csv.reader(fh) if len(r) >= 2 and r[0] != "id"}


def load_olid(folder: Path, out: Collector) -> None:
    """OLID / OffensEval 2019: train = olid-training-v1.0.tsv less a seeded 10 % dev
    holdout (by tweet id); test = testset-levela.tsv with labels-level{a,b}.csv."""
    train = folder / "olid-training-v1.0.tsv"
    tsv: dict[str, Any] = {"delimiter": "\t", "quoting": csv.QUOTE_NONE}
    for n, rec in read_csv(train, out, required=("id", "tweet", "subtask_a", "subtask_b"), **tsv):
        with out.row(train, n):
            out.add(
                id=rec["id"].strip(),
                split=hash_split(rec["id"].strip(), dev=0.1, test=0.0, salt=out.corpus),
                text=clean_text(rec["tweet"]),
                toxicity=olid_labels(rec["subtask_a"], rec["subtask_b"]),
            )
    test = folder / "testset-levela.tsv"
    level_a = _olid_test_labels(folder / "labels-levela.csv")
    level_b = _olid_test_labels(folder / "labels-levelb.csv")
    if not level_a:
        raise FileNotFoundError(f"no level-A test labels in {folder / 'labels-levela.csv'}")
    for n, rec in read_csv(test, out, required=("id", "tweet"), **tsv):
        with out.row(test, n):
            tweet_id = rec["id"].strip()
            a = lookup(level_a, tweet_id, "test id (no level-A label)")
            out.add(
                id=tweet_id,
                split="test",
                text=clean_text(rec["tweet"]),
                toxicity=olid_labels(a, level_b.get(tweet_id, "")),
            )


# --------------------------------------------------------------------------- Davidson


def davidson_labels(
    count: float, hate: float, offensive: float, cls: int, *, soft: bool = True
) -> dict[str, float]:
    """Davidson et al. 2017 labels: toxicity = hate or offensive, identity_attack = hate.

    ``soft``: annotator fractions ((hate + offensive) / count, hate / count);
    otherwise the majority ``class`` (0 hate, 1 offensive, 2 neither) as 0/1.
    """
    if soft:
        if count <= 0:
            raise ValueError(f"annotator count {count} is not positive")
        return {"toxicity": (hate + offensive) / count, "identity_attack": hate / count}
    hard = {0: (1.0, 1.0), 1: (1.0, 0.0), 2: (0.0, 0.0)}
    toxicity, identity_attack = lookup(hard, cls, "class")
    return {"toxicity": toxicity, "identity_attack": identity_attack}


def load_davidson(folder: Path, out: Collector, *, soft: bool = True) -> None:
    """labeled_data.csv; no official split, so seeded 80/10/10 by row id."""
    path = folder / "labeled_data.csv"
    cols = ("count", "hate_speech", "offensive_language", "neither", "class", "tweet")
    for n, rec in read_csv(path, out, required=cols):
        with out.row(path, n):
            row_id = (rec.get("") or str(n - 1)).strip()
            labels = davidson_labels(
                parse_float(rec["count"], "count"),
                parse_float(rec["hate_speech"], "hate_speech"),
                parse_float(rec["offensive_language"], "offensive_language"),
                int(rec["class"]),
                soft=soft,
            )
            out.add(
                id=row_id,
                split=hash_split(row_id, salt=out.corpus),
                text=clean_text(rec["tweet"]),
                toxicity=labels,
            )


def hub_davidson(hub_id: str, out: Collector, *, soft: bool = True) -> None:
    """The same from the Hub (``tdavidson/hate_speech_offensive``: one ``train`` split)."""
    for part, dataset in datasets.load_dataset(hub_id).items():
        for i, rec in enumerate(dataset):
            with out.row(f"{hub_id}/{part}", i):
                labels = davidson_labels(
                    rec["count"],
                    rec["hate_speech_count"],
                    rec["offensive_language_count"],
                    int(rec["class"]),
                    soft=soft,
                )
                out.add(
                    id=str(i),
                    split=hash_split(str(i), salt=out.corpus),
                    text=clean_text(rec["tweet"]),
                    toxicity=labels,
                )


# --------------------------------------------------------------------------- HatEval 2019


def _hateval_example(out: Collector, split: str, n: int, text: str, name: str) -> None:
    """hate → identity_attack 1 and toxicity 1; not-hate → identity_attack 0 only
    (a tweet that is not hateful may still be offensive, so toxicity is unknown)."""
    labels = {
        "hate": {"identity_attack": 1.0, "toxicity": 1.0},
        "not-hate": {"identity_attack": 0.0},
    }
    out.add(
        id=f"{split}-{n}",
        split=split,
        text=clean_text(text),
        toxicity=lookup(labels, name, "label"),
    )


def load_hateval2019(folder: Path, out: Collector) -> None:
    """SemEval-2019 Task 5 English (TweetEval packaging); val → dev."""
    names = read_mapping(folder / "mapping.txt", {0: "not-hate", 1: "hate"})
    for part, split in TWEETEVAL_PARTS.items():
        for n, text, label in read_tweeteval(folder, part):
            with out.row(folder / f"{part}_labels.txt", n):
                _hateval_example(out, split, n, text, lookup(names, int(label), "label"))


def hub_hateval2019(hub_id: str, out: Collector) -> None:
    """The same from the Hub (``cardiffnlp/tweet_eval``, config ``hate``)."""
    for part, dataset in datasets.load_dataset(hub_id, "hate").items():
        for n, rec in enumerate(dataset, start=1):
            with out.row(f"{hub_id}/hate/{part}", n):
                name = lookup({0: "not-hate", 1: "hate"}, int(rec["label"]), "label")
                _hateval_example(out, HUB_SPLITS[part], n, rec["text"], name)


# --------------------------------------------------------------------------- YouTube spam


def load_youtube_spam(
    folder: Path, out: Collector, *, test_video: str = "Youtube05", dev_video: str = "Youtube04"
) -> None:
    """UCI YouTube Spam Collection, split BY VIDEO so that test comments come from an
    unseen video: test = Youtube05 (Shakira, ~19 %, the video nearest 20 %), dev =
    Youtube04 (Eminem), train = Youtube01-03. ``group`` = the file's video name."""
    files = sorted(folder.glob("Youtube*.csv"))
    if not files:
        raise FileNotFoundError(f"no Youtube*.csv files in {folder}")
    for path in files:
        video = path.stem.split("-")[0]
        split = "test" if video == test_video else "dev" if video == dev_video else "train"
        for n, rec in read_csv(path, out, required=("COMMENT_ID", "CONTENT", "CLASS")):
            with out.row(path, n):
                spam = lookup({"0": 0.0, "1": 1.0}, rec["CLASS"].strip(), "CLASS")
                out.add(
                    id=f"{video}:{rec['COMMENT_ID'].strip()}",
                    split=split,
                    group=path.stem,
                    text=clean_text(rec["CONTENT"]),
                    toxicity={"spam": spam},
                )


# --------------------------------------------------------------------------- HateXplain

#: HateXplain label → (toxicity, identity_attack). 0 hatespeech, 1 normal, 2 offensive.
_HATEXPLAIN = {0: (1.0, 1.0), 1: (0.0, 0.0), 2: (1.0, 0.0)}


def hatexplain_labels(annotator_labels: list[int]) -> dict[str, float]:
    """Majority of the annotators' labels mapped to toxicity / identity_attack.

    A post without a majority ("undecided" in the paper) raises ValueError and is
    skipped; the official divisions already leave those posts out.
    """
    (label, votes), *_ = Counter(annotator_labels).most_common(1)
    if votes * 2 <= len(annotator_labels):
        raise ValueError(f"no majority among annotator labels {annotator_labels}")
    toxicity, identity_attack = lookup(_HATEXPLAIN, label, "label")
    return {"toxicity": toxicity, "identity_attack": identity_attack}


def load_hatexplain(folder: Path, out: Collector) -> None:
    """HateXplain: train = training_data.csv (texts re-joined, no post ids, so ids are
    ``train-<row>``); dev/test = hatexplain_{validation,test}.json (post tokens joined
    with spaces, ids = post ids). Labels from the majority of the three annotators."""
    path = folder / "training_data.csv"
    for n, rec in read_csv(path, out, required=("text", "labels")):
        with out.row(path, n):
            labels = [int(x) for x in rec["labels"].split(",")]
            out.add(
                id=f"train-{n}",
                split="train",
                text=rec["text"].strip(),
                toxicity=hatexplain_labels(labels),
            )
    for split, name in (("dev", "hatexplain_validation.json"), ("test", "hatexplain_test.json")):
        path = folder / name
        for n, line in enumerate(read_lines(path), start=1):
            if not line.strip():
                continue
            with out.row(path, n):
                post = json.loads(line)
                out.add(
                    id=str(post["id"]),
                    split=split,
                    text=" ".join(post["post_tokens"]).strip(),
                    toxicity=hatexplain_labels([int(x) for x in post["annotators"]["label"]]),
                )


# --------------------------------------------------------------------------- context toxicity


def _load_context_file(folder: Path, out: Collector, name: str) -> None:
    """One file of Pavlopoulos et al. 2020 (id, text, parent, label, api): ``target`` =
    the parent comment (empty when the file has none), toxicity = label (0/1); seeded
    80/10/10 by comment id. ``api`` (a Perspective score) is ignored."""
    path = folder / name
    for n, rec in read_csv(path, out, required=("id", "text", "label")):
        with out.row(path, n):
            out.add(
                id=rec["id"].strip(),
                split=hash_split(rec["id"].strip(), salt="context_toxicity"),
                target=(rec.get("parent") or "").strip(),
                text=rec["text"].strip(),
                toxicity={"toxicity": lookup({"0": 0.0, "1": 1.0}, rec["label"].strip(), "label")},
            )


def load_context_toxicity(folder: Path, out: Collector) -> None:
    """gc.csv: Wikipedia talk comments annotated WITH the parent comment shown."""
    _load_context_file(folder, out, "gc.csv")


def load_context_toxicity_gn(folder: Path, out: Collector) -> None:
    """gn.csv: the same kind of comments annotated WITHOUT the parent (none in the file)."""
    _load_context_file(folder, out, "gn.csv")


# --------------------------------------------------------------------------- ETHOS


def _ethos_violence(folder: Path, out: Collector) -> dict[str, float]:
    """Text → the ``violence`` share of ETHOS's multi-label file (its hateful comments)."""
    path = folder / "Ethos_Dataset_Multi_Label.csv"
    violence: dict[str, float] = {}
    if not path.is_file():
        out.note("no multi-label file: threat left unknown")
        return violence
    for n, rec in read_csv(path, out, required=("comment", "violence"), delimiter=";"):
        with out.row(path, n):
            violence[rec["comment"].strip()] = parse_float(rec["violence"], "violence")
    return violence


def load_ethos(folder: Path, out: Collector) -> None:
    """ETHOS binary: identity_attack = isHate (fraction of annotators, soft); toxicity
    = 1 when isHate ≥ 0.5 (hate is toxic) and unknown below (a comment that is not
    hate may still be insulting or profane); threat = the multi-label file's
    ``violence`` share for the hateful comments it lists (unknown for the others).
    Seeded 80/10/10 by text."""
    violence = _ethos_violence(folder, out)
    path = folder / "Ethos_Dataset_Binary.csv"
    for n, rec in read_csv(path, out, required=("comment", "isHate"), delimiter=";"):
        with out.row(path, n):
            is_hate = parse_float(rec["isHate"], "isHate")
            labels = {"identity_attack": is_hate}
            if is_hate >= 0.5:
                labels["toxicity"] = 1.0
            text = rec["comment"].strip()
            if text in violence:
                labels["threat"] = violence[text]
            out.add(id=str(n), split=hash_split(text, salt=out.corpus), text=text, toxicity=labels)


# --------------------------------------------------------------------------- bias madlibs

_MADLIBS_PATTERNS = {
    "name_adj": re.compile(r"^.+? is an? \S+ (?P<term>.+)$"),
    "you_are_adj": re.compile(r"^You are an? \S+ (?P<term>.+)$"),
    "you_occupation": re.compile(r"^You are an? \S+ (?P<term>.+)$"),
    "being_adj": re.compile(r"^Being (?P<term>.+) is \S+\.$"),
    "verb_adj": re.compile(r"^\S+ (?P<term>.+)$"),
    "am_hate_adj": re.compile(r"^i (?:am|hate) (?P<term>.+)$"),
}


def madlibs_term(text: str, template: str) -> str:
    """The identity term of a bias-madlibs sentence (the occupation for the
    ``you_occupation`` template), lowercased; ``""`` when the template is unknown."""
    pattern = _MADLIBS_PATTERNS.get(template.strip())
    match = pattern.match(text.strip()) if pattern else None
    return match.group("term").strip().lower() if match else ""


def load_bias_madlibs(folder: Path, out: Collector) -> None:
    """Dixon et al. 2018 synthetic sentences, EVALUATION ONLY (test split): toxicity
    = 1 for BAD, 0 for NOT_BAD; ``group`` = the identity term (for subgroup AUC; the
    occupation for the ``you_occupation`` template); ``id`` = ``<template>-<row>``."""
    path = folder / "bias_madlibs_77k.csv"
    for n, rec in read_csv(path, out, required=("Text", "Label", "Template")):
        with out.row(path, n):
            toxic = lookup({"BAD": 1.0, "NOT_BAD": 0.0}, rec["Label"].strip(), "Label")
            out.add(
                id=f"{rec['Template'].strip()}-{n}",
                split="test",
                group=madlibs_term(rec["Text"], rec["Template"]),
                text=rec["Text"].strip(),
                toxicity={"toxicity": toxic},
            )


# --------------------------------------------------------------------------- C3


#: C3's dev and test shares, drawn by article: no article straddles two splits. Test is
#: larger than the usual 10 % because only about 9 % of C3 is toxic (level >= 2).
C3_DEV, C3_TEST = 0.1, 0.2


def c3_votes(raw: str) -> dict[str, float]:
    """``"no_toxic:4\\npersonal_attack:1"`` (C3's characteristics cells) as a vote dict."""
    votes: dict[str, float] = {}
    for part in raw.split("\n"):
        if part.strip():
            name, sep, count = part.rpartition(":")
            if not sep:
                raise ValueError(f"bad characteristics entry {part!r}")
            votes[name.strip()] = votes.get(name.strip(), 0.0) + parse_float(count, name)
    return votes


def c3_labels(
    level: float, toxicity_votes: dict[str, float], judgements: float
) -> dict[str, float]:
    """Our toxicity labels for one C3 comment.

    toxicity = the mean crowd rating as a soft target that puts C3's usual "toxic" cut
    (level >= 2) at 0.5, as every other corpus has it: level 1 → 0, 2 → 0.5, 3 and 4 → 1
    (only 0.6 % of C3 rates 3 or more); severe_toxicity = the scale's severe end, level 3
    → 0.5 and 4 → 1 (Perspective's SEVERE_TOXICITY); insult = the fraction of the comment's raters
    who named a personal attack. C3's other types (abusive, inflammatory, teasing,
    embarrassment) have no one-to-one label here and stay unknown.
    """
    if not 1.0 <= level <= 4.0:
        raise ValueError(f"crowd_toxicity_level {level!r} is not in [1, 4]")
    if judgements <= 0:
        raise ValueError("no toxicity judgements")
    attack = min(1.0, toxicity_votes.get("personal_attack", 0.0) / judgements)
    return {
        "toxicity": min(1.0, (level - 1.0) / 2.0),
        # the severe end of the same scale: level 2 or less → 0, 3 → 0.5, 4 → 1
        "severe_toxicity": max(0.0, (level - 2.0) / 2.0),
        "insult": attack,
    }


def c3_constructive(
    share: str, votes: dict[str, float], judgements: float
) -> dict[str, float] | None:
    """Constructiveness labels for one C3 comment: ``constructive``, the share of raters
    who judged it constructive (C3's ``constructive``; ``constructive_binary`` is it
    > 0.5), and each characteristic of :data:`~classifier.labels.CONSTRUCTIVE_LABELS`,
    the share of raters who named it. None when the comment was not rated."""
    if not share.strip() or judgements <= 0:
        return None
    value = parse_float(share, "constructive")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"constructive {value!r} is not in [0, 1]")
    out = {"constructive": value}
    for name in CONSTRUCTIVE_LABELS[1:]:
        out[name] = min(1.0, votes.get(name, 0.0) / judgements)
    return out


def load_c3(folder: Path, out: Collector) -> None:
    """C3, the Constructive Comments Corpus: Globe and Mail comments with crowd toxicity
    ratings. C3 has no official split: a seeded hash of ``article_id`` puts each article's
    comments in train / dev / test (70/10/20), so the test articles are unseen."""
    path = folder / "C3_anonymized.csv"
    required = ("article_id", "comment_counter", "comment_text", "crowd_toxicity_level")
    for n, rec in read_csv(path, out, required=required):
        with out.row(path, n):
            article = rec["article_id"].strip()
            if not article:
                raise ValueError("empty article_id")
            level = parse_float(rec["crowd_toxicity_level"], "crowd_toxicity_level")
            judgements = parse_float(rec.get("njudgements_toxicity_expt") or "0", "judgements")
            votes = c3_votes(rec.get("toxicity_characteristics") or "")
            constructive = c3_constructive(
                rec.get("constructive") or "",
                c3_votes(rec.get("constructive_characteristics") or ""),
                parse_float(rec.get("njudgements_constructiveness_expt") or "0", "judgements"),
            )
            out.add(
                id=rec["comment_counter"].strip(),
                split=hash_split(article, dev=C3_DEV, test=C3_TEST, salt="c3"),
                group=article,
                text=rec["comment_text"].strip(),
                toxicity=c3_labels(level, votes, judgements),
                constructive=constructive,
            )
