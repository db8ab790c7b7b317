"""Chip profiles, hardware-constrained layers and the chip fit check."""

from __future__ import annotations

from spiketune.hardware.blocks import incoherent_blocks, quantize, sign_blocks
from spiketune.hardware.fit import check_fit, export_weight
from spiketune.hardware.layers import HardwareDense, HardwareLIF
from spiketune.hardware.profile import PROFILES, ChipProfile, get_profile, load_profile

__all__ = [
    "PROFILES",
    "ChipProfile",
    "HardwareDense",
    "HardwareLIF",
    "check_fit",
    "export_weight",
    "get_profile",
    "incoherent_blocks",
    "load_profile",
    "quantize",
    "sign_blocks",
]
