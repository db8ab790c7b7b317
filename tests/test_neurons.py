"""LIF dynamics, parameter checks, step and sequence APIs, fused recurrence."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from spiketune.hardware import HardwareLIF
from spiketune.neurons import LIF, Dense, LeakyReadout, beta_from_tau, lif_step
from spiketune.neurons.fused import fused_enabled, set_fused_enabled
from spiketune.surrogates import get_surrogate

# dt = 1e-3 s and tau = 1e-2 s give beta = exp(-0.1) = 0.904837...
BETA = math.exp(-0.1)
# LIF stores tau in the default dtype (float32) when it is built, so after
# .double() beta carries the float32 rounding of tau, a relative error ~1e-9.
REL = 1e-8


def make_lif(**kwargs) -> LIF:
    kwargs.setdefault("tau", 1e-2)
    kwargs.setdefault("dt", 1e-3)
    return LIF(1, **kwargs).double()


def run_trace(layer: LIF, currents: list[float]) -> tuple[list[float], list[float]]:
    cur = torch.tensor(currents, dtype=torch.float64).reshape(1, -1, 1)
    spk, mem = layer.forward_sequence(cur)
    return spk.flatten().tolist(), mem.flatten().tolist()


def test_beta_from_tau() -> None:
    tau = torch.tensor(1e-2, dtype=torch.float64)
    assert beta_from_tau(tau, 1e-3).item() == pytest.approx(BETA, rel=1e-15)


def test_two_steps_below_threshold() -> None:
    # m_1 = 0.5; m_2 = beta * 0.5 + 0.5 = 0.5 (1 + exp(-0.1)) < 1.
    spk, mem = run_trace(make_lif(), [0.5, 0.5])
    assert spk == [0.0, 0.0]
    assert mem == pytest.approx([0.5, 0.5 * (1 + BETA)], rel=REL)


# Currents 0.6, 0.6, 0.6 with threshold 1:
# t0: m = 0.6, no spike.
# t1: m = 0.6 beta + 0.6 = 1.1429 > 1, spike.
# t2: depends on the reset, see the expected values.
M1 = 0.6 * BETA + 0.6
TRACES = {
    # u1 = m1 - 1; m2 = beta u1 + 0.6 = 0.729 < 1.
    "subtraction": ([0.0, 1.0, 0.0], [0.6, M1 - 1, BETA * (M1 - 1) + 0.6]),
    # u1 = 0; m2 = 0.6.
    "zero": ([0.0, 1.0, 0.0], [0.6, 0.0, 0.6]),
    # u1 = m1; m2 = beta m1 + 0.6 = 1.634 > 1, a second spike.
    "none": ([0.0, 1.0, 1.0], [0.6, M1, BETA * M1 + 0.6]),
}


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("reset", sorted(TRACES))
def test_trace_per_reset(reset: str, fused: bool) -> None:
    expected_spk, expected_mem = TRACES[reset]
    spk, mem = run_trace(make_lif(reset_mechanism=reset, fused=fused), [0.6] * 3)
    assert spk == expected_spk
    assert mem == pytest.approx(expected_mem, rel=REL)


@pytest.mark.parametrize("fused", [True, False])
def test_trace_floor(fused: bool) -> None:
    # t1: m = 0.5 beta - 1 = -0.548 is clamped to the floor 0; t2: m = 0.2.
    layer = make_lif(mem_floor=0.0, fused=fused)
    spk, mem = run_trace(layer, [0.5, -1.0, 0.2])
    assert spk == [0.0, 0.0, 0.0]
    assert mem == pytest.approx([0.5, 0.0, 0.2], rel=REL)


def test_trace_threshold() -> None:
    # threshold 0.5: m0 = 0.6 fires and subtraction leaves 0.1.
    spk, mem = run_trace(make_lif(threshold=0.5), [0.6, 0.0])
    assert spk == [1.0, 0.0]
    assert mem == pytest.approx([0.1, 0.1 * BETA], rel=REL)


def test_lif_step_detached_reset() -> None:
    # d mem / d cur = 1 because the reset uses the detached spike.
    cur = torch.tensor([[1.5]], dtype=torch.float64, requires_grad=True)
    zeros = torch.zeros(1, 1, dtype=torch.float64)
    threshold = torch.ones(1, dtype=torch.float64)
    spk, mem = lif_step(cur, zeros, zeros, threshold, get_surrogate("triangle"))
    mem.sum().backward()
    assert spk.item() == 1.0
    assert cur.grad.item() == 1.0


@pytest.mark.parametrize(
    ("key", "kwargs"),
    [
        ("tau", {"tau": 0.0}),
        ("tau", {"tau": -0.01}),
        ("dt", {"dt": 0.0}),
        ("dt", {"dt": -1e-3}),
        ("threshold", {"threshold": 0.0}),
        ("threshold", {"threshold": -1.0}),
        ("reset_mechanism", {"reset_mechanism": "soft"}),
    ],
)
def test_invalid_param(key: str, kwargs: dict) -> None:
    with pytest.raises(ValueError, match=key):
        LIF(4, **kwargs)


def test_tau_below_dt_warns() -> None:
    with pytest.warns(UserWarning, match="shorter than dt"):
        LIF(4, tau=5e-4, dt=1e-3)


def test_step_shape_error() -> None:
    layer = LIF(4)
    with pytest.raises(ValueError) as info:
        layer(torch.zeros(2, 3, 4))
    assert "(2, 3, 4)" in str(info.value)
    assert "[B, N]" in str(info.value)


def test_sequence_shape_error() -> None:
    layer = LIF(4)
    with pytest.raises(ValueError) as info:
        layer.forward_sequence(torch.zeros(2, 3, 5))
    assert "(2, 3, 5)" in str(info.value)
    assert "[B, T, N] with N = 4" in str(info.value)


def test_dense_shape_error() -> None:
    with pytest.raises(ValueError) as info:
        Dense(3, 2)(torch.zeros(4, 5))
    assert "(4, 5)" in str(info.value)
    assert "[..., 3]" in str(info.value)


def test_dense_weight_layout() -> None:
    dense = Dense(3, 2)
    assert dense.weight.shape == (3, 2)
    x = torch.randn(4, 7, 3)
    torch.testing.assert_close(dense(x), x @ dense.weight)


@pytest.mark.parametrize("n", [0, -1, True, 2.5])
def test_dense_invalid_size(n) -> None:
    with pytest.raises(ValueError, match="n_in must be a positive integer"):
        Dense(n, 2)


def test_readout_integrates() -> None:
    readout = LeakyReadout(1, tau=1e-2, dt=1e-3).double()
    cur = torch.tensor([1.0, 0.0, 2.0], dtype=torch.float64).reshape(1, 3, 1)
    spk, mem = readout.forward_sequence(cur)
    assert spk is None
    expected = [1.0, BETA, BETA**2 + 2.0]
    assert mem.flatten().tolist() == pytest.approx(expected, rel=REL)


def step_outputs(layer: LIF, cur: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    layer.reset_state()
    outputs = [layer(cur_t) for cur_t in cur.unbind(dim=1)]
    spk = torch.stack([s for s, _ in outputs], dim=1)
    mem = torch.stack([m for _, m in outputs], dim=1)
    return spk, mem


def sequence_outputs(
    layer: LIF, cur: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    layer.reset_state()
    return layer.forward_sequence(cur)


def make_layer(kind: str, recurrent: bool, fused: bool) -> LIF:
    torch.manual_seed(3)
    if kind == "software":
        layer = LIF(12, recurrent=recurrent, fused=fused)
    else:
        layer = HardwareLIF(12, "gen1", recurrent=recurrent)
        layer.fused = fused
        layer.eval()
        layer.prepare()
    return layer.double()


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("recurrent", [False, True])
@pytest.mark.parametrize("kind", ["software", "hardware"])
def test_step_equals_sequence(kind: str, recurrent: bool, fused: bool) -> None:
    layer = make_layer(kind, recurrent, fused)
    torch.manual_seed(4)
    cur = torch.rand(5, 40, 12, dtype=torch.float64) * 0.8
    spk_step, mem_step = step_outputs(layer, cur)
    spk_seq, mem_seq = sequence_outputs(layer, cur)
    assert spk_seq.sum() > 0
    assert torch.equal(spk_step, spk_seq)
    torch.testing.assert_close(mem_step, mem_seq, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fused", [True, False])
def test_sequence_resumes_state(fused: bool) -> None:
    torch.manual_seed(5)
    layer = LIF(6, recurrent=True, fused=fused).double()
    cur = torch.rand(2, 30, 6, dtype=torch.float64)
    spk_whole, mem_whole = sequence_outputs(layer, cur)
    layer.reset_state()
    first = layer.forward_sequence(cur[:, :13])
    second = layer.forward_sequence(cur[:, 13:])
    assert torch.equal(torch.cat([first[0], second[0]], dim=1), spk_whole)
    torch.testing.assert_close(torch.cat([first[1], second[1]], dim=1), mem_whole)


# --- fused recurrence against the plain lif_step loop -----------------------


def grads_of(
    layer: LIF, cur: torch.Tensor, fused: bool, seed: int
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Run a sequence twice in a row and backpropagate a random loss."""
    layer.fused = fused
    layer.zero_grad(set_to_none=True)
    layer.reset_state()
    cur = cur.clone().requires_grad_(True)
    # Two calls, so the second one starts from a state that carries gradient.
    spk_a, mem_a = layer.forward_sequence(cur[:, :7])
    spk_b, mem_b = layer.forward_sequence(cur[:, 7:])
    spk = torch.cat([spk_a, spk_b], dim=1)
    mem = torch.cat([mem_a, mem_b], dim=1)
    generator = torch.Generator().manual_seed(seed)
    weight_spk = torch.randn(spk.shape, generator=generator, dtype=spk.dtype)
    weight_mem = torch.randn(mem.shape, generator=generator, dtype=mem.dtype)
    ((spk * weight_spk).sum() + (mem * weight_mem).sum()).backward()
    grads = {"input": cur.grad}
    for name, param in layer.named_parameters():
        grads[name] = param.grad
    return spk.detach(), mem.detach(), grads


def assert_fused_matches_plain(layer: LIF, cur: torch.Tensor) -> None:
    spk_fused, mem_fused, grads_fused = grads_of(layer, cur, True, seed=11)
    spk_plain, mem_plain, grads_plain = grads_of(layer, cur, False, seed=11)
    assert torch.equal(spk_fused, spk_plain)
    torch.testing.assert_close(mem_fused, mem_plain, rtol=1e-12, atol=1e-12)
    assert grads_fused.keys() == grads_plain.keys()
    for name in grads_plain:
        assert grads_plain[name] is not None, name
        torch.testing.assert_close(
            grads_fused[name], grads_plain[name], rtol=1e-10, atol=1e-12, msg=name
        )


def plain_input(n: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    cur = torch.randn(3, 25, n, generator=generator, dtype=torch.float64) * 0.7
    # A silent first step puts membranes exactly on the floor 0.
    cur[:, 0] = 0.0
    return cur


CASES = list(
    itertools.product(["subtraction", "zero", "none"], [None, 0.0], [False, True])
)


@pytest.mark.parametrize(("reset", "floor", "recurrent"), CASES)
@pytest.mark.parametrize("learn", ["fixed", "tau", "threshold", "both"])
def test_fused_matches_plain(
    reset: str, floor: float | None, recurrent: bool, learn: str
) -> None:
    torch.manual_seed(7)
    layer = LIF(
        6, reset_mechanism=reset, mem_floor=floor, recurrent=recurrent,
        learn_tau=learn in ("tau", "both"),
        learn_threshold=learn in ("threshold", "both"), spike_grad="atan",
    ).double()  # fmt: skip
    with torch.no_grad():
        # Spread the parameters, so per-neuron gradients are distinguishable.
        layer.tau.mul_(torch.linspace(0.5, 2.0, 6, dtype=torch.float64))
        layer.threshold.mul_(torch.linspace(0.6, 1.2, 6, dtype=torch.float64))
    assert_fused_matches_plain(layer, plain_input(6, seed=8))


@pytest.mark.parametrize("surrogate", ["atan", "fast_sigmoid", "sigmoid", "triangle"])
def test_fused_surrogates(surrogate: str) -> None:
    torch.manual_seed(9)
    layer = LIF(5, spike_grad=get_surrogate(surrogate, 3.0), learn_threshold=True)
    assert_fused_matches_plain(layer.double(), plain_input(5, seed=10))


@pytest.mark.parametrize("profile", ["gen1", "gen2"])
@pytest.mark.parametrize("recurrent", [False, True])
def test_fused_hardware(profile: str, recurrent: bool) -> None:
    torch.manual_seed(12)
    layer = HardwareLIF(8, profile, recurrent=recurrent).double()
    layer.train()
    layer.prepare()
    # Mismatch drawn once above stays fixed for both runs.
    assert layer.tau_scale is not None
    assert_fused_matches_plain(layer, plain_input(8, seed=13))


def test_fused_float32() -> None:
    torch.manual_seed(14)
    layer = LIF(16, recurrent=True, learn_tau=True)
    cur = plain_input(16, seed=15).float()
    spk_fused, mem_fused, grads_fused = grads_of(layer, cur, True, seed=1)
    spk_plain, mem_plain, grads_plain = grads_of(layer, cur, False, seed=1)
    assert torch.equal(spk_fused, spk_plain)
    torch.testing.assert_close(mem_fused, mem_plain)
    for name in grads_plain:
        # Float32 sums in a different order differ by a few ulp of the largest
        # gradient over 25 recurrent steps.
        scale = float(grads_plain[name].abs().max())
        torch.testing.assert_close(
            grads_fused[name], grads_plain[name], rtol=1e-5, atol=1e-5 * scale, msg=name
        )


def test_fused_only_spike_loss() -> None:
    # The membrane output gets no gradient, the case of hidden layers.
    torch.manual_seed(16)
    layer = LIF(4, recurrent=True).double()
    cur = plain_input(4, seed=17)
    results = []
    for fused in (True, False):
        layer.fused = fused
        layer.reset_state()
        layer.zero_grad(set_to_none=True)
        x = cur.clone().requires_grad_(True)
        spk, _ = layer.forward_sequence(x)
        spk.sum().backward()
        results.append((x.grad, layer.recurrent.weight.grad))
    torch.testing.assert_close(results[0][0], results[1][0])
    torch.testing.assert_close(results[0][1], results[1][1])


def test_fused_default_on() -> None:
    layer = LIF(3)
    assert layer.fused
    assert fused_enabled()
    spk, _ = layer.forward_sequence(torch.rand(2, 4, 3, requires_grad=True))
    assert type(spk.grad_fn).__name__ == "FusedLIFSequenceBackward"


def test_fused_switch_off() -> None:
    previous = set_fused_enabled(False)
    try:
        layer = LIF(3)
        spk, _ = layer.forward_sequence(torch.rand(2, 4, 3, requires_grad=True))
        assert type(spk.grad_fn).__name__ != "FusedLIFSequenceBackward"
    finally:
        set_fused_enabled(previous)
    assert fused_enabled()


def test_fused_no_grad() -> None:
    layer = LIF(3)
    with torch.no_grad():
        spk, mem = layer.forward_sequence(torch.rand(2, 4, 3))
    assert spk.shape == (2, 4, 3)
    assert not mem.requires_grad


# --- floor gradient -----------------------------------------------------------

# Currents [0.5, -1.0, 0.2] under the floor 0: the step-1 membrane
# 0.5 beta - 1 is clamped to 0, so the last membrane is 0.2 and no neuron fires.
# d u_2 / d I_t is beta**(2 - t) through the floor for straight-through and
# zero for steps 0 and 1 under the exact gradient.
FLOOR_GRADS = {
    "zero": [0.0, 0.0, 1.0],
    "straight_through": [BETA**2, BETA, 1.0],
}


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("floor_gradient", ["zero", "straight_through"])
def test_floor_gradient_values(floor_gradient: str, fused: bool) -> None:
    layer = make_lif(mem_floor=0.0, floor_gradient=floor_gradient, fused=fused)
    cur = torch.tensor([0.5, -1.0, 0.2], dtype=torch.float64).reshape(1, 3, 1)
    cur.requires_grad_(True)
    _, mem = layer.forward_sequence(cur)
    mem[0, -1, 0].backward()
    assert mem.flatten().tolist() == pytest.approx([0.5, 0.0, 0.2], rel=REL)
    expected = FLOOR_GRADS[floor_gradient]
    assert cur.grad.flatten().tolist() == pytest.approx(expected, rel=REL)


@pytest.mark.parametrize("reset", ["subtraction", "zero", "none"])
@pytest.mark.parametrize("recurrent", [False, True])
@pytest.mark.parametrize("learn", ["fixed", "both"])
def test_fused_matches_plain_straight_through(
    reset: str, recurrent: bool, learn: str
) -> None:
    torch.manual_seed(16)
    layer = LIF(
        6, reset_mechanism=reset, mem_floor=0.0, floor_gradient="straight_through",
        recurrent=recurrent, learn_tau=learn == "both",
        learn_threshold=learn == "both", spike_grad="atan",
    ).double()  # fmt: skip
    with torch.no_grad():
        layer.tau.mul_(torch.linspace(0.5, 2.0, 6, dtype=torch.float64))
        layer.threshold.mul_(torch.linspace(0.6, 1.2, 6, dtype=torch.float64))
    assert_fused_matches_plain(layer, plain_input(6, seed=17))


def test_floor_gradient_without_floor() -> None:
    # With no floor the setting changes nothing.
    layer = LIF(4, floor_gradient="straight_through").double()
    cur = plain_input(4, seed=18)
    reference = LIF(4).double()
    spk, mem = layer.forward_sequence(cur)
    spk_ref, mem_ref = reference.forward_sequence(cur)
    assert torch.equal(spk, spk_ref)
    assert torch.equal(mem, mem_ref)


def test_floor_gradient_invalid() -> None:
    with pytest.raises(ValueError, match="straight_through"):
        LIF(2, mem_floor=0.0, floor_gradient="identity")
