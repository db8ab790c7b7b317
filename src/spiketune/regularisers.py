"""Activity and hardware regularisers added to the task loss.

Each regulariser is called as ``reg(out, model)`` and returns an unweighted,
differentiable scalar. :class:`spiketune.losses.CompositeLoss` multiplies it by
the ``weight`` from ``loss.regularisers.<name>.weight``. Weight regularisers read
``module.weight`` of every synapse (every module with ``effective_weight``,
recurrent synapses included). With sign annealing installed that is the
parametrised weight, so they see the weights the network actually uses before
clipping, quantisation and mismatch. Those weights are already sign-coherent
and within the profile's limit, so ``topology`` and ``weight_magnitude`` (at the
profile's limit) are zero while sign annealing is installed.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import torch
from torch import nn

from spiketune.hardware.blocks import sign_blocks
from spiketune.hardware.profile import ChipProfile
from spiketune.network import NetworkOutput
from spiketune.registry import Param, register_regulariser

logger = logging.getLogger(__name__)

__all__ = [
    "FiringRate",
    "L1Spikes",
    "Topology",
    "WeightMagnitude",
    "block_incoherence",
    "synapse_weights",
]

_DEFAULT_BLOCK_SIZE: int = {f.name: f.default for f in dataclasses.fields(ChipProfile)}[
    "block_size"
]


def _weight_param(default: float) -> Param:
    return Param(
        "weight", "float", default, low=0.0, doc="multiplier of the term in the loss"
    )


def synapse_weights(model: nn.Module) -> list[torch.Tensor]:
    """Return the learnable ``[N_in, N_out]`` weight of every synapse in ``model``.

    A synapse is any module with ``effective_weight``. Its ``.weight`` is read,
    which is the parametrised weight when a parametrisation is installed.
    """
    weights = []
    for module in model.modules():
        if hasattr(module, "effective_weight"):
            weight = module.weight
            if weight.ndim == 2:
                weights.append(weight)
    return weights


def _per_layer(value: float | Sequence[float], n_layers: int, key: str) -> list[float]:
    if isinstance(value, int | float):
        return [float(value)] * n_layers
    if len(value) != n_layers:
        raise ValueError(
            f"loss.regularisers.firing_rate.{key}: got {len(value)} values but the "
            f"network has {n_layers} spiking layers; give one number for all layers "
            f"or a list of {n_layers}"
        )
    return [float(v) for v in value]


@register_regulariser(
    "firing_rate",
    params=(
        _weight_param(0.1),
        Param(
            "offsets",
            "float_or_list",
            0.02,
            low=0.0,
            high=1.0,
            doc="target rate in spikes per neuron per step, per layer",
        ),
        Param(
            "multipliers",
            "float_or_list",
            1.0,
            low=0.0,
            doc="scale of each layer's rate error",
        ),
    ),
)
class FiringRate:
    """Squared distance of each spiking layer's firing rate from a target.

    Parameters
    ----------
    offsets : float or sequence of float, default 0.02
        Target rate :math:`o_i` in spikes per neuron per time step, one value
        for all layers or one per spiking layer, input side first.
    multipliers : float or sequence of float, default 1.0
        Scale :math:`m_i` of each layer's rate error.
    profile : ChipProfile, optional
        Unused; accepted so every regulariser has the same constructor.

    Notes
    -----
    With :math:`r_i` the mean of layer :math:`i`'s spikes over batch, time
    and neurons,

    .. math::

        R = \\sum_i \\left( (r_i - o_i) \\, m_i \\right)^2
    """

    def __init__(
        self,
        *,
        offsets: float | Sequence[float] = 0.02,
        multipliers: float | Sequence[float] = 1.0,
        profile: ChipProfile | None = None,
    ) -> None:
        self.offsets = offsets
        self.multipliers = multipliers

    def check_output(self, out: NetworkOutput) -> None:
        """Raise ValueError unless per-layer lists match the spiking layers."""
        n_layers = len(out.layer_spikes)
        if n_layers == 0:
            raise ValueError(
                "loss.regularisers.firing_rate: the network has no spiking layer; "
                "remove this regulariser or add a hidden layer"
            )
        _per_layer(self.offsets, n_layers, "offsets")
        _per_layer(self.multipliers, n_layers, "multipliers")

    def __call__(self, out: NetworkOutput, model: nn.Module) -> torch.Tensor:
        """Return the firing-rate penalty of this batch."""
        self.check_output(out)
        n_layers = len(out.layer_spikes)
        offsets = _per_layer(self.offsets, n_layers, "offsets")
        multipliers = _per_layer(self.multipliers, n_layers, "multipliers")
        total = out.mem.new_zeros(())
        for spikes, offset, multiplier in zip(
            out.layer_spikes, offsets, multipliers, strict=True
        ):
            rate = spikes.mean()
            total = total + ((rate - offset) * multiplier) ** 2
        return total


@register_regulariser("l1_spikes", params=(_weight_param(1e-4),))
class L1Spikes:
    """Mean spike count per neuron and sample, over all spiking layers.

    Notes
    -----
    With :math:`s_{b,t,n}` the spikes of every spiking layer concatenated
    along the neuron axis (:math:`N` neurons in all, batch size :math:`B`),

    .. math::

        R = \\frac{1}{B N} \\sum_{b,t,n} s_{b,t,n}
    """

    def __init__(self, *, profile: ChipProfile | None = None) -> None:
        pass

    def __call__(self, out: NetworkOutput, model: nn.Module) -> torch.Tensor:
        """Return the mean spike count of this batch."""
        if not out.layer_spikes:
            return out.mem.new_zeros(())
        total = sum(spikes.sum() for spikes in out.layer_spikes)
        n_neurons = sum(spikes.shape[-1] for spikes in out.layer_spikes)
        batch = out.layer_spikes[0].shape[0]
        return total / (batch * n_neurons)


@register_regulariser(
    "weight_magnitude",
    params=(
        _weight_param(1.0),
        Param(
            "limit",
            "float",
            None,
            low=0.0,
            low_open=True,
            nullable=True,
            doc="largest penalty-free |w|; the profile's weight_limit when null",
        ),
    ),
)
class WeightMagnitude:
    """Mean squared excess of ``|w|`` over a limit, over all synapse weights.

    Parameters
    ----------
    limit : float, optional
        Largest penalty-free absolute weight; ``profile.weight_limit`` when
        omitted.
    profile : ChipProfile, optional
        Source of the default limit.

    Raises
    ------
    ValueError
        If neither ``limit`` nor ``profile`` is given.

    Notes
    -----
    With :math:`L` the limit and :math:`W` the number of weights of all
    synapses together,

    .. math::

        R = \\frac{1}{W} \\sum_j \\max(|w_j| - L, 0)^2
    """

    def __init__(
        self, *, limit: float | None = None, profile: ChipProfile | None = None
    ) -> None:
        if limit is None:
            if profile is None:
                raise ValueError(
                    "loss.regularisers.weight_magnitude.limit: null needs a chip "
                    "profile to take weight_limit from; set a limit > 0 or build "
                    "the loss with a profile"
                )
            limit = profile.weight_limit
        self.limit = float(limit)

    def __call__(self, out: NetworkOutput, model: nn.Module) -> torch.Tensor:
        """Return the weight-magnitude penalty of ``model``."""
        weights = synapse_weights(model)
        if not weights:
            return out.mem.new_zeros(())
        flat = torch.cat([w.reshape(-1) for w in weights])
        excess = torch.relu(flat.abs() - self.limit)
        return (excess**2).mean()


@register_regulariser(
    "topology",
    params=(
        _weight_param(0.5),
        Param(
            "block_size",
            "int",
            None,
            low=1,
            nullable=True,
            doc="neurons per sign block; the profile's block_size when null",
        ),
    ),
)
class Topology:
    """Mean sign incoherence of the weight blocks of all synapses.

    A block is ``block_size`` consecutive output neurons of one input row, as
    laid out by :func:`spiketune.hardware.sign_blocks`. The penalty of a block
    is zero exactly when its weights share one sign (zeros allowed).

    Parameters
    ----------
    block_size : int, optional
        Neurons per block; ``profile.block_size`` when omitted, or 5 without a
        profile.
    profile : ChipProfile, optional
        Source of the default block size.

    Notes
    -----
    For block :math:`b` with weights :math:`w_{b,1..K}`, averaged over the
    :math:`N_b` blocks of all synapses,

    .. math::

        R = \\frac{1}{N_b} \\sum_b \\left( \\sum_k |w_{b,k}|
            - \\left| \\sum_k w_{b,k} \\right| \\right)
    """

    def __init__(
        self, *, block_size: int | None = None, profile: ChipProfile | None = None
    ) -> None:
        if block_size is None:
            block_size = profile.block_size if profile else _DEFAULT_BLOCK_SIZE
        self.block_size = int(block_size)

    def __call__(self, out: NetworkOutput, model: nn.Module) -> torch.Tensor:
        """Return the mean block incoherence of ``model``."""
        penalties = [
            block_incoherence(w, self.block_size).reshape(-1)
            for w in synapse_weights(model)
        ]
        if not penalties:
            return out.mem.new_zeros(())
        return torch.cat(penalties).mean()


def block_incoherence(weight: torch.Tensor, block_size: int) -> torch.Tensor:
    """Return ``sum|w| - |sum w|`` of every block, shaped ``[N_in, n_blocks]``."""
    blocks = sign_blocks(weight, block_size)
    return blocks.abs().sum(dim=-1) - blocks.sum(dim=-1).abs()
