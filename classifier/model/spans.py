"""Toxic spans: from annotated character ranges to token targets, and from token
probabilities back to character ranges of the comment.

The span head of the comment model gives, for every token of a comment, a
probability per :data:`~classifier.labels.SPAN_LABELS` name (``toxicity``: the
token is part of some toxic span; the others: of a span of that type). A span
a user sees is a run of whole words whose ``toxicity`` probability reaches the
threshold: a word counts when any of its sub-word tokens does, and neighbouring
words join into one span (the space between them included, as ToxicSpans'
annotators marked phrases). Offsets are character offsets into the text as
given (``text[start:end]`` is the span), from the tokenizer's own alignment, so
they hold for emoji, combining characters and CRLF line ends alike.

Only numpy is needed here: the ONNX runtime and training both use it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TypedDict

import numpy as np

from classifier.labels import SPAN_LABELS

#: ``toxicity`` probability from which a word is part of a span (the shipped model
#: carries its own, tuned on ToxicSpans dev, in its config).
DEFAULT_SPAN_THRESHOLD = 0.5

#: One token's character range ``[start, end)`` in the text.
Offset = tuple[int, int]


class Span(TypedDict):
    """One toxic span of a comment: ``text[start:end]``, its type and its score."""

    start: int
    end: int
    label: str
    score: float


def char_values(spans: str, text_length: int, labels: Sequence[str]) -> np.ndarray | None:
    """A ``spans`` column (see :mod:`training.data`) as per-character values
    [text_length, len(labels)], the largest where ranges overlap; ``None`` when the
    row's corpus does not annotate spans (an empty string)."""
    if not spans:
        return None
    values = np.zeros((text_length, len(labels)), dtype=np.float32)
    column = {name: k for k, name in enumerate(labels)}
    for start, end, label, value in json.loads(spans):
        if label in column:
            k = column[label]
            values[start:end, k] = np.maximum(values[start:end, k], value)
    return values


def token_targets(values: np.ndarray, offsets: Sequence[Offset]) -> np.ndarray:
    """Per-token targets [len(offsets), K] from per-character ``values``: the largest
    value over the token's characters (0 for a token with no characters)."""
    out = np.zeros((len(offsets), values.shape[1]), dtype=np.float32)
    for t, (start, end) in enumerate(offsets):
        end = min(end, values.shape[0])
        if start < end:
            out[t] = values[start:end].max(axis=0)
    return out


def decode_spans(
    offsets: Sequence[Offset],
    word_ids: Sequence[int | None],
    probs: np.ndarray,
    labels: Sequence[str],
    threshold: float = DEFAULT_SPAN_THRESHOLD,
) -> list[Span]:
    """Character spans from per-token probabilities ``probs`` [n_tokens, K] (columns
    named by ``labels``, which must hold ``toxicity``).

    A word is in a span when its highest ``toxicity`` probability reaches
    ``threshold``; consecutive such words form one span. A span's ``score`` is its
    highest ``toxicity`` probability and its ``label`` the type (of ``labels`` other
    than ``toxicity``) with the highest probability inside it, or ``toxicity`` when
    no type reaches half the threshold.
    """
    if "toxicity" not in labels:
        raise ValueError(f"span labels {list(labels)} lack 'toxicity'")
    if len(offsets) != len(word_ids) or len(offsets) != probs.shape[0]:
        raise ValueError(
            f"got {len(offsets)} offsets, {len(word_ids)} word ids and {probs.shape[0]} tokens"
        )
    any_col = list(labels).index("toxicity")
    typed = [k for k, name in enumerate(labels) if name != "toxicity"]
    # words in order: (start, end, highest probability per label)
    words: list[tuple[int, int, np.ndarray]] = []
    last_word: int | None = None
    for (start, end), word, p in zip(offsets, word_ids, probs, strict=True):
        if end <= start:
            continue
        if word is not None and word == last_word and words:
            s, _, best = words[-1]
            words[-1] = (s, end, np.maximum(best, p))
        else:
            words.append((start, end, p.copy()))
        last_word = word
    spans: list[Span] = []
    run: list[tuple[int, int, np.ndarray]] = []
    for index in range(len(words) + 1):
        if index < len(words) and words[index][2][any_col] >= threshold:
            run.append(words[index])
            continue
        if run:
            best = np.max(np.stack([w[2] for w in run]), axis=0)
            label = "toxicity"
            if typed:
                k = max(typed, key=lambda c: best[c])
                if best[k] >= threshold / 2:
                    label = labels[k]
            spans.append(
                {
                    "start": int(run[0][0]),
                    "end": int(run[-1][1]),
                    "label": label,
                    "score": round(float(best[any_col]), 4),
                }
            )
            run = []
    return spans


def span_f1(predicted: Sequence[int], gold: Sequence[int]) -> float:
    """SemEval-2021 Task 5's per-post F1 over character offsets: 1 when both are empty,
    0 when only one is."""
    pred, true = set(predicted), set(gold)
    if not true:
        return 1.0 if not pred else 0.0
    if not pred:
        return 0.0
    both = len(pred & true)
    return 2 * both / (len(pred) + len(true))


def span_chars(spans: Sequence[Span]) -> list[int]:
    """The character offsets the spans cover, sorted."""
    return sorted({i for s in spans for i in range(s["start"], s["end"])})


__all__ = [
    "DEFAULT_SPAN_THRESHOLD",
    "SPAN_LABELS",
    "Span",
    "char_values",
    "decode_spans",
    "span_chars",
    "span_f1",
    "token_targets",
]


# --------------------------------------------------------------------------- explaining

#: The toxicity probability at or above which a label holds a comment when no policy says
#: otherwise: the shipped policy's review threshold for every span label.
DEFAULT_HOLD = 0.5

#: Words that name a group of people by religion, ethnicity, nationality, gender, sexuality
#: or disability, lowercased. A span made of these alone (and the function words below) does
#: not explain a decision: "Muslims" is not abuse, "Muslims are scum" is. Not exhaustive: a
#: term missing here may still be highlighted on its own when the model marks it.
IDENTITY_TERMS: frozenset[str] = frozenset(
    """
    muslim muslims islam islamic moslem moslems jew jews jewish judaism christian christians
    christianity catholic catholics protestant protestants mormon mormons hindu hindus sikh
    sikhs buddhist buddhists atheist atheists religious black blacks white whites asian asians
    african africans arab arabs latino latinos latina latinas hispanic hispanics mexican
    mexicans chinese indian indians native indigenous aboriginal immigrant immigrants migrant
    migrants refugee refugees foreigner foreigners palestinian palestinians israeli israelis
    somali somalis syrian syrians iranian iranians pakistani pakistanis russian russians
    ukrainian ukrainians american americans canadian canadians european europeans gay gays
    lesbian lesbians bisexual bisexuals homosexual homosexuals heterosexual straight queer lgbt
    lgbtq trans transgender transgenders nonbinary woman women man men female females male
    males girl girls boy boys disabled deaf blind elderly old young liberal liberals
    conservative conservatives
    """.split()  # noqa: SIM905
)
_FILLER = frozenset("the a an of and or all some most many people person folks community".split())  # noqa: SIM905

#: Which span types explain a held label: a typed span explains its own label; an untyped
#: (``toxicity``) span, toxic words of no decided type, explains any held label.
_EXPLAINS: dict[str, frozenset[str]] = {
    "toxicity": frozenset({"toxicity", "severe_toxicity", "insult", "obscene", "identity_attack", "threat"}),
    "insult": frozenset({"insult", "toxicity", "severe_toxicity"}),
    "obscene": frozenset({"obscene", "toxicity", "severe_toxicity"}),
    "identity_attack": frozenset({"identity_attack", "toxicity", "severe_toxicity"}),
    "threat": frozenset({"threat", "toxicity", "severe_toxicity"}),
}  # fmt: skip


def only_identity_terms(words: str) -> bool:
    """Whether ``words`` names a group and nothing else ("Muslims", "the Jewish community")."""
    tokens = ["".join(c for c in w if c.isalnum()).lower() for w in words.split()]
    tokens = [t.removesuffix("s") if t not in IDENTITY_TERMS else t for t in tokens if t]
    named = [t for t in tokens if t not in _FILLER]
    return bool(named) and all(t in IDENTITY_TERMS for t in named)


def explaining_spans(
    spans: Sequence[Span],
    text: str,
    scores: dict[str, float],
    holds: Mapping[str, float],
) -> list[Span]:
    """The spans that explain why the comment is held (issue 41, rule 3).

    A label *holds* the comment when its score reaches its threshold in ``holds`` (the
    policy's thresholds). A span is kept only when a label it explains holds (a typed span
    explains its own label and the general ``toxicity``; an untyped one any held label), and
    never when it is an identity term on its own. So an approved comment carries no spans,
    and "I love Muslims." carries none even where the head marks "Muslims".
    """
    held = {label for label, threshold in holds.items() if scores.get(label, 0.0) >= threshold}
    if not held:
        return []
    return [
        span
        for span in spans
        if _EXPLAINS.get(span["label"], frozenset()) & held
        and not only_identity_terms(text[span["start"] : span["end"]])
    ]
