"""Tests of the activity and hardware regularisers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spiketune.hardware.profile import get_profile
from spiketune.network import NetworkOutput, build_network
from spiketune.neurons.lif import LIF
from spiketune.neurons.synapse import Dense
from spiketune.regularisers import (
    FiringRate,
    L1Spikes,
    Topology,
    WeightMagnitude,
    block_incoherence,
    synapse_weights,
)


def dense_with(weight: list[list[float]]) -> Dense:
    """Return a Dense synapse holding ``weight`` ``[N_in, N_out]``."""
    values = torch.tensor(weight)
    synapse = Dense(*values.shape)
    with torch.no_grad():
        synapse.weight.copy_(values)
    return synapse


def output_with(layer_spikes: list[torch.Tensor]) -> NetworkOutput:
    """Wrap per-layer spikes in a NetworkOutput whose last layer is the output."""
    last = layer_spikes[-1]
    return NetworkOutput(
        spikes=last,
        mem=torch.zeros_like(last),
        layer_spikes=layer_spikes,
        fan_out=[0] * len(layer_spikes),
        input_fan_out=1,
        inputs=torch.zeros(*last.shape[:2], 1),
        dt=1e-3,
    )


def scalar(value: torch.Tensor) -> float:
    """Return a detached scalar tensor as a float."""
    return float(value.detach())


NO_OUTPUT = output_with([torch.zeros(1, 1, 1)])


@pytest.mark.parametrize(
    "row",
    [
        [0.5, 0.2, 0.3, 0.0, 0.1],
        [-0.5, -0.2, 0.0, -0.3, -0.1],
        [0.0, 0.0, 0.0, 0.0, 0.0],
    ],
)
def test_topology_zero_on_coherent_block(row: list[float]) -> None:
    model = nn.Sequential(dense_with([row]))
    assert scalar(Topology(block_size=5)(NO_OUTPUT, model)) == 0.0


def test_topology_exact_on_one_block() -> None:
    # sum|w| = 0.5 + 0.2 + 0.3 + 0 + 0.1 = 1.1, |sum w| = |0.7| = 0.7, so 0.4.
    model = nn.Sequential(dense_with([[0.5, -0.2, 0.3, 0.0, 0.1]]))
    assert scalar(Topology(block_size=5)(NO_OUTPUT, model)) == pytest.approx(0.4)


def test_topology_averages_all_blocks() -> None:
    # Synapse A [1, 7] with block 5 has blocks [1, -1, 0, 0, 0] (penalty 2)
    # and [0.5, -0.5] padded with zeros (penalty 1). Synapse B [1, 2] has one
    # padded block [0.3, 0.2] (penalty 0). Mean over 3 blocks: 3 / 3 = 1.
    model = nn.Sequential(
        dense_with([[1.0, -1.0, 0.0, 0.0, 0.0, 0.5, -0.5]]),
        dense_with([[0.3, 0.2]]),
    )
    assert scalar(Topology(block_size=5)(NO_OUTPUT, model)) == pytest.approx(1.0)


def test_topology_block_axis_runs_along_outputs() -> None:
    # Column-wise mixed signs ([1, -1] down one column) are not a block: each
    # block is consecutive outputs of one input row, so both rows are coherent.
    weight = torch.tensor([[1.0, 1.0], [-1.0, -1.0]])
    penalty = block_incoherence(weight, 2)
    assert penalty.shape == (2, 1)
    assert scalar(penalty.sum()) == 0.0


def test_topology_block_size_from_profile() -> None:
    # gen1 has block_size 5; with blocks of 5 the row [1, -1, 0, 0, 0 | 1]
    # has penalties 2 and 0, mean 1. With block_size 1 it would be 0.
    model = nn.Sequential(dense_with([[1.0, -1.0, 0.0, 0.0, 0.0, 1.0]]))
    topology = Topology(profile=get_profile("gen1"))
    assert topology.block_size == 5
    assert scalar(topology(NO_OUTPUT, model)) == pytest.approx(1.0)


def test_weight_magnitude_zero_inside_limit() -> None:
    model = nn.Sequential(dense_with([[0.9, -0.9, 0.3, 0.0]]))
    assert scalar(WeightMagnitude(limit=0.9)(NO_OUTPUT, model)) == 0.0


def test_weight_magnitude_exact_outside_limit() -> None:
    # Excess over 0.9 is [0, 0.3, 0.1, 0]; squares [0, 0.09, 0.01, 0] have
    # mean 0.1 / 4 = 0.025.
    model = nn.Sequential(dense_with([[0.5, -1.2, 1.0, 0.0]]))
    assert scalar(WeightMagnitude(limit=0.9)(NO_OUTPUT, model)) == pytest.approx(0.025)


def test_weight_magnitude_mean_over_all_weights() -> None:
    # One excess of 1.0 among 2 + 4 = 6 weights: 1 / 6. A mean of per-synapse
    # means would give (0.5 + 0) / 2 = 0.25 instead.
    model = nn.Sequential(dense_with([[1.9, 0.0]]), dense_with([[0.0] * 4]))
    assert scalar(WeightMagnitude(limit=0.9)(NO_OUTPUT, model)) == pytest.approx(1 / 6)


def test_weight_magnitude_limit_from_profile() -> None:
    # gen2 limit 1.66: excess of 2.66 is 1.0, squared 1.0, over 2 weights 0.5.
    model = nn.Sequential(dense_with([[2.66, 0.0]]))
    magnitude = WeightMagnitude(profile=get_profile("gen2"))
    assert scalar(magnitude(NO_OUTPUT, model)) == pytest.approx(0.5)


def test_weight_magnitude_without_limit_or_profile() -> None:
    with pytest.raises(ValueError, match=r"weight_magnitude\.limit"):
        WeightMagnitude()


def test_synapse_weights_include_recurrent() -> None:
    lif = LIF(3, recurrent=True)
    model = nn.Sequential(Dense(2, 3), lif)
    shapes = [tuple(w.shape) for w in synapse_weights(model)]
    assert shapes == [(2, 3), (3, 3)]


def test_firing_rate_exact_per_layer() -> None:
    # Layer 0 spikes [[1, 0], [1, 1]] over T=2: rate 3 / 4 = 0.75.
    # Layer 1 is silent: rate 0. With offsets [0.25, 0.1] and multipliers
    # [2, 1]: ((0.75 - 0.25) * 2)^2 + ((0 - 0.1) * 1)^2 = 1 + 0.01 = 1.01.
    layer0 = torch.tensor([[[1.0, 0.0], [1.0, 1.0]]])
    layer1 = torch.zeros(1, 2, 1)
    out = output_with([layer0, layer1])
    firing_rate = FiringRate(offsets=[0.25, 0.1], multipliers=[2.0, 1.0])
    assert scalar(firing_rate(out, nn.Module())) == pytest.approx(1.01)


def test_firing_rate_scalar_offsets() -> None:
    # Rates 0.75 and 0 with offset 0.5 and multiplier 1 for both layers:
    # 0.25^2 + 0.5^2 = 0.0625 + 0.25 = 0.3125.
    layer0 = torch.tensor([[[1.0, 0.0], [1.0, 1.0]]])
    out = output_with([layer0, torch.zeros(1, 2, 1)])
    firing_rate = FiringRate(offsets=0.5, multipliers=1.0)
    assert scalar(firing_rate(out, nn.Module())) == pytest.approx(0.3125)


def test_firing_rate_rejects_wrong_list_length() -> None:
    out = output_with([torch.zeros(1, 2, 1)])
    with pytest.raises(ValueError, match=r"multipliers: got 2 values"):
        FiringRate(multipliers=[1.0, 2.0])(out, nn.Module())


def test_l1_spikes_exact() -> None:
    # B=2: layer 0 (2 neurons) has 3 spikes, layer 1 (1 neuron) has 1 spike.
    # Mean count per neuron and sample: (3 + 1) / (2 samples * 3 neurons).
    layer0 = torch.zeros(2, 2, 2)
    layer0[0, 0, 0] = layer0[0, 1, 0] = layer0[1, 0, 1] = 1.0
    layer1 = torch.zeros(2, 2, 1)
    layer1[1, 1, 0] = 1.0
    out = output_with([layer0, layer1])
    assert scalar(L1Spikes()(out, nn.Module())) == pytest.approx(4 / 6)


def _active_net() -> nn.Module:
    torch.manual_seed(0)
    return build_network(6, 4, hidden=(8,), weight_scale=4.0, recurrent=True)


def _active_input() -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return (torch.rand(4, 15, 6, generator=generator) < 0.5).float()


@pytest.mark.parametrize(
    "regulariser",
    [
        FiringRate(offsets=0.0),
        L1Spikes(),
        WeightMagnitude(limit=0.05),
        Topology(block_size=2),
    ],
    ids=["firing_rate", "l1_spikes", "weight_magnitude", "topology"],
)
def test_regulariser_gradient_reaches_weights(regulariser) -> None:
    net = _active_net()
    out = net(_active_input())
    penalty = regulariser(out, net)
    penalty.backward()
    for synapse in (net.synapses[0], net.neurons[0].recurrent):
        grad = synapse.weight.grad
        assert grad is not None
        assert torch.isfinite(grad).all()
        assert grad.abs().sum() > 0
