"""Score texts with toxic-comment-classifier (a Keras BiLSTM trained on Jigsaw 2018).

Runs in its own environment, since it needs tensorflow, which threadguard never does:
``python -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install toxic-comment-classifier``, then
``benchmarks/news_toxicity.py --keras-python /tmp/tfenv/bin/python`` calls this script with
a JSON list of texts and reads back a JSON object of label -> scores. It imports nothing
from threadguard.

    python benchmarks/keras_peer.py IN.json OUT.json
"""

from __future__ import annotations

import json
import sys

from tensorflow.keras.preprocessing.sequence import pad_sequences
from toxic_classifier import ToxicCommentClassifier
from toxic_classifier.model import LIST_CLASSES, MAXLEN

#: its Jigsaw 2018 labels, by threadguard's names
NAMES = {
    "toxic": "toxicity",
    "severe_toxic": "severe_toxicity",
    "obscene": "obscene",
    "threat": "threat",
    "insult": "insult",
    "identity_hate": "identity_attack",
}


def main() -> None:
    source, target = sys.argv[1], sys.argv[2]
    with open(source, encoding="utf-8") as fh:
        texts = json.load(fh)
    classifier = ToxicCommentClassifier()
    padded = pad_sequences(classifier.tokenizer.texts_to_sequences(texts), maxlen=MAXLEN)
    probs = classifier.model.predict(padded, batch_size=256, verbose=0)
    out = {NAMES[name]: probs[:, j].astype(float).tolist() for j, name in enumerate(LIST_CLASSES)}
    with open(target, "w", encoding="utf-8") as fh:
        json.dump(out, fh)


if __name__ == "__main__":
    main()
