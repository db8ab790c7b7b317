"""Chip profiles, hardware layers, quantisation, mismatch and the fit check."""

from __future__ import annotations

import math

import pytest
import torch

from spiketune.hardware import (
    PROFILES,
    ChipProfile,
    HardwareDense,
    HardwareLIF,
    check_fit,
    get_profile,
    incoherent_blocks,
    load_profile,
    quantize,
)
from spiketune.network import SNN, build_network, prepare_net
from spiketune.neurons import LIF, Dense

# --- quantisation -----------------------------------------------------------


def test_quantize_levels() -> None:
    # 5 signed bits and limit 0.9: step 0.9 / (2**4 - 1) = 0.06, levels
    # k * 0.06 for k = -15..15, that is 31 levels including 0.
    step = 0.9 / 15
    weights = torch.linspace(-0.9, 0.9, 2001, dtype=torch.float64)
    levels = torch.unique(quantize(weights, 0.9, 5))
    expected = torch.arange(-15, 16, dtype=torch.float64) * step
    assert levels.numel() == 31
    assert (levels == 0).any()
    torch.testing.assert_close(levels, expected, rtol=0, atol=1e-15)


def test_quantize_rounds_nearest() -> None:
    step = 0.9 / 15
    weights = torch.tensor([0.4 * step, 0.6 * step, -1.4 * step], dtype=torch.float64)
    result = quantize(weights, 0.9, 5)
    expected = torch.tensor([0.0, step, -step], dtype=torch.float64)
    torch.testing.assert_close(result, expected, rtol=0, atol=1e-15)


def test_quantize_straight_through() -> None:
    weights = torch.tensor([0.013, -0.5, 0.77], requires_grad=True)
    quantize(weights, 0.9, 5).sum().backward()
    assert weights.grad.tolist() == [1.0, 1.0, 1.0]


def test_dense_clip_and_quantize() -> None:
    dense = HardwareDense(2, 5, "gen1").eval()
    with torch.no_grad():
        dense.weight.copy_(torch.tensor([[2.0, -3.0, 0.1, 0.0, 0.89], [0.0] * 5]))
    dense.prepare()
    effective = dense.effective_weight()[0]
    step = 0.9 / 15
    expected = torch.tensor([0.9, -0.9, 2 * step, 0.0, 0.9])
    torch.testing.assert_close(effective, expected)


def test_dense_quantize_off() -> None:
    dense = HardwareDense(3, 4, "gen1", quantize_weights=False).eval()
    dense.prepare()
    torch.testing.assert_close(dense.effective_weight(), dense.weight)


def test_dense_init_clipped() -> None:
    # Initialisation bound 20 / sqrt(2) = 14.1 is far above the limit 0.9.
    dense = HardwareDense(2, 50, "gen1", weight_scale=20.0)
    assert float(dense.weight.detach().abs().max()) <= 0.9


# --- mismatch ---------------------------------------------------------------


def test_synapse_mismatch_stats() -> None:
    # gen1: additive noise of std 0.02 on 250 * 200 = 50000 weights.
    # Standard errors: mean 0.02 / sqrt(n) = 8.9e-5, std 0.02 / sqrt(2 n)
    # = 6.3e-5. The bounds are 5 standard errors.
    torch.manual_seed(20)
    dense = HardwareDense(250, 200, "gen1").train()
    dense.prepare()
    noise = dense.noise
    n = noise.numel()
    assert abs(float(noise.mean())) < 5 * 0.02 / math.sqrt(n)
    assert abs(float(noise.std()) - 0.02) < 5 * 0.02 / math.sqrt(2 * n)


def test_synapse_mismatch_fresh_per_batch() -> None:
    torch.manual_seed(21)
    dense = HardwareDense(10, 10, "gen1").train()
    dense.prepare()
    first = dense.noise.clone()
    dense.prepare()
    assert not torch.equal(first, dense.noise)


def test_synapse_mismatch_eval_off() -> None:
    dense = HardwareDense(10, 10, "gen1").eval()
    dense.prepare()
    assert dense.noise is None
    with torch.no_grad():
        quantised = quantize(dense.weight.clamp(-0.9, 0.9), 0.9, 5)
    torch.testing.assert_close(dense.effective_weight(), quantised)


def test_synapse_mismatch_eval_on() -> None:
    dense = HardwareDense(10, 10, "gen1", eval_mismatch=True).eval()
    dense.prepare()
    assert dense.noise is not None


def test_synapse_mismatch_gen2_none() -> None:
    # gen2 models no synaptic mismatch.
    dense = HardwareDense(10, 10, "gen2").train()
    dense.prepare()
    assert dense.noise is None


def test_leak_mismatch_stats() -> None:
    # gen1: tau scale 1 + 0.1 z for 20000 neurons. Standard errors: mean
    # 0.1 / sqrt(n) = 7.1e-4, std 0.1 / sqrt(2 n) = 5e-4; bounds are 5 of them.
    torch.manual_seed(22)
    layer = HardwareLIF(20000, "gen1").train()
    layer.prepare()
    scale = layer.tau_scale
    n = scale.numel()
    assert abs(float(scale.mean()) - 1.0) < 5 * 0.1 / math.sqrt(n)
    assert abs(float(scale.std()) - 0.1) < 5 * 0.1 / math.sqrt(2 * n)
    assert layer.threshold_scale is None


def test_threshold_mismatch_stats() -> None:
    # gen2: threshold scale 1 + 0.02 z, same 5-standard-error bounds.
    torch.manual_seed(23)
    layer = HardwareLIF(20000, "gen2").train()
    layer.prepare()
    scale = layer.threshold_scale
    n = scale.numel()
    assert abs(float(scale.mean()) - 1.0) < 5 * 0.02 / math.sqrt(n)
    assert abs(float(scale.std()) - 0.02) < 5 * 0.02 / math.sqrt(2 * n)


def test_neuron_mismatch_eval_off() -> None:
    layer = HardwareLIF(8, "gen2").eval()
    layer.prepare()
    assert layer.tau_scale is None
    assert layer.threshold_scale is None
    torch.testing.assert_close(layer.effective_threshold(), torch.ones(8))


def test_neuron_mismatch_eval_on() -> None:
    layer = HardwareLIF(8, "gen2", eval_mismatch=True).eval()
    layer.prepare()
    assert layer.tau_scale is not None
    assert layer.threshold_scale is not None


def test_neuron_mismatch_off() -> None:
    layer = HardwareLIF(8, "gen1", mismatch=False).train()
    layer.prepare()
    assert layer.tau_scale is None


# --- hardware LIF -----------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "snapped"),
    [(0.016, 0.016), (0.02, 0.016), (0.025, 0.032), (1e-4, 0.002), (10.0, 0.512)],
)
def test_tau_snapped(requested: float, snapped: float) -> None:
    # gen1 time constants are dt * 2**k, k = 1..9: 2 ms to 512 ms.
    layer = HardwareLIF(4, "gen1", tau=requested)
    assert layer.requested_tau == requested
    assert float(layer.tau[0]) == pytest.approx(snapped)


def test_lif_chip_constants() -> None:
    layer = HardwareLIF(4, "gen1")
    assert layer.reset_mechanism == "subtraction"
    assert layer.mem_floor == 0.0
    assert layer.dt == 1e-3
    assert layer.threshold.tolist() == [1.0] * 4


def test_lif_floor_at_zero() -> None:
    layer = HardwareLIF(1, "gen1").eval()
    layer.prepare()
    cur = torch.tensor([0.5, -2.0, 0.3]).reshape(1, 3, 1)
    _, mem = layer.forward_sequence(cur)
    assert mem.flatten().tolist() == pytest.approx([0.5, 0.0, 0.3])


def test_recurrent_is_hardware() -> None:
    layer = HardwareLIF(6, "gen2", recurrent=True)
    assert isinstance(layer.recurrent, HardwareDense)
    assert layer.recurrent.profile.name == "gen2"


# --- profiles ---------------------------------------------------------------


def test_gen1_facts() -> None:
    gen1 = get_profile("gen1")
    assert gen1.weight_limit == 0.9
    assert gen1.core_sizes == (64, 64, 64, 64)
    assert gen1.n_neurons == 256
    assert gen1.block_size == 5
    assert gen1.weight_bits == 5


def test_gen2_facts() -> None:
    gen2 = get_profile("gen2")
    assert gen2.weight_limit == 1.66
    assert gen2.core_sizes == (50, 50, 100)
    assert gen2.n_neurons == 200
    assert gen2.block_size == 5


def test_profile_unknown_name() -> None:
    with pytest.raises(ValueError) as info:
        get_profile("gen9")
    assert "gen1" in str(info.value)
    assert "gen2" in str(info.value)


def test_profile_from_yaml(tmp_path) -> None:
    path = tmp_path / "mychip.yaml"
    path.write_text(
        "weight_limit: 1.2\n"
        "core_sizes: [32, 32]\n"
        "weight_bits: 4\n"
        "synapse_mismatch_std: 0.01\n"
    )
    profile = load_profile(path)
    assert profile.name == "mychip"
    assert profile.weight_limit == 1.2
    assert profile.core_sizes == (32, 32)
    assert profile.weight_bits == 4
    assert get_profile(str(path)) == profile
    # 4 bits: step 1.2 / 7.
    dense = HardwareDense(1, 1, profile).eval()
    with torch.no_grad():
        dense.weight.fill_(0.5)
    dense.prepare()
    assert float(dense.effective_weight().detach()) == pytest.approx(3 * 1.2 / 7)


def test_profile_unknown_key(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("weight_limit: 1.0\nweight_limt: 2.0\n")
    with pytest.raises(ValueError) as info:
        load_profile(path)
    assert "weight_limt" in str(info.value)
    assert "weight_limit" in str(info.value)


def test_profile_missing_file(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        load_profile(tmp_path / "absent.yaml")


def test_profile_not_mapping(tmp_path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="YAML mapping"):
        load_profile(path)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("weight_limit", 0.0),
        ("threshold", -1.0),
        ("block_size", 0),
        ("weight_bits", 1),
        ("reset_mechanism", "soft"),
        ("core_sizes", ()),
        ("leak_mismatch_std", -0.1),
    ],
)
def test_profile_invalid_field(key: str, value) -> None:
    data = {"name": "x", "weight_limit": 1.0, key: value}
    with pytest.raises(ValueError, match=key):
        ChipProfile.from_dict(data)


def test_profile_round_trip() -> None:
    for profile in PROFILES.values():
        assert ChipProfile.from_dict(profile.to_dict()) == profile


# --- fit check --------------------------------------------------------------


def fitting_network() -> SNN:
    torch.manual_seed(30)
    net = build_network(20, 5, hidden=(40,), profile="gen1", recurrent=True)
    with torch.no_grad():
        for dense in net.synapses:
            # One sign per weight keeps every block coherent.
            dense.weight.abs_()
        net.neurons[0].recurrent.weight.abs_()
    return net


def test_fit_empty_when_fitting() -> None:
    assert check_fit(fitting_network(), "gen1") == []


def test_fit_ignores_mismatch() -> None:
    # Weights at the limit plus mismatch would exceed it; the chip receives
    # the noise-free weight.
    net = fitting_network().train()
    with torch.no_grad():
        net.synapses[0].weight.fill_(0.9)
    prepare_net(net)
    assert net.synapses[0].noise is not None
    assert check_fit(net, "gen1") == []
    assert net.synapses[0].noise is not None


def test_fit_lists_all_violations() -> None:
    torch.manual_seed(31)
    layers = [Dense(10, 300), LIF(300, recurrent=True), Dense(300, 4), LIF(4)]
    net = SNN(layers)
    with torch.no_grad():
        # Mixed signs in every block of the first synapse.
        net.synapses[0].weight.copy_(torch.tensor([1.0, -1.0]).repeat(10, 150) * 0.1)
        net.synapses[1].weight.abs_()
        net.synapses[1].weight[0, 0] = 5.0
        net.neurons[0].recurrent.weight.abs_()
    violations = check_fit(net, "gen1")
    text = "\n".join(violations)
    assert len(violations) == 4
    assert "304 neurons" in text
    assert "recurrent layer of 300 neurons" in text
    assert "max |w| = 5" in text
    assert "600 blocks" in text


def test_incoherent_blocks_count() -> None:
    # Two rows, blocks of 5 columns; row 0 mixes signs in block 0 only, and
    # zeros never break coherence.
    weight = torch.zeros(2, 10)
    weight[0, 0], weight[0, 4] = 0.5, -0.5
    weight[1, 5], weight[1, 9] = 0.5, 0.2
    assert incoherent_blocks(weight, 5) == 1


# --- floor gradient -----------------------------------------------------------


@pytest.mark.parametrize("name", ["gen1", "gen2"])
def test_profile_floor_gradient_default(name: str) -> None:
    assert PROFILES[name].floor_gradient == "straight_through"
    assert HardwareLIF(3, name).floor_gradient == "straight_through"


def test_lif_floor_gradient_override() -> None:
    layer = HardwareLIF(3, "gen2", floor_gradient="zero")
    assert layer.floor_gradient == "zero"
    assert layer.mem_floor == 0.0


def test_lif_floor_gradient_from_profile() -> None:
    profile = ChipProfile(name="exact", weight_limit=1.0, floor_gradient="zero")
    assert HardwareLIF(3, profile).floor_gradient == "zero"


def test_profile_floor_gradient_invalid() -> None:
    with pytest.raises(ValueError) as info:
        ChipProfile(name="bad", weight_limit=1.0, floor_gradient="identity")
    assert "floor_gradient" in str(info.value)
    assert "identity" in str(info.value)


def test_lif_floor_gradient_recovers() -> None:
    # The current is negative at t = 1, so the membrane sits on the floor 0
    # and the exact gradient of the last membrane to I_0 is zero. The
    # straight-through gradient is beta**2 with gen1's tau = 16 ms, dt = 1 ms.
    beta = math.exp(-1e-3 / 0.016)
    cur = torch.tensor([0.5, -2.0, 0.3]).reshape(1, 3, 1)
    grads = {}
    for floor_gradient in ("zero", "straight_through"):
        layer = HardwareLIF(1, "gen1", floor_gradient=floor_gradient).eval()
        layer.prepare()
        leaf = cur.clone().requires_grad_(True)
        _, mem = layer.forward_sequence(leaf)
        mem[0, -1, 0].backward()
        grads[floor_gradient] = leaf.grad.flatten().tolist()
    assert grads["zero"] == pytest.approx([0.0, 0.0, 1.0])
    assert grads["straight_through"] == pytest.approx([beta**2, beta, 1.0])
