"""Default values of each namespace and checks of the keys the trial owns."""

from __future__ import annotations

import copy
import difflib
import math
from collections.abc import Mapping
from typing import Any

from spiketune.tuning.keys import NAMESPACES

__all__ = ["DEFAULTS", "check_trainer_keys", "suggest", "with_defaults"]

DEFAULTS: dict[str, dict[str, Any]] = {
    "model": {},
    "loss": {"task": "ce_count"},
    "metric": {"eval_mismatch": False},
    "optim": {"name": "adam", "lr": 1e-3},
    "sched": {"name": "none"},
    "anneal": {},
    "trainer": {
        "epochs": 10,
        "batch_size": 64,
        "eval_batch_size": 512,
        "grad_clip": None,
        "seed": None,
    },
    "data": {"name": "digits"},
    "early_stop": {"patience": None, "min_delta": 0.0},
}


def with_defaults(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Return a config with every namespace present and defaults filled in."""
    merged = copy.deepcopy(DEFAULTS)
    for namespace, values in config.items():
        if namespace in merged and isinstance(values, Mapping):
            merged[namespace].update(copy.deepcopy(dict(values)))
    return merged


def suggest(key: str, valid: list[str] | tuple[str, ...]) -> str:
    """Return a ``"; did you mean X?"`` hint for a misspelt key, or ``""``."""
    close = difflib.get_close_matches(key, list(valid), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def check_trainer_keys(config: Mapping[str, Any]) -> None:
    """Check the ``trainer.*`` and ``early_stop.*`` values of a sampled config.

    Raises
    ------
    ValueError
        Naming the key, the value and the accepted range.
    """
    cfg = with_defaults(config)
    for namespace in ("trainer", "early_stop", "metric"):
        _reject_unknown(namespace, cfg[namespace], DEFAULTS[namespace])
    trainer = cfg["trainer"]
    _positive_int("trainer.epochs", trainer["epochs"])
    _positive_int("trainer.batch_size", trainer["batch_size"])
    _positive_int("trainer.eval_batch_size", trainer["eval_batch_size"])
    clip = trainer["grad_clip"]
    if clip is not None and (not _is_number(clip) or clip <= 0):
        raise ValueError(f"trainer.grad_clip: {clip!r} is not a number > 0 or null")
    seed = trainer["seed"]
    if seed is not None and (not isinstance(seed, int) or seed < 0):
        raise ValueError(f"trainer.seed: {seed!r} is not a non-negative integer")
    if not isinstance(cfg["metric"]["eval_mismatch"], bool):
        raise ValueError(
            f"metric.eval_mismatch: {cfg['metric']['eval_mismatch']!r} is not "
            "true or false"
        )
    patience = cfg["early_stop"]["patience"]
    if patience is not None:
        _positive_int("early_stop.patience", patience)
    delta = cfg["early_stop"]["min_delta"]
    if not _is_number(delta) or delta < 0:
        raise ValueError(f"early_stop.min_delta: {delta!r} is not a number >= 0")
    unknown = sorted(set(config) - set(NAMESPACES))
    if unknown:
        raise ValueError(
            f"{unknown[0]}: unknown namespace; valid namespaces are "
            f"{', '.join(NAMESPACES)}"
        )


def _reject_unknown(namespace: str, values: Mapping[str, Any], known: Mapping) -> None:
    for key in values:
        if key not in known:
            raise ValueError(
                f"{namespace}.{key}: unknown key; valid keys are "
                f"{', '.join(sorted(known))}{suggest(key, list(known))}"
            )


def _positive_int(key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key}: {value!r} is not a positive integer")


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )
