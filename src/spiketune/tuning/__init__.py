"""Hyperparameter sweeps of spiking networks on Ray Tune.

Names are imported on first use, so reading results with
:func:`load_results` does not import Ray.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "SpikeTuner",
    "SweepResult",
    "TrialContext",
    "TrialSettings",
    "build_search_space",
    "load_model",
    "load_results",
]

_SOURCES = {
    "SpikeTuner": "spiketune.tuning.tuner",
    "SweepResult": "spiketune.tuning.tuner",
    "TrialContext": "spiketune.tuning.context",
    "TrialSettings": "spiketune.tuning.context",
    "build_search_space": "spiketune.tuning.space",
    "load_model": "spiketune.tuning.checkpoint",
    "load_results": "spiketune.tuning.results",
}


def __getattr__(name: str) -> Any:
    if name not in _SOURCES:
        raise AttributeError(f"module 'spiketune.tuning' has no attribute {name!r}")
    return getattr(importlib.import_module(_SOURCES[name]), name)
