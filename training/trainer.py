"""Fine-tune a :class:`~classifier.model.network.ThreadguardModel` on a mix of corpora.

The loop is small on purpose: corpora come in through the adapters as
``datasets`` in the common format, are mixed by their recipe weights, batched
by length (little padding on a CPU), and trained with masked multi-task loss.
Every ``eval_every`` steps the dev splits are scored; the best model so far
(by ``early_stopping_metric``) is saved with ``save_pretrained`` and a
checkpoint is written so that an interrupted run resumes where it stopped.
The same seed gives the same model.

Its parts: :mod:`training.mixing` loads the corpora and decides the mix, the labels,
the loss weights and the batch order; :mod:`training.recipe` checks the recipe against
its data and narrows the model config to the labels the mix teaches; :mod:`training.dev`
scores the dev splits; :mod:`training.offsets` fits stance offsets after training. This
module runs the :class:`Trainer`: setup, the step loop, and dev evaluation with
checkpointing.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import datasets
import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm
from transformers import get_scheduler

from classifier.model.network import ThreadguardModel
from training.batches import training_batch
from training.config import TrainConfig
from training.dev import evaluate_dev
from training.lora import apply_lora
from training.losses import batch_loss
from training.mixing import batch_order, class_weights, load_corpora, mix_training_data
from training.offsets import fit_stance_offsets
from training.recipe import check_recipe, model_config_for
from training.warm_start import warm_start

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoint"
LOG_FILE = "train_log.jsonl"


@dataclass
class TrainResult:
    """Where the model went and how training went."""

    output_dir: Path
    steps: int
    best_metric: float | None
    best_step: int | None
    history: list[dict[str, Any]] = field(default_factory=list)


def set_seed(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators: the same seed gives the same model."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _rows(dataset: datasets.Dataset, indices: Sequence[int]) -> list[dict[str, Any]]:
    """The rows of ``dataset`` at ``indices``, as dicts (what ``training_batch`` takes)."""
    columns = dataset[list(indices)]
    return [
        dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)
    ]


def _device(config: TrainConfig) -> torch.device:
    """The recipe's device; ``auto`` takes CUDA when torch sees it."""
    if config.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if config.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but torch sees no CUDA device")
    return torch.device(config.device)


def _save_checkpoint(
    path: Path,
    model: ThreadguardModel,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    state: Mapping[str, Any],
) -> None:
    """Write what a resumed run needs (weights, optimizer, schedule, RNG, ``state``)."""
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


class Trainer:
    """One training run, in the steps :func:`train` takes.

    Setup (the constructor): the seed, the corpora and the mix, the labels it teaches,
    the model (and its weight average with ``ema_decay``), loss weights, the optimizer
    and the schedule, then a checkpoint to resume from. :meth:`run` takes optimizer
    steps (:meth:`train_step`) and, every ``eval_every`` steps, scores the dev splits,
    saves the best model and writes a checkpoint (:meth:`evaluate_and_checkpoint`);
    after the last step it fits stance offsets (:meth:`fit_offsets`).

    The order of the setup is the order the random number generators are drawn on, so
    the same seed gives the same model: keep it.
    """

    def __init__(
        self, config: TrainConfig, output_dir: str | Path | None = None, resume: bool = True
    ) -> None:
        self.config = config
        self.out = Path(output_dir or config.output_dir)
        # checkpoints and the log stay out of the model folder, which may be shipped as is
        self.work = (
            Path(config.checkpoint_dir) if config.checkpoint_dir else self.out / CHECKPOINT_DIR
        )
        self.out.mkdir(parents=True, exist_ok=True)
        set_seed(config.seed)
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        self.device = _device(config)
        self._setup_data()
        self._setup_model()
        self._setup_optimizer()
        self.step, self.bad_evals = 0, 0
        self.best: float | None = None
        self.best_step: int | None = None
        self.history: list[dict[str, Any]] = []
        if resume:
            self._resume()
        self._setup_feed()

    # --- setup ---------------------------------------------------------------------------

    def _setup_data(self) -> None:
        """The corpora (checked against the recipe) and the training mix."""
        self.corpora = load_corpora(self.config)
        check_recipe(self.config, self.corpora)
        self.train_data = mix_training_data(self.corpora, self.config)

    def _setup_model(self) -> None:
        """The model for the labels the mix teaches, its weight average, its loss weights."""
        config = self.config
        model_config = model_config_for(config, self.train_data)
        model = ThreadguardModel.from_encoder(model_config)
        if model_config.lora is not None:
            apply_lora(model)
        if config.init_from is not None:
            warm_start(model, config.init_from)
        model.training_config = config.to_dict()
        model.to(self.device).train()
        self.model = model
        self.ema = (
            AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay))
            if config.ema_decay is not None
            else None
        )
        # what dev scores and what is saved
        self.scored = cast(ThreadguardModel, self.ema.module) if self.ema is not None else model
        self.stance_w, self.tox_pos, self.example_w = class_weights(
            self.train_data,
            model,
            config.class_weighting,
            {entry.name: entry.stance_loss_weight for entry in config.corpora},
        )

    def _setup_optimizer(self) -> None:
        """AdamW (the heads may have their own learning rate) and the learning-rate schedule."""
        config, model = self.config, self.model
        head_params = [p for head in model._heads().values() for p in head.parameters()]
        head_ids = {id(p) for p in head_params}
        encoder_params = [
            p for p in model.parameters() if p.requires_grad and id(p) not in head_ids
        ]
        self.optimizer = torch.optim.AdamW(
            [
                {"params": encoder_params, "lr": config.learning_rate},
                {"params": head_params, "lr": config.head_learning_rate or config.learning_rate},
            ],
            weight_decay=config.weight_decay,
        )
        per_step = config.batch_size * config.grad_accumulation
        steps_per_epoch = math.ceil(len(self.train_data) / per_step)
        self.total_steps = config.max_steps or math.ceil(config.epochs * steps_per_epoch)
        self.scheduler = get_scheduler(
            config.scheduler if config.scheduler != "constant" else "constant_with_warmup",
            self.optimizer,
            num_warmup_steps=int(config.warmup_ratio * self.total_steps),
            num_training_steps=self.total_steps,
        )

    def _resume(self) -> None:
        """Pick up the checkpoint an interrupted run left, if there is one."""
        ckpt = self.work / "state.pt"
        if not ckpt.exists():
            return
        state = torch.load(ckpt, map_location=self.device, weights_only=False)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        self.step, self.best, self.best_step, self.bad_evals = (
            state["step"], state["best"], state["best_step"], state["bad_evals"]
        )  # fmt: skip
        if self.ema is not None:
            if "ema" in state:
                self.ema.load_state_dict(state["ema"])
            else:
                logger.warning(
                    "the checkpoint has no weight average: it starts from step %d", self.step
                )
        self.history = state["history"]
        logger.info("resumed from %s at step %d", ckpt, self.step)

    def _setup_feed(self) -> None:
        """The endless stream of micro-batches, past what a resumed run already saw."""
        config, train_data = self.config, self.train_data
        lengths = np.asarray(
            [len(t) + len(g) for t, g in zip(train_data["text"], train_data["target"], strict=True)]
        )
        self.stance_w = self.stance_w.to(self.device) if self.stance_w is not None else None
        self.tox_pos = self.tox_pos.to(self.device) if self.tox_pos is not None else None

        def micro_batches() -> Iterator[list[int]]:
            epoch = 0
            while True:
                yield from batch_order(
                    lengths, config.batch_size, config.seed, epoch, config.length_grouping
                )
                epoch += 1

        self.feed = micro_batches()
        for _ in range(self.step * config.grad_accumulation):
            next(self.feed)

    # --- the loop ------------------------------------------------------------------------

    def run(self) -> TrainResult:
        """Train to ``max_steps`` (or the epochs) or an early stop; fit offsets; report."""
        config, work = self.config, self.work
        work.mkdir(parents=True, exist_ok=True)
        if self.step == 0:
            # a fresh run: a log left by an earlier run in the same folder is not its history
            (work / LOG_FILE).unlink(missing_ok=True)
            if config.eval_at_start:
                self._evaluate_untrained()
        progress = tqdm(
            total=self.total_steps, initial=self.step, desc="train", unit="step", dynamic_ncols=True
        )
        log = (work / LOG_FILE).open("a", encoding="utf-8")
        seen, started = 0, time.perf_counter()
        stop = False
        try:
            while self.step < self.total_steps and not stop:
                parts, examples = self.train_step()
                seen += examples
                self.step += 1
                rate = seen / max(time.perf_counter() - started, 1e-9)
                progress.update(1)
                progress.set_postfix(loss=f"{parts['loss']:.3f}", ex_s=f"{rate:.0f}")
                if self.step % config.eval_every == 0 or self.step == self.total_steps:
                    stop = self.evaluate_and_checkpoint(parts, rate, log)
        finally:
            progress.close()
            log.close()
        if stop:
            logger.info(
                "early stop at step %d: best %s at step %s", self.step, self.best, self.best_step
            )
        self.fit_offsets()
        return TrainResult(self.out, self.step, self.best, self.best_step, self.history)

    def train_step(self) -> tuple[dict[str, float], int]:
        """One optimizer step over ``grad_accumulation`` micro-batches: the loss and its
        parts (averaged over the micro-batches), and how many examples it read."""
        config, model, device = self.config, self.model, self.device
        self.optimizer.zero_grad(set_to_none=True)
        parts: dict[str, float] = defaultdict(float)
        seen = 0
        for _ in range(config.grad_accumulation):
            indices = next(self.feed)
            rows = _rows(self.train_data, indices)
            batch = training_batch(model, rows).to(device)
            loss, loss_parts = batch_loss(
                model,
                batch,
                stance_class_weights=self.stance_w,
                toxicity_pos_weight=self.tox_pos,
                stance_weight=config.stance_weight,
                toxicity_weight=config.toxicity_weight,
                stance_example_weights=(
                    torch.from_numpy(self.example_w[indices]).to(device)
                    if self.example_w is not None
                    else None
                ),
                span_weight=config.span_weight,
                constructive_weight=config.constructive_weight,
            )
            (loss / config.grad_accumulation).backward()
            for key, part in loss_parts.items():
                parts[key] += part.item() / config.grad_accumulation
            parts["loss"] += loss.item() / config.grad_accumulation
            seen += len(rows)
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update_parameters(model)
        return parts, seen

    # --- dev evaluation and checkpoints ------------------------------------------------------

    def _evaluate_untrained(self) -> None:
        """Step 0: the untrained model's dev figures, the baseline later ones are read against."""
        config = self.config
        record = {
            "step": 0,
            **evaluate_dev(
                self.model, self.corpora, config.eval_batch_size, config.dev_score_corpora
            ),
        }
        self.history.append(record)
        with (self.work / LOG_FILE).open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        logger.info("step 0 (untrained): dev/score %s", record.get("dev/score"))

    def evaluate_and_checkpoint(
        self, parts: Mapping[str, float], rate: float, log: IO[str]
    ) -> bool:
        """Score the dev splits, log the step, save the model if it is the best so far,
        write a checkpoint; True when early stopping says to stop."""
        config = self.config
        metrics = evaluate_dev(
            self.scored, self.corpora, config.eval_batch_size, config.dev_score_corpora
        )
        record = {
            "step": self.step,
            **{f"loss/{k}" if k != "loss" else k: v for k, v in parts.items()},
            "examples_per_s": rate,
            **metrics,
        }
        self.history.append(record)
        log.write(json.dumps(record) + "\n")
        log.flush()
        value = metrics.get(config.early_stopping_metric)
        if value is None and metrics:
            raise ValueError(
                f"early_stopping_metric {config.early_stopping_metric!r} is not among "
                f"the dev metrics {sorted(metrics)}"
            )
        stop = False
        if value is None or self.best is None or value > self.best:
            self.best, self.best_step, self.bad_evals = value, self.step, 0
            self.scored.save_pretrained(self.out, mode=config.save_mode)
            logger.info(
                "step %d: %s %.4f, saved", self.step, config.early_stopping_metric, value or 0
            )
        else:
            self.bad_evals += 1
            patience = config.early_stopping_patience
            stop = patience is not None and self.bad_evals >= patience
        _save_checkpoint(
            self.work,
            self.model,
            self.optimizer,
            self.scheduler,
            {
                "step": self.step,
                "best": self.best,
                "best_step": self.best_step,
                "bad_evals": self.bad_evals,
                "history": self.history,
                **({"ema": self.ema.state_dict()} if self.ema is not None else {}),
            },
        )
        return stop

    def fit_offsets(self) -> None:
        """Fit the recipe's stance offsets and reply offsets into the saved model."""
        config = self.config
        if config.stance_offsets:
            fit_stance_offsets(self.out, config.stance_offsets, corpora=self.corpora, refit=False)
        if config.reply_offsets:
            comment_head = config.model.heads[0].name
            fit_stance_offsets(
                self.out, [comment_head], corpora=self.corpora, refit=False, inputs="replies"
            )


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
    return Trainer(config, output_dir, resume).run()
