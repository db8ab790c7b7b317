"""Check that a built network fits a chip profile."""

from __future__ import annotations

import torch
from torch import nn

from spiketune.hardware.blocks import incoherent_blocks
from spiketune.hardware.profile import ChipProfile, get_profile

__all__ = ["check_fit", "export_weight"]


def check_fit(model: nn.Module, profile: str | ChipProfile) -> list[str]:
    """List every way a network breaks a chip profile's limits.

    Checks the neuron count against the cores, that each recurrent layer fits
    inside one core, that every synaptic weight lies within the weight limit,
    and that every block of input weights shares one sign.

    Parameters
    ----------
    model : nn.Module
        A network whose neuron layers have ``n`` and an optional
        ``recurrent`` synapse, and whose synapses have a 2-D ``weight``.
    profile : str or ChipProfile
        The chip profile to check against.

    Returns
    -------
    list of str
        One readable line per violation; empty when the network fits.
    """
    profile = get_profile(profile)
    violations: list[str] = []
    neuron_layers = [
        (name, m) for name, m in model.named_modules() if _is_neuron_layer(m)
    ]

    total = sum(m.n for _, m in neuron_layers)
    if total > profile.n_neurons:
        violations.append(
            f"network has {total} neurons but profile {profile.name!r} has "
            f"{profile.n_neurons} over cores {list(profile.core_sizes)}"
        )
    largest_core = max(profile.core_sizes)
    for name, layer in neuron_layers:
        if getattr(layer, "recurrent", None) is not None and layer.n > largest_core:
            violations.append(
                f"{name}: recurrent layer of {layer.n} neurons does not fit in "
                f"one core (largest core has {largest_core})"
            )

    for name, weight in _synapse_weights(model):
        peak = float(weight.detach().abs().max())
        if peak > profile.weight_limit + 1e-6:
            violations.append(
                f"{name}: max |w| = {peak:.4g} exceeds the weight limit "
                f"{profile.weight_limit:g}"
            )
        n_bad = incoherent_blocks(weight, profile.block_size)
        if n_bad:
            violations.append(
                f"{name}: {n_bad} blocks of {profile.block_size} input weights "
                "mix positive and negative signs"
            )
    return violations


def _is_neuron_layer(module: nn.Module) -> bool:
    return hasattr(module, "forward_sequence") and getattr(module, "spiking", True)


def _synapse_weights(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    weights = []
    for name, module in model.named_modules():
        if hasattr(module, "effective_weight"):
            with torch.no_grad():
                weights.append((name or "synapse", export_weight(module)))
    return weights


def export_weight(module: nn.Module) -> torch.Tensor:
    """Return the weight a chip would receive: clipped and quantised, no noise.

    The module's per-batch mismatch noise is set aside for the call and put
    back afterwards.
    """
    noise = getattr(module, "noise", None)
    if noise is not None:
        module.noise = None
    try:
        return module.effective_weight()
    finally:
        if noise is not None:
            module.noise = noise
