"""Stance corpora: RumourEval 2019, FNC-1, ARC, SemEval-2016 Task 6.

Each function fills a :class:`~training.corpora._common.Collector` from one
corpus folder in its official layout; :mod:`training.corpora` registers them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets

from training.corpora._common import (
    HUB_SPLITS,
    TWEETEVAL_PARTS,
    Collector,
    MalformedRow,
    clean_text,
    field,
    hash_split,
    lookup,
    read_csv,
    read_mapping,
    read_tweeteval,
)

# --------------------------------------------------------------------------- RumourEval 2019

RUMOUREVAL_CLASSES = ("support", "deny", "query", "comment")
_RUMOUREVAL_KEYS = {
    "train": "rumoureval-2019-training-data/train-key.json",
    "dev": "rumoureval-2019-training-data/dev-key.json",
    "test": "final-eval-key.json",
}


@dataclass
class _Post:
    """One post of a RumourEval thread; ``text`` is None for a Reddit "more" stub."""

    text: str | None
    thread: str
    platform: str
    parent: str | None


def _post_text(data: dict[str, Any], platform: str) -> str | None:
    """The text of a post JSON: a tweet, a Reddit submission listing or a Reddit comment."""
    # a post that lacks a field is malformed (MalformedRow: skipped and counted), not a bug
    if platform == "twitter":
        return clean_text(data.get("full_text") or field(data, "text"))
    if data.get("kind") == "Listing":  # the submission: title, then the self-text
        children = field(field(data, "data", dict), "children", list)
        if not children:
            raise MalformedRow("a Reddit listing without children")
        post = field(children[0], "data", dict)
        parts = [post.get("title") or "", post.get("selftext") or ""]
        return clean_text("\n\n".join(p for p in parts if p.strip()))
    if data.get("kind") == "more":  # a "load more comments" stub: the release has no text
        return None
    return clean_text(field(field(data, "data", dict), "body"))


def _raw_parent(data: dict[str, Any], platform: str) -> str | None:
    """The parent id a post JSON itself names (fallback when structure.json lacks the post)."""
    if platform == "twitter":
        return data.get("in_reply_to_status_id_str")
    parent = (data.get("data") or {}).get("parent_id")
    return parent.split("_", 1)[-1] if parent else None


def _walk_structure(node: Any, parent: str | None, parents: dict[str, str | None]) -> None:
    """Record the parent of every post id in a nested ``structure.json`` dict."""
    if isinstance(node, dict):
        for key, child in node.items():
            parents[str(key)] = parent
            _walk_structure(child, str(key), parents)


def _index_threads(folder: Path, out: Collector) -> dict[str, _Post]:
    """Every post of every thread below ``folder``, by post id.

    A thread is a directory with ``structure.json`` (nested dict of reply ids),
    ``source-tweet/<id>.json`` and ``replies/<id>.json``; Reddit threads also have
    ``raw.json``. The test release holds some Twitter threads twice
    (``twitter-eval-data*`` repeat ``twitter-en-test-data``); the first copy wins.
    """
    posts: dict[str, _Post] = {}
    for structure_path in sorted(folder.rglob("structure.json")):
        thread_dir = structure_path.parent
        platform = "reddit" if (thread_dir / "raw.json").is_file() else "twitter"
        with out.row(structure_path, thread_dir.name):
            structure = json.loads(structure_path.read_text(encoding="utf-8"))
            parents: dict[str, str | None] = {}
            _walk_structure(structure, None, parents)
            for kind in ("source-tweet", "replies"):
                for path in sorted((thread_dir / kind).glob("*.json")):
                    post_id = path.stem
                    if post_id in posts:
                        continue
                    with out.row(path, post_id):
                        data = json.loads(path.read_text(encoding="utf-8"))
                        parent = parents.get(post_id) or _raw_parent(data, platform)
                        if kind == "source-tweet":
                            parent = None
                        text = _post_text(data, platform)
                        posts[post_id] = _Post(text, thread_dir.name, platform, parent)
    return posts


def load_rumoureval2019(folder: Path, out: Collector) -> None:
    """SemEval-2019 Task 7 subtask A: one example per labelled post.

    ``text`` is the post; ``target`` its parent post (from ``structure.json``) and
    ``context`` the thread's source post when the parent is not the source. The
    source post itself is labelled too (its stance toward the rumour it states):
    for it ``target`` is its own text and ``context`` is empty. ``id`` is
    ``<platform>:<post id>`` (``twitter`` / ``reddit``); ``group`` the thread id.
    Labelled Reddit posts that the release only has as "more" stubs (no text:
    90, all ``comment``) are dropped and counted in ``notes``; a reply whose
    parent has no text falls back to the source post as target (also counted).
    """
    posts = _index_threads(folder, out)
    for split, key_path in _RUMOUREVAL_KEYS.items():
        path = folder / key_path
        labels = json.loads(path.read_text(encoding="utf-8"))["subtaskaenglish"]
        for post_id, label in labels.items():
            with out.row(path, post_id):
                post = posts.get(post_id)
                if post is None:
                    raise ValueError("labelled post has no file in the release")
                if post.text is None:
                    out.note("labelled Reddit 'more' stubs without text, dropped")
                    continue
                source = posts.get(post.thread)
                source_text = source.text if source and source.text else ""
                target, context = source_text, ""
                if post.parent is not None and post.parent != post.thread:
                    parent = posts.get(post.parent)
                    if parent is not None and parent.text:
                        target, context = parent.text, source_text
                    else:
                        out.note("parent without text, source post used as target")
                out.add(
                    id=f"{post.platform}:{post_id}",
                    split=split,
                    group=post.thread,
                    target=target,
                    context=context,
                    text=post.text,
                    stance=label,
                    stance_classes=RUMOUREVAL_CLASSES,
                )


# --------------------------------------------------------------------------- FNC-1 and ARC

FNC_CLASSES = ("support", "deny", "comment", "unrelated")
FNC_STANCES = {
    "agree": "support",
    "disagree": "deny",
    "discuss": "comment",
    "unrelated": "unrelated",
}


def _load_fnc_format(
    out: Collector,
    files: list[tuple[str, Path, Path]],
    dev_fraction: float = 0.1,
) -> None:
    """Shared reader for corpora in FNC-1 layout (bodies CSV + stances CSV per split).

    ``files`` lists ``(official split, bodies csv, stances csv)``. Each stance row
    becomes one example: ``target`` = headline/claim, ``text`` = the body (kept
    whole), ``group`` = Body ID. Rows of the official ``train`` split go to
    ``train`` or ``dev`` by a seeded hash of the Body ID, so no body is in both.
    """
    for official, bodies_path, stances_path in files:
        bodies = {
            rec["Body ID"].strip(): rec["articleBody"]
            for _, rec in read_csv(bodies_path, out, required=("Body ID", "articleBody"))
        }
        required = ("Headline", "Body ID", "Stance")
        for n, rec in read_csv(stances_path, out, required=required):
            with out.row(stances_path, n):
                body_id = rec["Body ID"].strip()
                if body_id not in bodies:
                    raise ValueError(f"Body ID {body_id!r} not in {bodies_path.name}")
                split = official
                if official == "train":
                    split = hash_split(body_id, dev=dev_fraction, test=0.0, salt=out.corpus)
                out.add(
                    id=f"{official}-{n}",
                    split=split,
                    group=body_id,
                    target=rec["Headline"].strip(),
                    text=bodies[body_id].strip(),
                    stance=lookup(FNC_STANCES, rec["Stance"].strip().lower(), "stance"),
                    stance_classes=FNC_CLASSES,
                )


def load_fnc1(folder: Path, out: Collector) -> None:
    """Fake News Challenge stage 1: headline → article body; dev = 10 % of train bodies."""
    _load_fnc_format(
        out,
        [
            ("train", folder / "train_bodies.csv", folder / "train_stances.csv"),
            (
                "test",
                folder / "competition_test_bodies.csv",
                folder / "competition_test_stances.csv",
            ),
        ],
    )


def load_arc(folder: Path, out: Collector) -> None:
    """ARC in FNC-1 format: claim → reader post; dev = 10 % of train posts (by Body ID).

    The official ARC train and test files share many posts (with different
    claims); only the dev holdout is body-disjoint from train.
    """
    bodies = folder / "arc_bodies.csv"
    _load_fnc_format(
        out,
        [
            ("train", bodies, folder / "arc_stances_train.csv"),
            ("test", bodies, folder / "arc_stances_test.csv"),
        ],
    )


# --------------------------------------------------------------------------- SemEval-2016 Task 6

#: TweetEval folder name → the official SemEval-2016 Task 6 target phrase.
SEMEVAL2016_TARGETS = {
    "abortion": "Legalization of Abortion",
    "atheism": "Atheism",
    "climate": "Climate Change is a Real Concern",
    "feminist": "Feminist Movement",
    "hillary": "Hillary Clinton",
}
SEMEVAL2016_CLASSES = ("support", "deny", "comment")
_SEMEVAL2016_STANCES = {"favor": "support", "against": "deny", "none": "comment"}
_SEMEVAL2016_MAPPING = {0: "none", 1: "against", 2: "favor"}


def _semeval2016_example(
    out: Collector, topic: str, part: str, n: int, text: str, label: int, names: dict[int, str]
) -> None:
    split = TWEETEVAL_PARTS.get(part) or HUB_SPLITS[part]
    out.add(
        id=f"{topic}-{split}-{n}",
        split=split,
        group=topic,
        target=SEMEVAL2016_TARGETS.get(topic, topic.replace("_", " ").title()),
        text=clean_text(text),
        stance=_SEMEVAL2016_STANCES[lookup(names, label, "label")],
        stance_classes=SEMEVAL2016_CLASSES,
    )


def load_semeval2016_stance(folder: Path, out: Collector) -> None:
    """SemEval-2016 Task 6A (TweetEval packaging): tweet → target phrase; val → dev.

    favor → support, against → deny, none → comment; ``group`` is the target's
    folder name. Any ``<name>/`` folder with ``train_text.txt`` is read, so a
    subset of the five targets also loads.
    """
    names = read_mapping(folder / "mapping.txt", _SEMEVAL2016_MAPPING)
    topics = sorted(p.parent.name for p in folder.glob("*/train_text.txt"))
    if not topics:
        raise FileNotFoundError(f"no <target>/train_text.txt under {folder}")
    for topic in topics:
        for part in TWEETEVAL_PARTS:
            labels_path = folder / topic / f"{part}_labels.txt"
            for n, text, label in read_tweeteval(folder / topic, part):
                with out.row(labels_path, n):
                    _semeval2016_example(out, topic, part, n, text, int(label), names)


def hub_semeval2016_stance(hub_id: str, out: Collector) -> None:
    """The same from the Hub (``cardiffnlp/tweet_eval``, configs ``stance_<target>``)."""
    for topic in SEMEVAL2016_TARGETS:
        loaded = datasets.load_dataset(hub_id, f"stance_{topic}")
        for part, dataset in loaded.items():
            for n, rec in enumerate(dataset, start=1):
                with out.row(f"{hub_id}/stance_{topic}/{part}", n):
                    _semeval2016_example(
                        out, topic, part, n, rec["text"], int(rec["label"]), _SEMEVAL2016_MAPPING
                    )
