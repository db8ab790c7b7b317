"""Software neuron and synapse models."""

from __future__ import annotations

from spiketune.neurons.functional import beta_from_tau, lif_step
from spiketune.neurons.lif import LIF
from spiketune.neurons.readout import LeakyReadout
from spiketune.neurons.synapse import Dense

__all__ = ["LIF", "Dense", "LeakyReadout", "beta_from_tau", "lif_step"]
