"""Does the article a comment answers change its toxicity score?

For each model: toxicity ROC-AUC on the dev splits of ToxicSpans (news comments, no target)
and of the Wikipedia context corpus (scored with the parent comment the raters saw), and
the false-positive rate on non-toxic ToxicSpans dev comments scored alone versus paired
with a war-reporting article (the seed pages): an article full of violent words should
not make a calm comment look toxic.

    python benchmarks/context_effect.py runs/tox-pair runs/tox-comment_span runs/tox-comment
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from classifier.io.readers import read_file
from classifier.model.predictor import PredictOptions
from classifier.model.torch_predictor import Predictor, load_model
from classifier.schema import Thread
from classifier.targets import comment_item
from training.corpora import load_corpus

SEEDS = Path(__file__).resolve().parents[1] / "seeds"


def violent_articles() -> list[Thread]:
    return [t for p in sorted(SEEDS.glob("*.txt")) for t in read_file(p) if isinstance(t, Thread)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--max-examples", type=int, default=800)
    args = parser.parse_args()

    spans = load_corpus("toxic_spans", split="dev").shuffle(seed=0)
    spans = spans.select(range(min(args.max_examples, len(spans))))
    wiki = load_corpus("context_toxicity", split="dev")
    y_spans = (np.asarray(spans["toxicity"]) >= 0.5).astype(int)
    y_wiki = (np.asarray(wiki["toxicity"]) >= 0.5).astype(int)
    calm = [t for t, y in zip(spans["text"], y_spans, strict=True) if not y]
    articles = violent_articles()

    print(
        "| model | toxicity_input | AUC ToxicSpans dev | AUC Wikipedia dev (with parent) "
        "| FPR@0.5 alone | FPR@0.5 under war articles | mean score shift |"
    )
    print("|---|---|---|---|---|---|---|")
    for path in args.models:
        model = load_model(path)
        predictor = Predictor(model, options=PredictOptions(batch_size=64))
        col = model.toxicity_labels.index("toxicity")

        def tox(
            items: Sequence[Mapping[str, object]], predictor: Predictor = predictor, col: int = col
        ) -> np.ndarray:
            return predictor.score_arrays(items).toxicity[:, col]

        auc_spans = roc_auc_score(y_spans, tox([{"text": t} for t in spans["text"]]))
        auc_wiki = roc_auc_score(
            y_wiki,
            tox(
                [
                    {"text": t, "target": g}
                    for t, g in zip(wiki["text"], wiki["target"], strict=True)
                ]
            ),
        )
        alone = tox([{"text": t} for t in calm])
        paired = np.stack(
            [
                tox([comment_item(t, None, a.article.title, a.article.body) for t in calm])
                for a in articles
            ]
        ).mean(axis=0)
        print(
            f"| {Path(path).name} | {model.config.toxicity_input} | {auc_spans:.3f} | {auc_wiki:.3f} "
            f"| {np.mean(alone >= 0.5):.3f} | {np.mean(paired >= 0.5):.3f} "
            f"| {np.mean(paired - alone):+.3f} |"
        )


if __name__ == "__main__":
    main()
