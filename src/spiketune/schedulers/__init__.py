"""Per-epoch schedulers of sign annealing and surrogate slopes."""

from __future__ import annotations

from spiketune.schedulers.shapes import SHAPES, anneal_value
from spiketune.schedulers.sign_annealing import (
    BlockSign,
    SignAnnealing,
    install_sign_annealing,
)
from spiketune.schedulers.surrogate import SurrogateScheduler

__all__ = [
    "SHAPES",
    "BlockSign",
    "SignAnnealing",
    "SurrogateScheduler",
    "anneal_value",
    "install_sign_annealing",
]
