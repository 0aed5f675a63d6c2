"""What spelling emoji out (``model.emoji_words``) changes for a model, on dev splits.

For each model, the same weights are scored twice, reading text as it is and with
pictographs spelled out by their Unicode names: each dev split's primary metric (and how
many of its rows have a pictograph), then the toxicity of a few short comments whose
meaning is in an emoji. A model trained without it was never shown the spelled names, so
this measures what the switch does to those weights, not what training with it would give.

    python benchmarks/emoji_effect.py classifier/default_model --dataset olid --dataset hateval2019
"""

from __future__ import annotations

import argparse

from classifier.model.encoding import EMOJI_RUN
from classifier.model.predictor import PredictOptions
from classifier.model.torch_predictor import Predictor, load_model
from training.corpora import load_corpus
from training.dev import predict_dataset
from training.metrics import dev_metrics

PROBES = [
    "🖕",
    "you are a 🐷",
    "💩 article",
    "🔪 you",
    "🤮🤮 disgusting people",
    "great read 👍",
    "thank you for this ❤️",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--dataset", action="append", default=[], help="corpus with a dev split")
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()

    devs = {name: load_corpus(name, split="dev") for name in args.dataset}
    for path in args.models:
        model = load_model(path)
        predictor = Predictor(model, options=PredictOptions(batch_size=args.batch_size))
        toxicity = list(model.toxicity_labels).index("toxicity")
        trained_with = model.config.emoji_words
        print(f"## {path} (trained with emoji_words: {str(trained_with).lower()})")
        for name, dev in devs.items():
            with_emoji = sum(1 for text in dev["text"] if EMOJI_RUN.search(text))
            row = [f"{name} dev ({len(dev)} rows, {with_emoji} with a pictograph)"]
            for flag in (False, True):
                model.input_encoder.emoji_words = flag
                stance, tox = predict_dataset(
                    model, dev, args.batch_size, model.config.head_for(name)
                )
                found = dev_metrics(
                    dev, stance, tox, model.stance_labels, model.toxicity_labels, name
                )
                row.append(f"{'spelled' if flag else 'as is'} {found['primary']:.4f}")
            print(" · ".join(row))
        for flag in (False, True):
            model.input_encoder.emoji_words = flag
            tox = predictor.score_arrays([{"text": text} for text in PROBES]).toxicity
            scores = ", ".join(
                f"{text!r} {p:.2f}" for text, p in zip(PROBES, tox[:, toxicity], strict=True)
            )
            print(f"toxicity, {'spelled' if flag else 'as is'}: {scores}")
        model.input_encoder.emoji_words = trained_with


if __name__ == "__main__":
    main()
