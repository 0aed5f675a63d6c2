"""Stance class offsets, chosen on dev splits after training and folded into a head.

A stance head trained on a mix of corpora with class weights ends with decision
boundaries its corpus's metric does not reward: RumourEval's macro-F1 counts a
rare ``deny`` as much as the common ``comment``, and how often the head says
``deny`` depends on the weighting, the mix and the checkpoint. Adding a constant
per class to the head's logits (a prior shift) moves those boundaries without
changing how the head ranks comments within a class. Chosen on the dev splits of
the head's corpora to maximise their primary metric, it is the multi-class
counterpart of a dev-chosen threshold, and test splits stay unseen.

The offsets are added to the head's bias, so the saved model, its ONNX export and
every backend apply them with no code of their own; the saved model records them
(``ThreadguardModel.stance_offsets``) beside the dev figures before and after.

**Reply offsets** (``inputs="replies"``) are the same search with the offsets added
to replies to comments only (:func:`classifier.model.replies.is_reply`: inputs flagged
``reply``, or else with a context), for the comment head. Replies deeper in a thread
have a label mix of their own: RumourEval 2019's dev and test deeper replies (Reddit)
are about 97 % ``comment``, while its training threads (Twitter, 2017) have 7.5 %
``deny`` and 9 % ``support`` there, and the head carries the training mix over.
Depending on the input, these cannot go into the bias; the saved record carries
``"inputs": "replies"`` and every predictor applies it
(:meth:`classifier.model.predictor.BatchPredictor.score_arrays`).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import datasets
import numpy as np
import torch

from classifier.labels import STANCE_LABELS
from classifier.model.network import ThreadguardModel
from classifier.model.replies import REPLY_INPUTS, reply_mask
from training.config import TrainConfig
from training.corpora import CORPORA
from training.dev import predict_dataset
from training.metrics import dev_metrics
from training.mixing import CorpusData, head_dev_splits, load_corpora

logger = logging.getLogger(__name__)

#: offsets tried for each class, in log-probability units
GRID = np.round(np.arange(-3.0, 3.0001, 0.1), 1)


def coordinate_ascent(
    objective: Callable[[np.ndarray], float],
    n: int,
    free: Sequence[int],
    grid: np.ndarray = GRID,
    max_rounds: int = 5,
) -> np.ndarray:
    """Offsets [n] that maximise ``objective``, one coordinate of ``free`` at a time.

    Each coordinate takes the grid value with the best objective, the one nearest
    0 among ties, so a class whose offset changes nothing keeps 0; rounds repeat
    until none changes. Coordinates outside ``free`` stay 0 (the anchor: softmax
    ignores a shift common to all classes).
    """
    offsets = np.zeros(n)
    for _ in range(max_rounds):
        changed = False
        for k in free:
            trial = offsets.copy()
            values = []
            for v in grid:
                trial[k] = v
                values.append(objective(trial))
            best = max(values)
            # ties: nearest 0; grid order breaks an exact tie in |v| toward the negative side
            choice = min(
                (v for v, f in zip(grid, values, strict=True) if f >= best - 1e-12), key=abs
            )
            if choice != offsets[k]:
                offsets[k], changed = float(choice), True
        if not changed:
            break
    return offsets


def labelled_replies(split: datasets.Dataset) -> np.ndarray:
    """Which rows of a common-format split are replies with a stance label: what reply
    offsets are fitted on."""
    return reply_mask(split.select_columns(["context"])) & (np.asarray(split["stance"]) >= 0)


def fit_head_offsets(
    model: ThreadguardModel,
    head: str,
    corpora: Sequence[CorpusData],
    batch_size: int = 64,
    inputs: Literal["all", "replies"] = "all",
) -> dict[str, Any]:
    """Fit offsets for stance head ``head`` on the dev splits of its corpora and return
    the record (also appended to ``model.stance_offsets``).

    The objective is the mean primary metric (:func:`~training.metrics.dev_metrics`,
    the figure checkpoints are chosen by) over the head's corpora that have a dev
    split with stance labels. With ``inputs="all"`` the offsets are added to the
    head's bias; with ``"replies"`` (the comment head only) they shift only the dev
    rows that are replies, and the record (which replaces an earlier one) is what
    predictors apply to replies. The anchor, kept at 0, is the most frequent dev
    class of the rows shifted. Raises ``ValueError`` when the head is unknown, or
    none of its corpora has such a dev split (with a reply, for ``"replies"``).
    """
    names = [h.name for h in model.config.heads]
    if head not in names:
        raise ValueError(f"stance head {head!r} is not one of the model's heads {names}")
    if inputs not in ("all", REPLY_INPUTS):
        raise ValueError(f"inputs {inputs!r} is not 'all' or {REPLY_INPUTS!r}")
    replies_only = inputs == REPLY_INPUTS
    if replies_only and head != names[0]:
        raise ValueError(
            f"reply offsets are applied to the comment head {names[0]!r} only, not {head!r}"
        )
    spec = model.config.heads[names.index(head)]
    labels = model.stance_labels
    dev = head_dev_splits(model.config, head, corpora)
    if not dev:
        raise ValueError(
            f"stance head {head!r}: none of its corpora ({list(spec.corpora) or 'the rest'}) "
            "has a dev split with stance labels to fit offsets on"
        )
    masks = [
        reply_mask(split.select_columns(["context"]))
        if replies_only
        else np.ones(len(split), dtype=bool)
        for _, split in dev
    ]
    if replies_only:
        if not any(labelled_replies(split).any() for _, split in dev):
            raise ValueError(
                f"stance head {head!r}: no dev split of its corpora has a labelled reply (a row "
                "with a context) to fit reply offsets on"
            )
        # fitted on the head's own output: an earlier reply record would shift it
        model.stance_offsets = [
            r for r in model.stance_offsets or [] if r.get("inputs") != REPLY_INPUTS
        ] or None
    logs = []
    for _, split in dev:
        probs, _ = predict_dataset(model, split, batch_size, head)
        logs.append(np.log(np.clip(probs, 1e-12, None)))

    def objective(offsets: np.ndarray) -> float:
        scores = []
        for (name, split), log, mask in zip(dev, logs, masks, strict=True):
            shifted = log.copy()
            shifted[mask] += offsets
            found = dev_metrics(split, np.exp(shifted), np.zeros((len(log), 0)), labels, (), name)
            if "primary" in found:
                scores.append(found["primary"])
        return float(np.mean(scores)) if scores else 0.0

    gold = [
        STANCE_LABELS[s]
        for (_, split), mask in zip(dev, masks, strict=True)
        for s, shifted in zip(split["stance"], mask, strict=True)
        if s >= 0 and shifted
    ]
    present = [c for c in spec.classes if c in gold]
    anchor = max(present, key=gold.count)
    free = [labels.index(c) for c in present if c != anchor]
    before = objective(np.zeros(len(labels)))
    offsets = coordinate_ascent(objective, len(labels), free)
    after = objective(offsets)
    if not replies_only:
        with torch.no_grad():
            bias = model.stance_head.bias.view(len(names), len(labels))
            bias[names.index(head)] += torch.as_tensor(
                offsets, dtype=bias.dtype, device=bias.device
            )
    record = {
        "head": head,
        "inputs": inputs,
        "corpora": [name for name, _ in dev],
        "dev_rows": sum(len(split) for _, split in dev),
        "rows_shifted": int(sum(mask.sum() for mask in masks)),
        "anchor": anchor,
        "offsets": {labels[k]: float(offsets[k]) for k in free},
        "dev_before": before,
        "dev_after": after,
    }
    model.stance_offsets = [*(model.stance_offsets or []), record]
    logger.info(
        "stance head %s (%s): offsets %s; dev primary %.4f -> %.4f (%s)",
        head, inputs, record["offsets"], before, after, ", ".join(name for name, _ in dev),
    )  # fmt: skip
    return record


def fit_stance_offsets(
    model_dir: str | Path,
    heads: Sequence[str] | None = None,
    output_dir: str | Path | None = None,
    data_root: str | None = None,
    batch_size: int | None = None,
    corpora: Sequence[CorpusData] | None = None,
    refit: bool = True,
    inputs: Literal["all", "replies"] = "all",
) -> list[dict[str, Any]]:
    """Fit stance offsets for a saved model and save it (in place, or a copy in
    ``output_dir``); return one record per head fitted.

    The dev splits are those the model's recipe (its saved ``training_config``)
    chose checkpoints on: the same corpora, caps and seed (or ``corpora``, when the
    trainer passes the ones it has loaded). ``heads`` default to the recipe's
    ``stance_offsets``, else the comment head. With ``refit=False`` a head the
    saved model already has offsets for is left alone (a resumed run that had
    finished). ``inputs="replies"`` fits reply offsets (:func:`fit_head_offsets`) for
    the comment head (the default head then). Only the heads file and the model's
    metadata change.
    """
    source = Path(model_dir)
    model = ThreadguardModel.from_pretrained(source)
    if model.training_config is None:
        raise ValueError(f"{source}: the model has no training config to find its dev splits")
    values = dict(model.training_config)
    if data_root is not None:
        values["data_root"] = data_root
    recipe = TrainConfig.from_dict(values)
    comment_head = model.config.heads[0].name
    if inputs == REPLY_INPUTS:
        heads = list(heads or [comment_head])
    else:
        heads = list(heads or recipe.stance_offsets or [comment_head])
    if not refit:
        done = {r["head"] for r in model.stance_offsets or [] if r.get("inputs", "all") == inputs}
        heads = [h for h in heads if h not in done]
    if corpora is None:
        wanted = {
            c.name
            for c in recipe.corpora
            if model.config.head_for(c.name) in heads
            and c.name in CORPORA
            and CORPORA[c.name].task == "stance"
        }
        corpora = load_corpora(recipe, only=wanted, train=False)
    batch = batch_size or recipe.eval_batch_size
    records = [fit_head_offsets(model, h, corpora, batch, inputs) for h in heads]
    target = Path(output_dir) if output_dir is not None else source
    if target.resolve() != source.resolve():
        shutil.copytree(source, target, dirs_exist_ok=True)
    if records or target != source:
        model.save_heads(target)
    return records
