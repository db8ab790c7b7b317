"""SNN container, network builders, prepare_net and whole-network paths."""

from __future__ import annotations

import pytest
import torch

from spiketune.hardware import HardwareDense, HardwareLIF
from spiketune.network import SNN, NetworkOutput, build_network, prepare_net
from spiketune.neurons import LIF, Dense, LeakyReadout
from spiketune.neurons.fused import set_fused_enabled


def spikes_input(batch: int, steps: int, n: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, steps, n, generator=generator) < 0.3).float()


@pytest.mark.parametrize("readout", ["spike", "membrane"])
def test_output_shapes(readout: str) -> None:
    torch.manual_seed(0)
    net = build_network(12, 3, hidden=(10, 8), readout=readout)
    out = net(spikes_input(4, 9, 12))
    assert isinstance(out, NetworkOutput)
    assert out.mem.shape == (4, 9, 3)
    assert out.n_steps == 9
    assert out.dt == 1e-3
    assert out.input_fan_out == 10
    if readout == "spike":
        assert out.spikes.shape == (4, 9, 3)
        assert [s.shape[-1] for s in out.layer_spikes] == [10, 8, 3]
        assert out.fan_out == [8, 3, 0]
    else:
        assert out.spikes is None
        assert [s.shape[-1] for s in out.layer_spikes] == [10, 8]
        assert out.fan_out == [8, 3]


def test_fan_out_recurrent() -> None:
    net = build_network(6, 2, hidden=(5,), recurrent=True)
    # Each hidden spike reaches 2 outputs and 5 recurrent targets.
    assert net.fan_out() == [7, 0]


def test_builder_hardware_layers() -> None:
    net = build_network(6, 2, hidden=(5,), profile="gen2", recurrent=True)
    assert all(isinstance(s, HardwareDense) for s in net.synapses)
    assert all(isinstance(n, HardwareLIF) for n in net.neurons)
    assert net.neurons[0].recurrent is not None
    assert net.neurons[1].recurrent is None
    assert net.profile.name == "gen2"


def test_builder_membrane_chip_rejected() -> None:
    with pytest.raises(ValueError, match="readout 'membrane'"):
        build_network(6, 2, profile="gen1", readout="membrane")


def test_builder_unknown_readout() -> None:
    with pytest.raises(ValueError, match="'spike' or 'membrane'"):
        build_network(6, 2, readout="rate")


def test_input_shape_error() -> None:
    net = build_network(6, 2)
    with pytest.raises(ValueError) as info:
        net(torch.zeros(3, 6))
    assert "(3, 6)" in str(info.value)
    assert "[B, T, 6]" in str(info.value)


def test_layers_must_chain() -> None:
    with pytest.raises(ValueError, match="3 outputs but layer 1 has 4 neurons"):
        SNN([Dense(2, 3), LIF(4)])


def test_layers_must_alternate() -> None:
    with pytest.raises(ValueError, match="alternating"):
        SNN([Dense(2, 3)])


def test_readout_only_last() -> None:
    layers = [Dense(2, 3), LeakyReadout(3), Dense(3, 2), LIF(2)]
    with pytest.raises(ValueError, match="only the last neuron layer"):
        SNN(layers)


@pytest.mark.parametrize("recurrent", [False, True])
@pytest.mark.parametrize("profile", [None, "gen1", "gen2"])
def test_forward_equals_steps(profile: str | None, recurrent: bool) -> None:
    torch.manual_seed(1)
    net = build_network(
        10, 4, hidden=(16,), profile=profile, recurrent=recurrent, weight_scale=3.0
    ).double()
    net.eval()
    x = spikes_input(3, 30, 10, seed=2).double()
    seq = net(x)
    steps = net.forward_steps(x)
    assert seq.spikes.sum() > 0
    assert torch.equal(seq.spikes, steps.spikes)
    torch.testing.assert_close(seq.mem, steps.mem, rtol=1e-12, atol=1e-12)
    for a, b in zip(seq.layer_spikes, steps.layer_spikes, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("profile", [None, "gen1"])
def test_short_final_batch(profile: str | None) -> None:
    torch.manual_seed(3)
    net = build_network(8, 3, hidden=(6,), profile=profile, recurrent=True).train()
    net(spikes_input(16, 5, 8))
    # prepare_net inside forward resizes the state to the smaller batch.
    out = net(spikes_input(5, 5, 8))
    assert out.mem.shape == (5, 5, 3)
    out.mem.sum().backward()
    steps = net.forward_steps(spikes_input(2, 5, 8))
    assert steps.mem.shape == (2, 5, 3)


def test_prepare_net_resets_state() -> None:
    torch.manual_seed(4)
    net = build_network(8, 3, hidden=(6,))
    net(spikes_input(4, 5, 8))
    assert net.neurons[0].mem is not None
    prepare_net(net)
    assert net.neurons[0].mem is None
    assert net.neurons[1].spk is None


def test_prepare_net_draws_mismatch() -> None:
    torch.manual_seed(5)
    net = build_network(8, 3, hidden=(6,), profile="gen1").train()
    prepare_net(net)
    first = net.synapses[0].noise.clone()
    prepare_net(net)
    assert not torch.equal(first, net.synapses[0].noise)
    net.eval()
    prepare_net(net)
    assert net.synapses[0].noise is None


def network_grads(net: SNN, x: torch.Tensor, fused: bool) -> list[torch.Tensor]:
    previous = set_fused_enabled(fused)
    try:
        net.zero_grad(set_to_none=True)
        # The same seed draws the same mismatch in both runs.
        torch.manual_seed(6)
        out = net(x)
        loss = out.spikes.sum(dim=1).square().mean() + out.mem.square().mean()
        loss.backward()
    finally:
        set_fused_enabled(previous)
    return [p.grad.clone() for p in net.parameters()]


@pytest.mark.parametrize("profile", [None, "gen1", "gen2"])
def test_network_fused_matches_plain(profile: str | None) -> None:
    torch.manual_seed(7)
    net = build_network(
        10, 4, hidden=(16, 12), profile=profile, recurrent=True, weight_scale=3.0,
        learn_tau=profile is None,
    ).double().train()  # fmt: skip
    x = spikes_input(3, 20, 10, seed=8).double()
    fused = network_grads(net, x, fused=True)
    plain = network_grads(net, x, fused=False)
    assert len(fused) == len(plain)
    for a, b in zip(fused, plain, strict=True):
        assert a.abs().sum() > 0
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
