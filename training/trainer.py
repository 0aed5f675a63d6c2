"""Fine-tune a :class:`~classifier.modeling.ThreadguardModel` on a mix of corpora.

The loop is small on purpose: corpora come in through the adapters as
``datasets`` in the common format, are mixed by their recipe weights, batched
by length (little padding on a CPU), and trained with masked multi-task loss.
Every ``eval_every`` steps the dev splits are scored; the best model so far
(by ``early_stopping_metric``) is saved with ``save_pretrained`` and a
checkpoint is written so that an interrupted run resumes where it stopped.
The same seed gives the same model.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections import Counter, defaultdict
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import datasets
import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm
from transformers import get_scheduler

from classifier.inference import Predictor
from classifier.labels import STANCE_LABELS, TOXICITY_LABELS
from classifier.modeling import (
    ModelConfig,
    StanceHead,
    ThreadguardModel,
    apply_lora,
    compute_loss,
    select_heads,
)
from training.config import CorpusEntry, TrainConfig
from training.corpora import load_corpus
from training.metrics import dev_metrics

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoint"
LOG_FILE = "train_log.jsonl"


@dataclass
class CorpusData:
    """One corpus's splits, as the trainer uses them."""

    name: str
    train: datasets.Dataset | None
    dev: datasets.Dataset | None


@dataclass
class TrainResult:
    """Where the model went and how training went."""

    output_dir: Path
    steps: int
    best_metric: float | None
    best_step: int | None
    history: list[dict[str, Any]] = field(default_factory=list)


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_corpora(
    config: TrainConfig, only: Collection[str] | None = None, train: bool = True
) -> list[CorpusData]:
    """Load the recipe's corpora (those named in ``only``, default all): their train
    splits as the recipe samples them (None with ``train=False``) and their dev splits
    as checkpoints are chosen on."""
    out = []
    for entry in config.corpora:
        if only is not None and entry.name not in only:
            continue
        splits = load_corpus(entry.name, config.data_root, hub_id=entry.hub_id)
        assert isinstance(splits, datasets.DatasetDict)
        train_rows = _train_rows(splits.get("train"), entry, config) if train else None
        out.append(CorpusData(entry.name, train_rows, _dev_rows(splits.get("dev"), entry, config)))
    return out


def _train_rows(
    train: datasets.Dataset | None, entry: CorpusEntry, config: TrainConfig
) -> datasets.Dataset | None:
    if train is not None and entry.max_examples and len(train) > entry.max_examples:
        train = train.shuffle(seed=config.seed).select(range(entry.max_examples))
    if train is not None and entry.assume:
        train = train.map(_assume, fn_kwargs={"values": dict(entry.assume)})
    if train is not None and config.comment_only:
        train = train.map(_comment_alone)
    return train


def _dev_rows(
    dev: datasets.Dataset | None, entry: CorpusEntry, config: TrainConfig
) -> datasets.Dataset | None:
    cap = entry.eval_max_examples or config.eval_max_examples
    if dev is not None and cap and len(dev) > cap:
        dev = dev.shuffle(seed=config.seed).select(range(cap))
    if dev is not None and config.comment_only:
        dev = dev.map(_comment_alone)
    return dev


def _comment_alone(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` without its target and context (a ``comment_only`` recipe)."""
    return {"target": "", "context": ""}


def _assume(row: dict[str, Any], values: Mapping[str, float]) -> dict[str, Any]:
    """``row`` with each label of ``values`` set where the corpus left it unknown."""
    return {k: float(v) if row[k] < 0 else row[k] for k, v in values.items()}


def head_dev_splits(
    model_config: ModelConfig, head: str, corpora: Sequence[CorpusData]
) -> list[tuple[str, datasets.Dataset]]:
    """(name, dev split) of each corpus trained through stance head ``head`` whose dev
    split has stance labels."""
    return [
        (c.name, c.dev)
        for c in corpora
        if model_config.head_for(c.name) == head
        and c.dev is not None
        and any(s >= 0 for s in c.dev["stance"])
    ]


def learned_labels(train: datasets.Dataset) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The stance classes and toxicity labels the training data actually annotates."""
    stance = {name for classes in train["stance_classes"] for name in classes}
    stance |= {STANCE_LABELS[i] for i in train["stance"] if i >= 0}
    return tuple(n for n in STANCE_LABELS if n in stance), _both_kinds(train, TOXICITY_LABELS)


def _both_kinds(train: datasets.Dataset, names: Sequence[str]) -> tuple[str, ...]:
    """The label columns of ``names`` with both positive and negative examples in
    ``train``: all-negative data teaches nothing to score."""
    found = []
    for name in names:
        values = np.asarray(train[name], dtype=np.float32)
        if (values >= 0.5).any() and ((values >= 0) & (values < 0.5)).any():
            found.append(name)
    return tuple(found)


def learned_span_labels(train: datasets.Dataset, asked: Sequence[str]) -> tuple[str, ...]:
    """The span labels of ``asked`` that some training row marks with a share >= 0.5."""
    found: set[str] = set()
    for spans in train["spans"]:
        if spans:
            found.update(label for _, _, label, value in json.loads(spans) if value >= 0.5)
    return tuple(n for n in asked if n in found)


def head_classes(
    train: datasets.Dataset, config: ModelConfig, stance_labels: Sequence[str]
) -> tuple[StanceHead, ...]:
    """``config``'s stance heads, each with the classes of ``stance_labels`` its corpora
    annotate in ``train`` (of those the recipe gives the head, when it gives some).

    Raises ``ValueError`` for a head that would learn fewer than two classes.
    """
    found: dict[str, set[str]] = {head.name: set() for head in config.stance_heads}
    columns = zip(train["source"], train["stance_classes"], train["stance"], strict=True)
    for source, classes, label in columns:
        # a corpus with no class list annotates at least the labels it uses
        found[config.head_for(source)].update(classes, [STANCE_LABELS[label]] if label >= 0 else [])
    heads = []
    for head in config.stance_heads:
        allowed = head.classes or stance_labels
        classes = tuple(n for n in stance_labels if n in found[head.name] and n in allowed)
        if len(classes) < 2:
            raise ValueError(
                f"stance head {head.name!r} would learn {list(classes)}: its corpora "
                f"{list(head.corpora) or '(the unnamed ones)'} need at least two stance classes"
            )
        heads.append(replace(head, classes=classes))
    return tuple(heads)


def mix_training_data(corpora: Sequence[CorpusData], config: TrainConfig) -> datasets.Dataset:
    """Concatenate the train splits, each repeated or subsampled by its recipe weight."""
    rng = np.random.default_rng(config.seed)
    parts = []
    for entry, data in zip(config.corpora, corpora, strict=True):
        if data.train is None or len(data.train) == 0:
            logger.warning("%s has no train split; used for evaluation only", entry.name)
            continue
        n = len(data.train)
        whole, frac = divmod(entry.weight, 1.0)
        indices = np.concatenate(
            [np.arange(n)] * int(whole) + [rng.permutation(n)[: round(frac * n)]]
        )
        parts.append(data.train.select(indices.tolist()))
        logger.info("train mix: %s %d examples (weight %s)", entry.name, len(indices), entry.weight)
    if not parts:
        raise ValueError("no corpus of the recipe has a train split")
    return datasets.concatenate_datasets(parts)


def class_weights(
    train: datasets.Dataset,
    model: ThreadguardModel,
    how: str,
    stance_loss_weights: Mapping[str, float] | None = None,
) -> tuple[torch.Tensor | None, torch.Tensor | None, np.ndarray | None]:
    """Loss weights from label frequencies: (stance class weights, toxicity positive
    weights, per-example stance weights).

    ``balanced`` weighs a class by n / (k * count), ``sqrt`` by the square root
    of that (milder); both over the whole mix. ``corpus_balanced`` and
    ``corpus_sqrt`` do the same within each corpus, per example, so that a rare
    class of a small corpus (RumourEval's ``deny``) is not drowned by another
    corpus's frequent one. Weights are normalised to mean 1 and capped at 10.
    ``stance_loss_weights`` (corpus name → factor, a recipe's ``stance_loss_weight``)
    then multiply the per-example stance weights of that corpus's rows.
    """
    stance = np.asarray(train["stance"])
    scaled = {k: v for k, v in (stance_loss_weights or {}).items() if v != 1.0}
    sources = np.asarray(train["source"]) if scaled or how.startswith("corpus") else None
    if how == "none":
        return None, None, _scale_by_corpus(None, sources, stance, scaled)
    power = 1.0 if how.endswith("balanced") else 0.5
    stance_w = example_w = None
    if sources is not None and how.startswith("corpus"):
        example_w = np.zeros(len(stance), dtype=np.float32)
        for source in np.unique(sources[stance >= 0]):
            rows = (sources == source) & (stance >= 0)
            classes, counts = np.unique(stance[rows], return_counts=True)
            per_class = (counts.sum() / (len(classes) * counts)) ** power
            example_w[rows] = per_class[np.searchsorted(classes, stance[rows])]
        labelled = stance >= 0
        if labelled.any():
            example_w[labelled] = np.minimum(example_w[labelled] / example_w[labelled].mean(), 10.0)
    else:
        class_counts = Counter(STANCE_LABELS[i] for i in stance if i >= 0)
        if class_counts:
            total = sum(class_counts.values())
            raw = [
                (total / (len(class_counts) * class_counts[n])) ** power if class_counts[n] else 0.0
                for n in model.stance_labels
            ]
            present = [w for w in raw if w > 0]
            mean = sum(present) / len(present)
            stance_w = torch.tensor([min(w / mean, 10.0) if w else 1.0 for w in raw])
    pos = []
    for name in model.toxicity_labels:
        values = np.asarray(train[name], dtype=np.float32)
        known = values[values >= 0]
        p = float(known.mean()) if len(known) else 0.0
        pos.append(min(((1 - p) / p) ** power, 10.0) if 0 < p < 1 else 1.0)
    return stance_w, torch.tensor(pos), _scale_by_corpus(example_w, sources, stance, scaled)


def _scale_by_corpus(
    example_w: np.ndarray | None,
    sources: np.ndarray | None,
    stance: np.ndarray,
    factors: Mapping[str, float],
) -> np.ndarray | None:
    """``example_w`` (ones where absent) with each named corpus's labelled rows scaled."""
    if not factors or sources is None:
        return example_w
    weights = example_w.copy() if example_w is not None else (stance >= 0).astype(np.float32)
    for name, factor in factors.items():
        weights[(sources == name) & (stance >= 0)] *= factor
    return weights


def batch_order(
    lengths: np.ndarray, batch_size: int, seed: int, epoch: int, group: bool
) -> list[list[int]]:
    """Seeded batches for one epoch; with ``group``, examples of similar length share a batch."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    if group:
        chunk = batch_size * 50
        order = np.concatenate(
            [
                order[i : i + chunk][np.argsort(lengths[order[i : i + chunk]], kind="stable")]
                for i in range(0, len(order), chunk)
            ]
        )
    batches = [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def _rows(dataset: datasets.Dataset, indices: Sequence[int]) -> list[dict[str, Any]]:
    columns = dataset[list(indices)]
    return [
        dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)
    ]


def _device(config: TrainConfig) -> torch.device:
    if config.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if config.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but torch sees no CUDA device")
    return torch.device(config.device)


def predict_dataset(
    model: ThreadguardModel,
    dataset: datasets.Dataset,
    batch_size: int,
    stance_head: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Stance [N, S] and toxicity [N, T] probabilities for a common-format split.

    Goes through :class:`~classifier.inference.Predictor`, the path ``threadguard
    score`` uses, and leaves the model in the mode it found it in. ``stance_head``
    names the head whose stance is returned (default: the comment output).
    """
    was_training = model.training
    rows = dataset.select_columns(["target", "context", "text"])
    try:
        predictor = Predictor(model, batch_size=batch_size, device=model.device)
        return predictor.predict_arrays(rows, stance_head=stance_head)
    finally:
        model.train(was_training)


def evaluate_dev(
    model: ThreadguardModel,
    corpora: Sequence[CorpusData],
    batch_size: int,
    score_corpora: Sequence[str] = (),
) -> dict[str, float]:
    """Dev metrics per corpus and ``dev/score``, the mean primary metric of
    ``score_corpora`` (default: of every corpus)."""
    metrics: dict[str, float] = {}
    primaries = []
    for data in corpora:
        if data.dev is None or len(data.dev) == 0:
            continue
        head = model.config.head_for(data.name)
        stance, toxicity = predict_dataset(model, data.dev, batch_size, head)
        found = dev_metrics(
            data.dev, stance, toxicity, model.stance_labels, model.toxicity_labels, data.name
        )
        for key, value in found.items():
            metrics[f"dev/{data.name}/{key}"] = value
        if "primary" in found and (not score_corpora or data.name in score_corpora):
            primaries.append(found["primary"])
    if primaries:
        metrics["dev/score"] = float(np.mean(primaries))
    return metrics


def _save_checkpoint(
    path: Path,
    model: ThreadguardModel,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    state: Mapping[str, Any],
) -> None:
    path.mkdir(parents=True, exist_ok=True)
    tmp = path / "state.pt.tmp"
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            **state,
        },
        tmp,
    )
    tmp.replace(path / "state.pt")  # atomic: a run killed mid-save keeps the last checkpoint


def train(
    config: TrainConfig, output_dir: str | Path | None = None, resume: bool = True
) -> TrainResult:
    """Train a model from ``config`` into ``output_dir`` (default: ``config.output_dir``).

    The best model by ``config.early_stopping_metric`` on the dev splits is
    saved there with ``save_pretrained`` (the final one when no dev split
    exists); with ``config.ema_decay`` that is the moving average of the
    weights, which is also what the dev splits score. With ``resume``, a
    checkpoint left there by an interrupted run is picked up.
    """
    out = Path(output_dir or config.output_dir)
    # checkpoints and the log stay out of the model folder, which may be shipped as is
    work = Path(config.checkpoint_dir) if config.checkpoint_dir else out / CHECKPOINT_DIR
    out.mkdir(parents=True, exist_ok=True)
    set_seed(config.seed)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    device = _device(config)

    corpora = load_corpora(config)
    for head in config.stance_offsets:  # fail now, not after hours of training
        if not head_dev_splits(config.model, head, corpora):
            raise ValueError(
                f"stance_offsets: stance head {head!r} has no corpus with a dev split with "
                "stance labels to fit its offsets on"
            )
    for entry, data in zip(config.corpora, corpora, strict=True):
        if entry.stance_loss_weight != 1.0 and (
            data.train is None or not any(v >= 0 for v in data.train["stance"])
        ):
            raise ValueError(
                f"corpus {entry.name}: stance_loss_weight {entry.stance_loss_weight!r} has "
                "nothing to weigh: its training rows have no stance labels"
            )
    comment_head = config.model.heads[0].name
    if config.reply_offsets:
        from training.offsets import labelled_replies

        dev = head_dev_splits(config.model, comment_head, corpora)
        if not any(labelled_replies(split).any() for _, split in dev):
            raise ValueError(
                f"reply_offsets: no dev split of the comment head {comment_head!r} has a "
                "labelled reply (a row with a context) to fit them on"
            )
    train_data = mix_training_data(corpora, config)
    stance_labels, toxicity_labels = learned_labels(train_data)
    stance_labels = tuple(n for n in config.model.stance_labels if n in stance_labels)
    toxicity_labels = tuple(n for n in config.model.toxicity_labels if n in toxicity_labels)
    if len(stance_labels) < 2:
        stance_labels = config.model.stance_labels  # no stance data: head stays untrained
        logger.warning("the recipe has no stance corpus; the stance head is not trained")
    if not toxicity_labels:
        toxicity_labels = config.model.toxicity_labels  # no toxicity data: head stays untrained
        logger.warning("the recipe has no toxicity corpus; the toxicity head is not trained")
    heads = config.model.stance_heads
    if heads:
        heads = head_classes(train_data, config.model, stance_labels)
    span_labels = learned_span_labels(train_data, config.model.span_labels)
    if span_labels and "toxicity" not in span_labels:
        span_labels = ()
    constructive_labels = tuple(
        n
        for n in _both_kinds(train_data, config.model.constructive_labels)
        if n in config.model.constructive_labels
    )
    for kind, asked, found in (
        ("span", config.model.span_labels, span_labels),
        ("constructive", config.model.constructive_labels, constructive_labels),
    ):
        if set(asked) - set(found):
            logger.warning(
                "no training data for %s labels %s", kind, sorted(set(asked) - set(found))
            )
    model_config = replace(
        config.model,
        stance_labels=stance_labels,
        toxicity_labels=toxicity_labels,
        stance_heads=heads,
        span_labels=span_labels,
        constructive_labels=constructive_labels,
    )
    logger.info(
        "labels learned: stance %s, toxicity %s, spans %s, constructive %s",
        stance_labels,
        toxicity_labels,
        span_labels,
        constructive_labels,
    )

    model = ThreadguardModel.from_encoder(model_config)
    if model_config.lora is not None:
        apply_lora(model)
    model.training_config = config.to_dict()
    model.to(device).train()
    ema = (
        AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay))
        if config.ema_decay is not None
        else None
    )
    # what dev scores and what is saved
    scored = cast(ThreadguardModel, ema.module) if ema is not None else model
    stance_w, tox_pos, example_w = class_weights(
        train_data,
        model,
        config.class_weighting,
        {entry.name: entry.stance_loss_weight for entry in config.corpora},
    )

    head_params = [p for head in model._heads().values() for p in head.parameters()]
    head_ids = {id(p) for p in head_params}
    encoder_params = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    optimizer = torch.optim.AdamW(
        [
            {"params": encoder_params, "lr": config.learning_rate},
            {"params": head_params, "lr": config.head_learning_rate or config.learning_rate},
        ],
        weight_decay=config.weight_decay,
    )
    per_step = config.batch_size * config.grad_accumulation
    steps_per_epoch = math.ceil(len(train_data) / per_step)
    total_steps = config.max_steps or math.ceil(config.epochs * steps_per_epoch)
    scheduler = get_scheduler(
        config.scheduler if config.scheduler != "constant" else "constant_with_warmup",
        optimizer,
        num_warmup_steps=int(config.warmup_ratio * total_steps),
        num_training_steps=total_steps,
    )

    step, bad_evals = 0, 0
    best: float | None = None
    best_step: int | None = None
    history: list[dict[str, Any]] = []
    ckpt = work / "state.pt"
    if resume and ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        step, best, best_step, bad_evals = (
            state["step"], state["best"], state["best_step"], state["bad_evals"]
        )  # fmt: skip
        if ema is not None:
            if "ema" in state:
                ema.load_state_dict(state["ema"])
            else:
                logger.warning("the checkpoint has no weight average: it starts from step %d", step)
        history = state["history"]
        logger.info("resumed from %s at step %d", ckpt, step)

    lengths = np.asarray(
        [len(t) + len(g) for t, g in zip(train_data["text"], train_data["target"], strict=True)]
    )
    stance_w = stance_w.to(device) if stance_w is not None else None
    tox_pos = tox_pos.to(device) if tox_pos is not None else None

    def micro_batches() -> Iterator[list[int]]:
        epoch = 0
        while True:
            yield from batch_order(
                lengths, config.batch_size, config.seed, epoch, config.length_grouping
            )
            epoch += 1

    feed = micro_batches()
    for _ in range(step * config.grad_accumulation):  # skip what a resumed run already saw
        next(feed)

    work.mkdir(parents=True, exist_ok=True)
    if step == 0:  # a fresh run: a log left by an earlier run in the same folder is not its history
        (work / LOG_FILE).unlink(missing_ok=True)
        if config.eval_at_start:
            # the untrained model's dev figures: the baseline later evaluations are read against
            record = {
                "step": 0,
                **evaluate_dev(model, corpora, config.eval_batch_size, config.dev_score_corpora),
            }
            history.append(record)
            with (work / LOG_FILE).open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
            logger.info("step 0 (untrained): dev/score %s", record.get("dev/score"))

    progress = tqdm(total=total_steps, initial=step, desc="train", unit="step", dynamic_ncols=True)
    log = (work / LOG_FILE).open("a", encoding="utf-8")
    seen, started = 0, time.perf_counter()
    stop = False
    try:
        while step < total_steps and not stop:
            optimizer.zero_grad(set_to_none=True)
            parts: dict[str, float] = defaultdict(float)
            for _ in range(config.grad_accumulation):
                indices = next(feed)
                rows = _rows(train_data, indices)
                batch = model.collate(rows).to(device)
                labels = {k: batch.pop(k) for k in ("stance", "stance_class_mask", "toxicity")}
                span_targets = batch.pop("span_targets", None)
                constructive = batch.pop("constructive", None)
                heads = batch.pop("stance_head", None)
                output = select_heads(model(**batch), heads)
                loss, loss_parts = compute_loss(
                    output,
                    labels["stance"],
                    labels["stance_class_mask"],
                    labels["toxicity"],
                    stance_class_weights=stance_w,
                    toxicity_pos_weight=tox_pos,
                    stance_weight=config.stance_weight,
                    toxicity_weight=config.toxicity_weight,
                    stance_example_weights=(
                        torch.from_numpy(example_w[indices]).to(device)
                        if example_w is not None
                        else None
                    ),
                    span_targets=span_targets,
                    constructive=constructive,
                    span_weight=config.span_weight,
                    constructive_weight=config.constructive_weight,
                )
                (loss / config.grad_accumulation).backward()
                for key, part in loss_parts.items():
                    parts[key] += part.item() / config.grad_accumulation
                parts["loss"] += loss.item() / config.grad_accumulation
                seen += len(rows)
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            if ema is not None:
                ema.update_parameters(model)
            step += 1
            rate = seen / max(time.perf_counter() - started, 1e-9)
            progress.update(1)
            progress.set_postfix(loss=f"{parts['loss']:.3f}", ex_s=f"{rate:.0f}")

            if step % config.eval_every == 0 or step == total_steps:
                metrics = evaluate_dev(
                    scored, corpora, config.eval_batch_size, config.dev_score_corpora
                )
                record = {
                    "step": step,
                    **{f"loss/{k}" if k != "loss" else k: v for k, v in parts.items()},
                    "examples_per_s": rate,
                    **metrics,
                }
                history.append(record)
                log.write(json.dumps(record) + "\n")
                log.flush()
                value = metrics.get(config.early_stopping_metric)
                if value is None and metrics:
                    raise ValueError(
                        f"early_stopping_metric {config.early_stopping_metric!r} is not among "
                        f"the dev metrics {sorted(metrics)}"
                    )
                if value is None or best is None or value > best:
                    best, best_step, bad_evals = value, step, 0
                    scored.save_pretrained(out, mode=config.save_mode)
                    logger.info(
                        "step %d: %s %.4f, saved", step, config.early_stopping_metric, value or 0
                    )
                else:
                    bad_evals += 1
                    patience = config.early_stopping_patience
                    stop = patience is not None and bad_evals >= patience
                _save_checkpoint(
                    work,
                    model,
                    optimizer,
                    scheduler,
                    {
                        "step": step,
                        "best": best,
                        "best_step": best_step,
                        "bad_evals": bad_evals,
                        "history": history,
                        **({"ema": ema.state_dict()} if ema is not None else {}),
                    },
                )
    finally:
        progress.close()
        log.close()
    if stop:
        logger.info("early stop at step %d: best %s at step %s", step, best, best_step)
    if config.stance_offsets or config.reply_offsets:
        from training.offsets import fit_stance_offsets

        if config.stance_offsets:
            fit_stance_offsets(out, config.stance_offsets, corpora=corpora, refit=False)
        if config.reply_offsets:
            fit_stance_offsets(out, [comment_head], corpora=corpora, refit=False, inputs="replies")
    return TrainResult(out, step, best, best_step, history)
