"""Spiking neural networks for neuromorphic hardware, tuned with Ray Tune."""

from __future__ import annotations

__version__ = "0.1.0"
