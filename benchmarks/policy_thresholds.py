"""What a moderation policy's thresholds do on the dev splits, for a model.

For each label the policy acts on, and each dev split that annotates that label: how many
comments reach the threshold, the precision and recall of that hold, and the highest score
a comment without the label got (for ``spam`` on news comments, which never carry it, how
close the benign ones come to the line). Then the decisions on the short comments the
service's real-model tests hold (``tests/test_service.py``). This is how the thresholds in
``configs/moderation.yaml`` are checked against a retrained model; ``--at`` adds thresholds
to compare with the policy's.

    python benchmarks/policy_thresholds.py classifier/default_model --at 0.5 --at 0.9
"""

from __future__ import annotations

import argparse

import numpy as np

from classifier.model.predictor import PredictOptions
from classifier.model.torch_predictor import Predictor, load_model
from classifier.moderation.policy import Policy
from classifier.targets import comment_item
from training.corpora import load_corpus
from training.dev import predict_dataset

DEFAULT_DATASETS = [
    "olid",
    "davidson",
    "hateval2019",
    "toxic_spans",
    "hatexplain",
    "context_toxicity",
    "youtube_spam",
]

#: (comment, what the service's real-model tests expect), read under a news article.
PROBES = [
    ("Thanks for the thorough reporting, I learned a lot from this article.", "approve"),
    ("Good point. I had not thought about the cost to the council before.", "approve"),
    ("You are a worthless idiot and a disgusting piece of garbage.", "review or reject"),
    ("Shut up you stupid moron, nobody wants to hear your pathetic lies.", "review or reject"),
    (
        "Check out my channel!!! Subscribe and click here http://bit.ly/free-gift-cards now",
        "reject",
    ),
    ("Earn $500 a day working from home, visit www.easy-money.example to start today!!!", "reject"),
]
ARTICLE = "Council approves new budget"
#: Labels a dev split that does not annotate them can be read as all-negative: no comment
#: under a news article or on a talk page is spam, so the top score shows how near the line
#: benign discussion comes.
NEVER_POSITIVE = {"spam"}


def hold_figures(y: np.ndarray, prob: np.ndarray, threshold: float) -> str:
    """Held share, precision and recall of holding every score at or above ``threshold``."""
    held = prob >= threshold
    positives = int(y.sum())
    hits = int((held & (y == 1)).sum())
    precision = f"{hits / held.sum():.2f}" if held.any() else "-"
    recall = f"{hits / positives:.2f}" if positives else "-"
    return f"≥{threshold:.2f}: held {held.mean():.3f}, precision {precision}, recall {recall}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--policy", default=None, help="policy file (default: the built-in one)")
    parser.add_argument("--dataset", action="append", help="corpus with a dev split")
    parser.add_argument("--at", action="append", type=float, default=[], help="extra threshold")
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    policy = Policy.load(args.policy)
    devs = {name: load_corpus(name, split="dev") for name in args.dataset or DEFAULT_DATASETS}

    for path in args.models:
        model = load_model(path)
        labels = list(model.toxicity_labels)
        policy.check_labels(labels)
        print(f"## {path} · policy {policy.source}")
        for name, dev in devs.items():
            _, tox = predict_dataset(model, dev, args.batch_size, model.config.head_for(name))
            for rule in policy.rules:
                thresholds = list(dict.fromkeys([rule.threshold, *args.at]))
                values = np.asarray(dev[rule.label], dtype=np.float32)
                known = values >= 0
                prob = tox[:, labels.index(rule.label)]
                if not known.any():
                    if rule.label not in NEVER_POSITIVE:
                        continue
                    held = ", ".join(f"≥{t:.2f} {(prob >= t).mean():.3f}" for t in thresholds)
                    print(
                        f"{name} dev {rule.label} (not annotated, {prob.size} rows): "
                        f"top score {prob.max():.3f}, held {held}"
                    )
                    continue
                y = (values[known] >= 0.5).astype(int)
                prob = prob[known]
                negatives = prob[y == 0]
                top_negative = f"{negatives.max():.3f}" if negatives.size else "-"
                figures = " · ".join(hold_figures(y, prob, t) for t in thresholds)
                print(
                    f"{name} dev {rule.label} ({int(y.sum())} of {y.size} positive; "
                    f"top negative {top_negative}): {figures}"
                )
        predictor = Predictor(model, options=PredictOptions(batch_size=args.batch_size))
        items = [comment_item(text, article_title=ARTICLE) for text, _ in PROBES]
        for (text, expected), prediction in zip(PROBES, predictor.predict(items), strict=True):
            decision = policy.decide(prediction)
            scores = ", ".join(f"{k} {v:.3f}" for k, v in decision.scores.items())
            print(f"{decision.decision} (tests expect {expected}): {text!r}: {scores}")


if __name__ == "__main__":
    main()
