"""Train the one-pass model's stance head over the frozen comment encoder.

The encoder's token states of every text the stance corpora hold are computed once
(:mod:`training.stance_states`); this module trains :class:`CrossStanceHead` on them with
the stance corpora's train splits, chooses the epoch on their dev splits (the mean of each
corpus's primary metric, the figure the cross-encoder's checkpoints were chosen by), fits
the comment head's reply offsets on RumourEval dev, and reports every split.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from classifier.labels import STANCE_LABELS
from classifier.model.config_head import StanceHeadConfig
from classifier.model.one_pass import pad_states
from classifier.model.replies import is_reply
from classifier.model.stance_head import CrossStanceHead, StanceHeadModule, UpperLayersHead
from training.metrics import primary_for, stance_metrics
from training.offsets import coordinate_ascent
from training.stance_states import StateStore

logger = logging.getLogger(__name__)

#: The heads of the shipped stance model: name, corpora, classes (the comment head first).
HEADS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("comment", ("rumoureval2019",), ("support", "deny", "query", "comment")),
    ("claim", ("fnc1", "arc"), ("support", "deny", "comment", "unrelated")),
    ("topic", ("semeval2016_stance",), ("support", "deny", "comment")),
)


@dataclass
class Example:
    corpus: str
    head: int
    text: str
    target: str
    context: str
    label: int  # index into STANCE_LABELS
    reply: bool


def head_classes(labels: Sequence[str] = STANCE_LABELS) -> torch.Tensor:
    return torch.tensor([[name in classes for name in labels] for _, _, classes in HEADS])


def load_examples(data: str, corpora: Sequence[str]) -> dict[str, dict[str, list[Example]]]:
    from training.corpora import read_corpus

    out: dict[str, dict[str, list[Example]]] = {}
    for name in corpora:
        head = next(i for i, (_, cs, _) in enumerate(HEADS) if name in cs)
        out[name] = {
            split: [
                Example(name, head, r["text"], r["target"], r["context"], r["stance"], is_reply(r))
                for r in rows
                if r["stance"] >= 0
            ]
            for split, rows in read_corpus(name, data).splits.items()
        }
    return out


class Batcher:
    """Pads the stored states of a batch of examples into the head's inputs."""

    def __init__(
        self,
        comments: StateStore,
        targets: StateStore,
        layers: Sequence[int],
        stored: Sequence[int],
        target_tokens: int,
        comment_tokens: int,
    ) -> None:
        self.comments, self.targets = comments, targets
        self.pick = [list(stored).index(k) for k in layers]
        self.target_tokens = target_tokens
        self.comment_tokens = comment_tokens

    def _states(self, store: StateStore, text: str, limit: int) -> np.ndarray | None:
        """A target's or context's stored states, its first ``limit`` tokens and the head's
        layers; None for none."""
        return np.asarray(store.get(text))[:limit, self.pick] if text.strip() else None

    def __call__(self, batch: Sequence[Example]) -> tuple[torch.Tensor, ...]:
        # a comment always has states (its special tokens at least); a target may be none
        comments = [
            np.asarray(self.comments.get(e.text))[: self.comment_tokens, self.pick] for e in batch
        ]
        like = comments[0]
        out = []
        for arrays in (
            comments,
            [self._states(self.targets, e.target, self.target_tokens) for e in batch],
            [self._states(self.targets, e.context, self.target_tokens) for e in batch],
        ):
            out += [torch.from_numpy(a) for a in pad_states(arrays, like=like)]
        return tuple(out)


def predict(
    head: StanceHeadModule, batcher: Batcher, examples: Sequence[Example], batch_size: int = 128
) -> np.ndarray:
    """Log-probabilities [N, S] of each example's own head."""
    head.eval()
    out = np.zeros((len(examples), len(STANCE_LABELS)), dtype=np.float32)
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].text))
    with torch.inference_mode():
        for s in range(0, len(order), batch_size):
            rows = order[s : s + batch_size]
            by_head = head(*batcher([examples[i] for i in rows]))
            own = torch.tensor([examples[i].head for i in rows])
            logits = by_head[torch.arange(len(rows)), own]
            out[rows] = torch.log_softmax(logits, dim=-1).numpy()
    return out


def score(
    corpus: str, examples: Sequence[Example], logp: np.ndarray, offsets: np.ndarray | None = None
) -> dict[str, Any]:
    classes = list(HEADS[examples[0].head][2])
    if offsets is not None:
        logp = logp.copy()
        replies = np.array([e.reply for e in examples])
        logp[replies] += offsets
    cols = [STANCE_LABELS.index(c) for c in classes]
    pred = [classes[j] for j in np.argmax(logp[:, cols], axis=1)]
    gold = [STANCE_LABELS[e.label] for e in examples]
    found = stance_metrics(gold, pred, classes, corpus)
    primary = primary_for(corpus).kind
    return {"primary": found[primary], "macro_f1": found["macro_f1"], "n": len(gold)}


def train(args: Any) -> None:
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    states = Path(args.states)
    comments, targets = StateStore.load(states / "comments"), StateStore.load(states / "targets")
    config = StanceHeadConfig(
        kind=args.kind,
        layers=tuple(args.layers),
        dim=args.dim,
        depth=args.depth,
        attention_heads=args.attention_heads,
        ffn=args.ffn,
        dropout=args.dropout,
        target_tokens=args.target_tokens,
        comment_tokens=args.comment_tokens,
    )
    batcher = Batcher(
        comments,
        targets,
        config.layers,
        args.stored_layers,
        config.target_tokens,
        config.comment_tokens,
    )
    data = load_examples(args.data, args.corpora)
    head: StanceHeadModule
    if config.kind == "upper":
        head = UpperLayersHead(config, head_classes())
        if args.init:
            init_upper(head, Path(args.init))
    else:
        head = CrossStanceHead(config, comments.states.shape[-1], head_classes())
    # class weights per corpus: inverse frequency, so every class counts toward macro-F1
    weights: dict[str, torch.Tensor] = {}
    for name, splits in data.items():
        counts = np.bincount([e.label for e in splits["train"]], minlength=len(STANCE_LABELS))
        inverse = np.where(
            counts > 0, counts.sum() / np.maximum(counts, 1) / (counts > 0).sum(), 0.0
        )
        weights[name] = torch.tensor(
            np.clip(inverse, 0, args.max_class_weight) ** args.weight_power, dtype=torch.float32
        )
    fresh = [p for n, p in head.named_parameters() if n.startswith(("segment", "layer_mix"))]
    rest = [p for n, p in head.named_parameters() if not n.startswith(("segment", "layer_mix"))]
    lr_rest = args.init_lr if (config.kind == "upper" and args.init) else args.lr
    optim = torch.optim.AdamW(
        [{"params": fresh, "lr": args.lr}, {"params": rest, "lr": lr_rest}], weight_decay=0.01
    )
    quota = {"fnc1": args.fnc1_per_epoch, "arc": args.arc_per_epoch}
    steps_per_epoch = (
        sum(min(len(s["train"]), quota.get(n, 10**9)) for n, s in data.items()) // args.batch_size
    )
    total = steps_per_epoch * args.epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(
        optim,
        max_lr=[args.lr, lr_rest],
        total_steps=total,
        pct_start=0.06,
        anneal_strategy="linear",
    )
    best, best_state, history = -1.0, None, []
    step = 0
    for epoch in range(args.epochs):
        head.train()
        pool: list[Example] = []
        for name, splits in data.items():
            rows = list(splits["train"])
            random.shuffle(rows)
            pool += rows[: quota.get(name, len(rows))]
        # length-grouped batches: sort chunks of 50 batches by comment length
        random.shuffle(pool)
        batches = []
        chunk = args.batch_size * 50
        for s in range(0, len(pool), chunk):
            part = sorted(pool[s : s + chunk], key=lambda e: len(e.text))  # characters: near enough
            batches += [part[i : i + args.batch_size] for i in range(0, len(part), args.batch_size)]
        random.shuffle(batches)
        started = time.time()
        for i, batch in enumerate(batches[:steps_per_epoch]):
            by_head = head(*batcher(batch))
            own = torch.tensor([e.head for e in batch])
            logits = by_head[torch.arange(len(batch)), own]
            labels = torch.tensor([e.label for e in batch])
            w = torch.stack([weights[e.corpus][e.label] for e in batch])
            loss = (
                nn.functional.cross_entropy(logits, labels, reduction="none") * w
            ).sum() / w.sum()
            optim.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(head.parameters(), 1.0)
            optim.step()
            sched.step()
            step += 1
            if i % 100 == 0:
                logger.info(
                    "epoch %d step %d/%d loss %.4f (%.1f s)",
                    epoch,
                    i,
                    steps_per_epoch,
                    loss.item(),
                    time.time() - started,
                )
        dev = {n: score(n, s["dev"], predict(head, batcher, s["dev"])) for n, s in data.items()}
        mean = float(np.mean([d["primary"] for d in dev.values()]))
        history.append({"epoch": epoch, "dev": dev, "dev_mean": mean})
        logger.info(
            "epoch %d dev %s mean %.4f",
            epoch,
            {n: round(d["primary"], 4) for n, d in dev.items()},
            mean,
        )
        if mean > best:
            best, best_state = mean, {k: v.clone() for k, v in head.state_dict().items()}
            Path(args.out).mkdir(parents=True, exist_ok=True)
            torch.save(
                {
                    "state": best_state,
                    "config": config.model_dump(mode="json"),
                    "reply_offsets": None,
                    "epoch": epoch,
                },
                Path(args.out) / "head.pt",
            )
    assert best_state is not None
    head.load_state_dict(best_state)
    # reply offsets for the comment head, fitted on RumourEval dev (as the cross-encoder's)
    offsets = np.zeros(len(STANCE_LABELS))
    record = None
    if "rumoureval2019" in data:
        dev_rows = data["rumoureval2019"]["dev"]
        logp = predict(head, batcher, dev_rows)

        def objective(o: np.ndarray) -> float:
            return score("rumoureval2019", dev_rows, logp, o)["primary"]

        anchor = STANCE_LABELS.index("comment")
        free = [STANCE_LABELS.index(c) for c in HEADS[0][2] if STANCE_LABELS.index(c) != anchor]
        offsets = coordinate_ascent(objective, len(STANCE_LABELS), free)
        record = {
            "head": "comment",
            "inputs": "replies",
            "corpora": ["rumoureval2019"],
            "anchor": "comment",
            "offsets": {STANCE_LABELS[k]: float(offsets[k]) for k in free},
            "dev_before": objective(np.zeros(len(STANCE_LABELS))),
            "dev_after": objective(offsets),
        }
        logger.info("reply offsets %s", record)
    results: dict[str, Any] = {}
    for n, by_split in data.items():
        for split in ("dev", "test"):
            if split in by_split:
                o = offsets if n == "rumoureval2019" else None
                rows = by_split[split]
                results[f"{n}/{split}"] = score(n, rows, predict(head, batcher, rows), o)
    logger.info("results %s", json.dumps({k: round(v["primary"], 4) for k, v in results.items()}))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "state": head.state_dict(),
            "config": config.model_dump(mode="json"),
            "reply_offsets": record,
        },
        out / "head.pt",
    )
    (out / "report.json").write_text(
        json.dumps(
            {
                "history": history,
                "results": results,
                "reply_offsets": record,
                "config": config.model_dump(mode="json"),
                "args": vars(args),
            },
            indent=1,
        )
    )


def init_upper(head: UpperLayersHead, stance_model: Path) -> None:
    """Start an ``upper`` head from a cross-encoder's layers above the one it reads and
    from its stance head (the same heads and labels)."""
    from classifier.model.network import ThreadguardModel
    from classifier.model.stance_head import BERT_LAYER_NAMES

    model = ThreadguardModel.from_pretrained(stance_model)
    wrapped: Any = model.encoder
    encoder: Any = wrapped.get_base_model() if hasattr(wrapped, "get_base_model") else wrapped
    first = head.config.layers[0]  # hidden_states[k] is the output of layer index k - 1
    for i, block in enumerate(head.blocks):
        source = encoder.encoder.layer[first + i].state_dict()
        mapped = {}
        for name, tensor in source.items():
            module, _, leaf = name.rpartition(".")
            mapped[f"{BERT_LAYER_NAMES[module]}.{leaf}"] = tensor
        block.load_state_dict(mapped)
    if list(model.stance_labels) != list(STANCE_LABELS) or [h.name for h in model.config.heads] != [
        h[0] for h in HEADS
    ]:
        raise ValueError(f"{stance_model}: another label or head layout")
    head.classify.load_state_dict(model.stance_head.state_dict())
    logger.info(
        "upper head: layers %d..%d and the stance head from %s",
        first + 1,
        first + len(head.blocks),
        stance_model,
    )


def assemble(head_dir: Path, comment: Path, out: Path) -> Path:
    """A one-pass model folder at ``out``: the comment model ``comment`` (its config now
    naming the layers the head reads) and the head trained into ``head_dir``."""
    import shutil

    from classifier.model.constants import COMMENT_DIR, CONFIG_FILE
    from classifier.model.stance_head import save_head

    saved = torch.load(head_dir / "head.pt", weights_only=False)
    config = StanceHeadConfig.from_dict(saved["config"])
    shutil.copytree(comment, out / COMMENT_DIR, dirs_exist_ok=True)
    meta_path = out / COMMENT_DIR / CONFIG_FILE
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["model_config"]["state_layers"] = list(config.layers)
    meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    head: StanceHeadModule
    if config.kind == "upper":
        head = UpperLayersHead(config, head_classes())
    else:
        head = CrossStanceHead(
            config, int(saved["state"]["project.weight"].shape[1]), head_classes()
        )
    head.load_state_dict(saved["state"])
    record = saved.get("reply_offsets")
    head_meta = {
        "head": config.model_dump(mode="json"),
        "stance_labels": list(STANCE_LABELS),
        "stance_heads": [{"name": n, "corpora": list(c), "classes": list(k)} for n, c, k in HEADS],
        "stance_offsets": [record] if record else None,
    }
    save_head(head, head_meta, out)
    return out


def main() -> None:
    import argparse

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--states", default="runs/stance_states")
    p.add_argument("--data", default="../shared/data")
    p.add_argument("--out", default="runs/stance_head")
    p.add_argument(
        "--corpora", nargs="+", default=["rumoureval2019", "semeval2016_stance", "arc", "fnc1"]
    )
    p.add_argument("--kind", choices=["cross", "upper"], default="cross")
    p.add_argument("--init", default=None, help="an 'upper' head's cross-encoder to start from")
    p.add_argument("--init-lr", type=float, default=3e-5)
    p.add_argument("--arc-per-epoch", type=int, default=10**9)
    p.add_argument("--layers", type=int, nargs="+", default=[4, 6])
    p.add_argument("--stored-layers", type=int, nargs="+", default=[4, 6])
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--depth", type=int, default=2)
    p.add_argument("--attention-heads", type=int, default=4)
    p.add_argument("--ffn", type=int, default=512)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--target-tokens", type=int, default=128)
    p.add_argument("--comment-tokens", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--fnc1-per-epoch", type=int, default=8000)
    p.add_argument("--max-class-weight", type=float, default=10.0)
    p.add_argument("--weight-power", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--assemble",
        metavar="DIR",
        default=None,
        help="no training: build a one-pass model folder at DIR from --out's head",
    )
    p.add_argument("--comment-model", default="classifier/default_model/comment")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    if args.assemble:
        assemble(Path(args.out), Path(args.comment_model), Path(args.assemble))
        return
    train(args)


if __name__ == "__main__":
    main()
