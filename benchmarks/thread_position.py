"""Where in a thread does the comment head go wrong? RumourEval scored by a post's position.

RumourEval labels every post of a thread: the source post (its stance toward the rumour it
states), the direct replies to it and the deeper replies. The three parts have very different
label mixes, so one macro-F1 over the split hides where the errors are. For each model this
prints, per part of the thread: rows, the gold counts, macro-F1 over the four SDQC classes and
the confusion matrix (read through the comment head, as ``threadguard evaluate`` does).

Position comes from the adapter's fields: a source post is its own target; a deeper reply has
the source post as context (its parent is the target). A reply whose parent had no text is
scored against the source post and counts as a direct reply here.

    python benchmarks/thread_position.py classifier/default_model --split test

``--untitled`` reads the deeper replies as in a thread with no article title, where a reply
has its parent as target and no context: ``flagged`` marks them ``reply`` as
``threadguard score`` and the service do (so the model's reply offsets apply), ``unflagged``
does not (what threadguard did before session 10).
"""

from __future__ import annotations

import argparse

import datasets
import numpy as np
from sklearn.metrics import confusion_matrix, f1_score

from classifier.labels import STANCE_LABELS
from classifier.model.loading import load_predictor
from training.corpora import load_corpus

SDQC = ("support", "deny", "query", "comment")


def positions(targets: list[str], contexts: list[str], texts: list[str]) -> np.ndarray:
    """``source``, ``direct`` or ``deeper`` for each RumourEval row."""
    return np.array(
        [
            "source" if target == text and not context else "deeper" if context else "direct"
            for target, context, text in zip(targets, contexts, texts, strict=True)
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="threadguard model folders")
    parser.add_argument("--split", default="test", choices=["train", "dev", "test"])
    parser.add_argument("--data-root", default=None, help="default: ../shared/data")
    parser.add_argument(
        "--untitled",
        choices=["flagged", "unflagged"],
        default=None,
        help="deeper replies without their context, flagged as replies or not",
    )
    args = parser.parse_args()

    rows = load_corpus("rumoureval2019", args.data_root, split=args.split)
    assert isinstance(rows, datasets.Dataset)
    gold = np.array([STANCE_LABELS[i] for i in rows["stance"]])
    where = positions(list(rows["target"]), list(rows["context"]), list(rows["text"]))
    parts = [("all", np.ones(len(gold), dtype=bool))] + [
        (name, where == name) for name in ("source", "direct", "deeper")
    ]
    items = list(rows.select_columns(["target", "context", "text"]))
    if args.untitled:
        for item, name in zip(items, where, strict=True):
            if name == "deeper":
                item.update(context="", reply=args.untitled == "flagged")
    for path in args.models:
        predictor = load_predictor(path)
        stance = predictor.score_arrays(items, stance_head="comment").stance
        columns = [list(predictor.stance_labels).index(label) for label in SDQC]
        pred = np.array(SDQC)[stance[:, columns].argmax(axis=1)]
        untitled = f" · deeper replies untitled, {args.untitled}" if args.untitled else ""
        print(f"\n## {path} · rumoureval2019:{args.split}{untitled}\n")
        print(
            "| part of the thread | rows | gold S / D / Q / C | macro-F1 | predicted S / D / Q / C |"
        )
        print("|---|---|---|---|---|")
        for name, mask in parts:
            if not mask.any():
                continue
            f1 = f1_score(
                gold[mask], pred[mask], labels=list(SDQC), average="macro", zero_division=0
            )
            counts = " / ".join(str(int((gold[mask] == c).sum())) for c in SDQC)
            called = " / ".join(str(int((pred[mask] == c).sum())) for c in SDQC)
            print(f"| {name} | {int(mask.sum()):,} | {counts} | {f1:.3f} | {called} |")
        for name, mask in parts[1:]:
            if mask.any():
                matrix = confusion_matrix(gold[mask], pred[mask], labels=list(SDQC))
                print(f"\n{name}: rows gold, columns predicted ({', '.join(SDQC)})")
                print("\n".join("  " + " ".join(f"{n:5d}" for n in line) for line in matrix))


if __name__ == "__main__":
    main()
