"""The models ``threadguard evaluate`` scores with: saved threadguard models
(:class:`TransformerScorer`, through the batched Predictor) and built-in baselines.
:func:`resolve_model` turns a ``--model`` argument into one of them.

``baseline:majority``
    The training split's class priors as constant probabilities: the majority
    stance class, and each toxicity label's positive rate.
``baseline:tfidf``
    TF-IDF + logistic regression fitted on the same corpus's training split.
    Stance: one multinomial classifier over the corpus's stance classes on
    ``[tfidf(comment), tfidf(target), cosine(comment, target)]`` (the features of
    the UCL FNC-1 baseline; the cosine is what separates ``unrelated``).
    Toxicity: one binary classifier per label annotated in the training split,
    on ``tfidf(comment)``, soft labels binarised at 0.5.
``baseline:profanity``
    The ``alt-profanity-check`` linear SVM, whose one score (trained on the union
    of the Jigsaw 2018 toxic labels and Davidson's hate + offensive tweets) stands
    for every toxicity label except ``spam``. No stance, nothing to fit.

Corpora without a training split (``bias_madlibs``) train the fitted baselines on
:data:`TRAIN_FALLBACK`; ``baseline:tfidf@CORPUS`` trains on ``CORPUS`` instead of
the evaluated corpus.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import scipy.sparse as sp
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from classifier.labels import STANCE_LABELS, TOXICITY_LABELS
from classifier.model.predictor import CommentScores, ItemScores, PredictOptions
from classifier.model.spans import Span
from training.corpora import CORPORA

logger = logging.getLogger(__name__)

BASELINES: tuple[str, ...] = ("majority", "tfidf", "profanity")

#: The corpus whose toxic spans ``threadguard evaluate`` scores (SemEval-2021 Task 5's).
SPAN_CORPUS = "toxic_spans"

#: The corpus a fitted baseline trains on when the evaluated one has no train split.
TRAIN_FALLBACK: dict[str, str] = {"bias_madlibs": "toxic_spans"}

#: Returns the splits of a corpus by name (the evaluator caches its loads).
SplitsOf = Callable[[str], Mapping[str, datasets.Dataset]]

TFIDF_OPTIONS: dict[str, Any] = {
    "ngram_range": (1, 2),
    "sublinear_tf": True,
    "max_features": 50_000,
    "min_df": 2,
}
LOGREG_OPTIONS: dict[str, Any] = {"C": 1.0, "class_weight": "balanced", "max_iter": 1000}
PROFANITY_LABELS: tuple[str, ...] = tuple(n for n in TOXICITY_LABELS if n != "spam")


@dataclass
class Scores:
    """What one model says about each example of a split.

    ``stance`` [N, S] columns follow ``stance_labels``; ``toxicity`` [N, T]
    follow ``toxicity_labels``; ``None`` when the model has no opinion. A model with
    a span head gives each example's toxic ``spans`` on the corpus that annotates
    them (ToxicSpans), and one with a constructiveness head ``constructive`` [N, C]
    (columns ``constructive_labels``) on the corpus that rates it (C3).
    """

    stance_labels: tuple[str, ...] = ()
    stance: np.ndarray | None = None
    toxicity_labels: tuple[str, ...] = ()
    toxicity: np.ndarray | None = None
    spans: list[list[Span]] | None = None
    constructive_labels: tuple[str, ...] = ()
    constructive: np.ndarray | None = None


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def stance_gold(train: datasets.Dataset) -> list[str]:
    """Stance names of the rows that annotate stance."""
    return [STANCE_LABELS[s] for s in train["stance"] if s >= 0]


def toxicity_gold(train: datasets.Dataset, label: str) -> tuple[np.ndarray, np.ndarray]:
    """(mask of rows where ``label`` is known, binarised gold of those rows)."""
    values = np.asarray(train[label], dtype=np.float32)
    known = values >= 0
    return known, (values[known] >= 0.5).astype(int)


class Baseline:
    """A baseline scorer; fitted ones are fitted once per training corpus."""

    def __init__(self, kind: str, train_corpus: str | None = None) -> None:
        if kind not in BASELINES:
            raise ValueError(f"unknown baseline {kind!r}; known: {list(BASELINES)}")
        if kind == "profanity" and train_corpus:
            raise ValueError("baseline:profanity is not trained; it takes no @CORPUS")
        self.kind = kind
        self.train_corpus = train_corpus
        self.name = f"baseline:{kind}" + (f"@{train_corpus}" if train_corpus else "")
        self._fitted: dict[str, _Fitted] = {}
        self._trained_on: dict[str, dict[str, Any]] = {}
        if kind == "profanity":
            try:
                import profanity_check  # noqa: F401
            except ImportError:
                raise ValueError(
                    "baseline:profanity needs the alt-profanity-check package "
                    "(pip install 'threadguard[train]')"
                ) from None

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable description for the report."""
        info: dict[str, Any] = {"name": self.name, "kind": "baseline", "baseline": self.kind}
        if self.kind == "profanity":
            info["versions"] = {"alt-profanity-check": _package_version("alt-profanity-check")}
            info["labels"] = list(PROFANITY_LABELS)
        else:
            info["versions"] = {"scikit-learn": sklearn.__version__}
            info["trained_on"] = self._trained_on
        if self.kind == "tfidf":
            info["tfidf"] = {k: list(v) if isinstance(v, tuple) else v
                             for k, v in TFIDF_OPTIONS.items()}  # fmt: skip
            info["logistic_regression"] = LOGREG_OPTIONS
        return info

    def score(self, corpus: str, data: datasets.Dataset, splits_of: SplitsOf) -> Scores:
        """Scores for ``data`` (a split of ``corpus``)."""
        if self.kind == "profanity":
            return _profanity(data)
        fitted = self._fitted.get(corpus)
        if fitted is None:
            source = self.train_corpus or corpus
            splits = splits_of(source)
            if "train" not in splits and source in TRAIN_FALLBACK:
                source = TRAIN_FALLBACK[source]
                splits = splits_of(source)
            if "train" not in splits:
                raise ValueError(f"{self.name}: corpus {source!r} has no train split to fit on")
            train = splits["train"]
            logger.info("%s: fitting on %s:train (%d rows)", self.name, source, len(train))
            fitted = _fit(self.kind, train)
            self._fitted[corpus] = fitted
            self._trained_on[corpus] = {"corpus": source, "split": "train", "rows": len(train)}
        return fitted.predict(data)


# --------------------------------------------------------------------------- fitting


class _Fitted:
    def predict(self, data: datasets.Dataset) -> Scores:
        raise NotImplementedError


class _Majority(_Fitted):
    def __init__(self, train: datasets.Dataset) -> None:
        gold = stance_gold(train)
        self.stance_labels = tuple(sorted(set(gold), key=STANCE_LABELS.index))
        self.stance_prior = np.asarray(
            [gold.count(c) / len(gold) for c in self.stance_labels], dtype=np.float32
        )
        self.priors: dict[str, float] = {}
        for label in TOXICITY_LABELS:
            known, y = toxicity_gold(train, label)
            if known.any():
                self.priors[label] = float(y.mean())

    def predict(self, data: datasets.Dataset) -> Scores:
        n = len(data)
        out = Scores()
        if len(self.stance_labels) >= 1:
            out.stance_labels = self.stance_labels
            out.stance = np.tile(self.stance_prior, (n, 1))
        if self.priors:
            out.toxicity_labels = tuple(self.priors)
            out.toxicity = np.tile(np.asarray(list(self.priors.values()), np.float32), (n, 1))
        return out


def _vectorizer(n_docs: int) -> TfidfVectorizer:
    options = dict(TFIDF_OPTIONS)
    if n_docs < 1000:  # tiny corpora (fixtures): keep words seen once
        options["min_df"] = 1
    return TfidfVectorizer(**options)


def _transform(vectorizer: TfidfVectorizer, texts: list[str]) -> sp.csr_matrix:
    """Transform each distinct text once (FNC-1 repeats every body dozens of times)."""
    uniq, inverse = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
    return sp.csr_matrix(vectorizer.transform(list(uniq)))[inverse]


def _stance_features(vectorizer: TfidfVectorizer, data: datasets.Dataset) -> sp.csr_matrix:
    text = _transform(vectorizer, data["text"])
    target = _transform(vectorizer, data["target"])
    cosine = np.asarray(text.multiply(target).sum(axis=1))  # rows are L2-normalised
    return sp.hstack([text, target, sp.csr_matrix(cosine)], format="csr")


class _Tfidf(_Fitted):
    def __init__(self, train: datasets.Dataset) -> None:
        stance = np.asarray(train["stance"])
        has_stance = stance >= 0
        self.stance_model: LogisticRegression | None = None
        self.stance_vectorizer: TfidfVectorizer | None = None
        self.stance_labels: tuple[str, ...] = ()
        if has_stance.any():
            rows = train.select(np.flatnonzero(has_stance))
            gold = stance_gold(rows)
            vectorizer = _vectorizer(len(rows))
            vectorizer.fit(sorted(set(rows["text"]) | set(rows["target"])))
            if len(set(gold)) >= 2:
                model = LogisticRegression(**LOGREG_OPTIONS)
                model.fit(_stance_features(vectorizer, rows), gold)
                self.stance_model, self.stance_vectorizer = model, vectorizer
                self.stance_labels = tuple(str(c) for c in model.classes_)
        self.tox_models: dict[str, LogisticRegression | float] = {}
        self.tox_vectorizer = _vectorizer(len(train))
        texts = train["text"]
        labels = [n for n in TOXICITY_LABELS if toxicity_gold(train, n)[0].any()]
        if labels:
            self.tox_vectorizer.fit(texts)
            features = _transform(self.tox_vectorizer, texts)
            for label in labels:
                known, y = toxicity_gold(train, label)
                if 0 < y.sum() < len(y):
                    model = LogisticRegression(**LOGREG_OPTIONS)
                    model.fit(features[np.flatnonzero(known)], y)
                    self.tox_models[label] = model
                else:  # one class only: its rate, as the majority baseline
                    self.tox_models[label] = float(y.mean())
        # a corpus with stance but a single class: fall back to its prior
        if not self.stance_labels and has_stance.any():
            self.majority: _Majority | None = _Majority(train)
        else:
            self.majority = None

    def predict(self, data: datasets.Dataset) -> Scores:
        out = Scores()
        if self.stance_model is not None and self.stance_vectorizer is not None:
            out.stance_labels = self.stance_labels
            features = _stance_features(self.stance_vectorizer, data)
            out.stance = self.stance_model.predict_proba(features).astype(np.float32)
        elif self.majority is not None:
            majority = self.majority.predict(data)
            out.stance_labels, out.stance = majority.stance_labels, majority.stance
        if self.tox_models:
            features = _transform(self.tox_vectorizer, data["text"])
            columns = []
            for model in self.tox_models.values():
                if isinstance(model, float):
                    columns.append(np.full(len(data), model, dtype=np.float32))
                else:
                    columns.append(model.predict_proba(features)[:, 1].astype(np.float32))
            out.toxicity_labels = tuple(self.tox_models)
            out.toxicity = np.stack(columns, axis=1)
        return out


def _fit(kind: str, train: datasets.Dataset) -> _Fitted:
    return _Majority(train) if kind == "majority" else _Tfidf(train)


def _profanity(data: datasets.Dataset) -> Scores:
    from profanity_check import predict_prob

    prob = np.asarray(predict_prob(list(data["text"])), dtype=np.float32) if len(data) else None
    if prob is None:
        prob = np.zeros(0, dtype=np.float32)
    return Scores(
        toxicity_labels=PROFANITY_LABELS,
        toxicity=np.repeat(prob[:, None], len(PROFANITY_LABELS), axis=1),
    )


# --------------------------------------------------------------------------- models


class TransformerScorer:
    """A saved threadguard model, scored through the predictor ``threadguard score`` uses
    (:func:`classifier.model.loading.load_predictor`), so ``DIR@onnx`` measures the torch-free path."""

    def __init__(
        self,
        spec: str,
        path: Path,
        batch_size: int = 32,
        device: str = "cpu",
        backend: str = "torch",
    ) -> None:
        from classifier.model.loading import load_predictor

        self.spec, self.path, self.backend = spec, path, backend
        where = spec.removesuffix(f"@{backend}")
        self.name = path.name if Path(where).exists() else where
        if backend != "torch":
            self.name = f"{self.name}@{backend}"
        options = PredictOptions(batch_size=batch_size)
        self.predictor = load_predictor(path, device=device, backend=backend, options=options)

    def describe(self) -> dict[str, Any]:
        """Model config, training config, versions and a content hash of its files."""
        from classifier.model.config_head import read_head_meta
        from classifier.model.constants import COMMENT_DIR, CONFIG_FILE
        from classifier.model.one_pass import is_one_pass

        one_pass = is_one_pass(self.path)
        config = self.path / COMMENT_DIR / CONFIG_FILE if one_pass else self.path / CONFIG_FILE
        meta = json.loads(config.read_text(encoding="utf-8"))
        digest = hashlib.sha256()
        for file in sorted(p for p in self.path.rglob("*") if p.is_file()):
            digest.update(str(file.relative_to(self.path)).encode())
            with file.open("rb") as fh:
                while block := fh.read(1 << 20):
                    digest.update(block)
        return {
            "name": self.name,
            "kind": "transformer",
            "spec": self.spec,
            "backend": self.backend,
            "path": str(self.path.resolve()),
            "sha256": digest.hexdigest(),
            "stance_labels": list(self.predictor.stance_labels),
            "toxicity_labels": list(self.predictor.toxicity_labels),
            "model_config": meta.get("model_config"),
            "save_mode": meta.get("save_mode"),
            "training_config": meta.get("training_config"),
            "versions": meta.get("versions"),
            "stance_head": read_head_meta(self.path) if one_pass else None,
        }

    def score(self, corpus: str, data: datasets.Dataset, splits_of: SplitsOf) -> Scores:
        """Stance and toxicity probabilities for every row of ``data``; with those heads,
        toxic spans on ToxicSpans and constructiveness where the corpus rates it (C3)."""
        rows = data.select_columns(["target", "context", "text"])
        predictor = self.predictor
        head = predictor.head_for(corpus)
        comment = predictor.comment_model or predictor
        want_spans = corpus == SPAN_CORPUS and bool(comment.span_labels)
        rated = "constructive" in data.column_names and max(data["constructive"], default=-1) >= 0
        want_constructive = rated and bool(comment.constructive_labels)
        # the comment model's extra heads come with its toxicity pass; only where the corpus
        # has their gold are they kept
        scored = predictor.score_arrays(rows, stance_head=head, spans=want_spans)
        # only the classes the corpus's head can say: another one is missing, not improbable
        classes = predictor.stance_heads[head].classes
        stance = scored.stance[:, [predictor.stance_labels.index(c) for c in classes]]
        out = Scores(classes, stance, predictor.toxicity_labels, scored.toxicity)
        found: ItemScores | CommentScores = scored
        if predictor.comment_model is None and (want_spans or want_constructive):
            # a one-pass model with the heads: they read the comment alone, in a pass of its own
            found = comment.comment_scores(list(data["text"]), spans=want_spans)
        out.spans = found.spans if want_spans else None
        if want_constructive and found.constructive is not None:
            out.constructive_labels = comment.constructive_labels
            out.constructive = found.constructive
        return out


Scorer = TransformerScorer | Baseline


def resolve_model(spec: str, batch_size: int = 32, device: str = "cpu") -> Scorer:
    """A scorer for ``--model``: ``baseline:NAME[@CORPUS]``, a saved model folder,
    or a Hugging Face Hub id of a saved threadguard model; a model may end in
    ``@BACKEND`` (``classifier/default_model@int8``) to be run by that backend of
    :mod:`classifier.model.backends` instead of the float32 reference."""
    from classifier.model.constants import CONFIG_FILE, HEAD_CONFIG_FILE, check_backend
    from classifier.model.one_pass import is_one_pass

    if spec.startswith("baseline:"):
        kind, _, train_corpus = spec.removeprefix("baseline:").partition("@")
        if train_corpus and train_corpus not in CORPORA:
            raise ValueError(f"{spec}: unknown training corpus {train_corpus!r}")
        return Baseline(kind, train_corpus or None)
    backend = "torch"
    stem, at, suffix = spec.rpartition("@")
    if at and not Path(spec).expanduser().exists():
        try:
            backend = check_backend(suffix)
        except ValueError as exc:
            raise ValueError(f"{spec}: {exc}") from None
        spec_path = stem
    else:
        spec_path = spec
    path = Path(spec_path).expanduser()
    if not path.exists():
        try:
            from huggingface_hub import snapshot_download

            path = Path(snapshot_download(spec_path))
        except Exception as exc:
            raise ValueError(
                f"model {spec!r} is not a folder, not a baseline (baseline:majority, "
                f"baseline:tfidf, baseline:profanity) and could not be fetched from the "
                f"Hugging Face Hub ({type(exc).__name__})"
            ) from None
    if not (path / CONFIG_FILE).is_file() and not is_one_pass(path):
        raise ValueError(
            f"model {spec!r}: {path} is not a saved threadguard model (no {CONFIG_FILE}, "
            f"no {HEAD_CONFIG_FILE})"
        )
    return TransformerScorer(spec, path, batch_size, device, backend)
