"""Hyperparameter sweeps of spiking networks on Ray Tune."""

from __future__ import annotations

from spiketune.tuning.checkpoint import load_model
from spiketune.tuning.context import TrialContext, TrialSettings
from spiketune.tuning.results import load_results
from spiketune.tuning.space import build_search_space
from spiketune.tuning.tuner import SpikeTuner, SweepResult

__all__ = [
    "SpikeTuner",
    "SweepResult",
    "TrialContext",
    "TrialSettings",
    "build_search_space",
    "load_model",
    "load_results",
]
