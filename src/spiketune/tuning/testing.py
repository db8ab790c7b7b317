"""Score the chosen trials once on the held-out test split."""

from __future__ import annotations

import logging
import math

import pandas as pd

from spiketune.data import build_task
from spiketune.hardware.profile import get_profile
from spiketune.training import evaluate
from spiketune.tuning.checkpoint import load_checkpoint, load_model

__all__ = ["score_checkpoint", "score_on_test"]

logger = logging.getLogger(__name__)


def score_checkpoint(checkpoint: str, split: str = "test") -> dict[str, float]:
    """Evaluate a checkpoint's model on one split of its own data config."""
    spec, _ = load_checkpoint(checkpoint)
    model = load_model(checkpoint)
    data = build_task(spec["data_cfg"])
    profile = get_profile(spec["profile"]) if spec.get("profile") else None
    return evaluate(
        model,
        getattr(data, split),
        task=data.task,
        n_classes=data.n_outputs if data.task == "classification" else None,
        profile=profile,
        population=bool(spec.get("population", False)),
    )


def score_on_test(table: pd.DataFrame, top_k: int) -> dict[str, dict[str, float]]:
    """Score the best ``top_k`` trials with a checkpoint on the test split.

    The test split is used only here, after selection, so it never steers
    the search.
    """
    scores: dict[str, dict[str, float]] = {}
    ranked = table[table["checkpoint"].notna()].head(top_k)
    for row in ranked.itertuples():
        try:
            metrics = score_checkpoint(row.checkpoint)
        except Exception as err:  # noqa: BLE001 - one bad checkpoint must not stop the rest
            logger.error("test scoring of trial %s failed: %s", row.trial_id, err)
            continue
        scores[row.trial_id] = {
            k: v
            for k, v in metrics.items()
            if isinstance(v, float) and math.isfinite(v)
        }
    return scores
