"""A site's moderation thresholds, refitted on its own moderators' decisions.

``comments:suggestscore`` stores each decision with the scores the model gave the comment
(:mod:`classifier.moderation.feedback`). Here those records become a policy file: for
each rule of the site's current policy, the lowest threshold at which the comments held
are ones the site's moderators deleted with at least the target precision
(:func:`training.thresholds.choose_threshold`, as ``threadguard evaluate --calibrate`` on
dev splits). ``threadguard calibrate --feedback FILE`` runs it.

What a record says about a label: a suggested attribute score (Perspective's clients
suggest ``TOXICITY: 0.9``) is that label's gold (>= 0.5 positive); Coral's ``DELETED`` /
``APPROVED`` is the gold of every label (a moderator deleting a comment says it should have
been held, without saying why). Only the latest decision per comment counts (a moderator
may approve what they first deleted), and only records scored by one model version (a
threshold means nothing across models): the newest in the file unless one is named.
A rule with too few decisions either way keeps its threshold, and says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from classifier.labels import PERSPECTIVE_ATTRIBUTES
from classifier.moderation.feedback import VERDICT_GOLD, comment_key
from classifier.moderation.policy import Policy
from training.metrics import CalibrationTarget
from training.thresholds import choose_threshold


def latest_decisions(
    records: Iterable[Mapping[str, Any]], model_version: str | None = None
) -> tuple[list[Mapping[str, Any]], str | None]:
    """The last record per comment among those of ``model_version`` (default: the
    version of the newest record), and that version."""
    records = list(records)
    if model_version is None and records:
        model_version = records[-1].get("model_version")
    latest: dict[str, Mapping[str, Any]] = {}
    for record in records:
        if record.get("model_version") == model_version:
            latest[comment_key(record)] = record
    return list(latest.values()), model_version


def gold(record: Mapping[str, Any], label: str) -> int | None:
    """Whether the moderator's decision says ``label`` should hold the comment (1), should
    not (0), or says nothing about it (``None``)."""
    suggested = record.get("suggested") or {}
    for attribute, value in suggested.items():
        kind_label = PERSPECTIVE_ATTRIBUTES.get(attribute)
        if kind_label is not None and kind_label[1] == label:
            return int(float(value) >= 0.5)
    for verdict, positive in VERDICT_GOLD.items():
        if verdict in suggested:
            return positive
    return None


def fit_feedback_policy(
    records: Iterable[Mapping[str, Any]],
    policy: Policy,
    target: CalibrationTarget,
    *,
    model_version: str | None = None,
    min_decisions: int = 20,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(policy file content, report)``: ``policy`` with each rule's threshold refitted on
    the feedback (see the module docstring); a rule keeps its threshold when fewer than
    ``min_decisions`` decisions fall on either side or no threshold meets ``target``."""
    latest, version = latest_decisions(records, model_version)
    out = policy.to_dict()
    report: dict[str, Any] = {"model_version": version, "decisions": len(latest), "labels": {}}
    for rule in policy.rules:
        pairs = [
            (g, float(r["scores"][rule.label]))
            for r in latest
            if (g := gold(r, rule.label)) is not None and rule.label in (r.get("scores") or {})
        ]
        y = np.array([g for g, _ in pairs], dtype=int)
        prob = np.array([p for _, p in pairs], dtype=float)
        positives, negatives = int(y.sum()), int(len(y) - y.sum())
        found: dict[str, Any] = {"n": len(y), "positives": positives, "kept": rule.threshold}
        if positives < min_decisions or negatives < min_decisions:
            found["reason"] = (
                f"too few decisions ({positives} deleted, {negatives} approved; "
                f"{min_decisions} of each needed)"
            )
        else:
            chosen = choose_threshold(y, prob, target)
            found.update(chosen)
            if chosen["threshold"] is not None:
                out["labels"][rule.label]["threshold"] = round(float(chosen["threshold"]), 4)
        found["threshold"] = out["labels"][rule.label]["threshold"]
        report["labels"][rule.label] = found
    return out, report
