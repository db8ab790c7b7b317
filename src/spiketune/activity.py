"""Spiking activity, synaptic operations and an energy estimate per sample.

:class:`ActivityAccumulator` sums raw counts over batches and divides only in
:meth:`ActivityAccumulator.compute`, so the result does not depend on how the
samples were split into batches.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from spiketune.hardware.profile import ChipProfile
from spiketune.network import NetworkOutput
from spiketune.registry import register_metric

logger = logging.getLogger(__name__)

__all__ = [
    "ActivityAccumulator",
    "energy_estimate_j",
    "silent_fraction",
    "spike_rate_hz",
]

# Used when no profile is given: the ChipProfile field defaults.
_DEFAULT_PROFILE = ChipProfile(name="default", weight_limit=1.0)


@register_metric("spike_rate_hz_l{i}", mode="min")
def spike_rate_hz(total_spikes: float, n_neurons: int, sample_seconds: float) -> float:
    """Return spikes per neuron per second of layer ``i``.

    ``sample_seconds`` is the summed duration of all samples, ``T * dt`` each.
    """
    return total_spikes / (n_neurons * sample_seconds)


@register_metric("silent_fraction_l{i}", mode="min")
def silent_fraction(neuron_counts: np.ndarray) -> float:
    """Return the fraction of a layer's neurons that never spiked."""
    return float(np.mean(neuron_counts == 0))


@register_metric("energy_per_sample_j", mode="min")
def energy_estimate_j(spikes: float, synops: float, profile: ChipProfile) -> float:
    """Estimate the energy in joules of ``spikes`` spikes and ``synops`` synops.

    This is an estimate from two per-event constants of the chip model, not a
    measurement.

    Notes
    -----
    .. math::

        E = n_{spikes} E_{spike} + n_{synops} E_{synop}
    """
    return spikes * profile.energy_per_spike_j + synops * profile.energy_per_synop_j


@register_metric("spikes_per_sample", mode="min")
def spikes_per_sample(total_spikes: float, n_samples: int) -> float:
    """Return spikes of all spiking layers per sample."""
    return total_spikes / n_samples


@register_metric("synops_per_sample", mode="min")
def synops_per_sample(total_synops: float, n_samples: int) -> float:
    """Return synaptic operations per sample.

    Notes
    -----
    A synaptic operation is one event reaching one target. With
    :math:`S_i` the spikes of layer :math:`i`, :math:`F_i` its fan-out,
    :math:`E` the non-zero input entries and :math:`F_{in}` the input fan-out,

    .. math::

        n_{synops} = \\sum_i S_i F_i + E F_{in}
    """
    return total_synops / n_samples


class ActivityAccumulator:
    """Running spike, synop and duration totals over the samples seen.

    Parameters
    ----------
    profile : ChipProfile, optional
        Source of the energy constants; the :class:`ChipProfile` defaults
        when omitted.
    """

    def __init__(self, profile: ChipProfile | None = None) -> None:
        self.profile = profile if profile is not None else _DEFAULT_PROFILE
        self.reset()

    def reset(self) -> None:
        """Forget every batch seen."""
        self.n_samples = 0
        self.sample_seconds = 0.0
        self.total_synops = 0.0
        self.neuron_counts: list[np.ndarray] | None = None

    def update(self, out: NetworkOutput) -> None:
        """Add the activity of one batch.

        Raises
        ------
        ValueError
            If the number or size of spiking layers differs from earlier
            batches.
        """
        counts = [
            s.detach().sum(dim=(0, 1)).double().cpu().numpy() for s in out.layer_spikes
        ]
        if self.neuron_counts is None:
            self.neuron_counts = [np.zeros_like(c) for c in counts]
        self._check_layers(counts)
        for total, batch_counts in zip(self.neuron_counts, counts, strict=True):
            total += batch_counts

        batch, n_steps = out.mem.shape[:2]
        self.n_samples += batch
        self.sample_seconds += batch * n_steps * out.dt
        input_events = float(torch.count_nonzero(out.inputs.detach()))
        synops = input_events * out.input_fan_out
        for batch_counts, fan_out in zip(counts, out.fan_out, strict=True):
            synops += float(batch_counts.sum()) * fan_out
        self.total_synops += synops

    def _check_layers(self, counts: list[np.ndarray]) -> None:
        sizes = [c.shape[0] for c in counts]
        expected = [c.shape[0] for c in self.neuron_counts]
        if sizes != expected:
            raise ValueError(
                f"batch has spiking layers of sizes {sizes} but earlier batches had "
                f"{expected}; use one accumulator per network"
            )

    def compute(self) -> dict[str, float]:
        """Return the activity metrics of all samples seen.

        Returns
        -------
        dict of str to float
            ``spike_rate_hz_l{i}`` and ``silent_fraction_l{i}`` per spiking
            layer (input side first), ``spikes_per_sample``,
            ``synops_per_sample`` and ``energy_per_sample_j``, the energy
            estimate.

        Raises
        ------
        RuntimeError
            If no batch was added.
        """
        if self.neuron_counts is None or self.n_samples == 0:
            raise RuntimeError("no batch seen; call update() before compute()")
        metrics: dict[str, float] = {}
        total_spikes = 0.0
        for i, counts in enumerate(self.neuron_counts):
            layer_spikes = float(counts.sum())
            total_spikes += layer_spikes
            metrics[f"spike_rate_hz_l{i}"] = spike_rate_hz(
                layer_spikes, counts.shape[0], self.sample_seconds
            )
            metrics[f"silent_fraction_l{i}"] = silent_fraction(counts)
        spikes = spikes_per_sample(total_spikes, self.n_samples)
        synops = synops_per_sample(self.total_synops, self.n_samples)
        metrics["spikes_per_sample"] = spikes
        metrics["synops_per_sample"] = synops
        metrics["energy_per_sample_j"] = energy_estimate_j(spikes, synops, self.profile)
        return metrics
