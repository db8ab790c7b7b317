"""Parity of the LIF layer with snnTorch's Leaky neuron (snnTorch 1.0).

Conventions, read from ``snntorch/_neurons/leaky.py`` in snnTorch 1.0:

* ``Leaky(reset_delay=False)`` fires on ``m_t = beta u_{t-1} + I_t`` and
  resets in the same step, as ``lif_step`` does. Its reset signal for step t
  is computed from the stored membrane ``u_{t-1}`` and subtracted before
  firing, and the step then adds it back. The two models therefore agree only
  while ``u_{t-1}`` stays below threshold. With threshold 1 and currents in
  ``[-0.3, 0.6)``, the subtraction reset leaves ``u < beta + 0.6 - 1 < 1`` and
  the zero reset leaves 0, so the condition is met at every step.
* In that immediate-reset branch snnTorch subtracts the *non-detached* spike,
  so gradients also flow through the reset, while ``lif_step`` detaches it.
  Gradients of a multi-step loss therefore differ by design.
* The default ``Leaky(reset_delay=True)`` with the zero reset applies
  ``(1 - s_{t-1})`` to the membrane before integrating, using a detached
  spike. That is exactly our update, with snnTorch returning the membrane
  before reset. There the gradients coincide as well.
"""

from __future__ import annotations

import pytest
import torch

snn = pytest.importorskip("snntorch")
surrogate = pytest.importorskip("snntorch.surrogate")

from spiketune.neurons import LIF, Dense  # noqa: E402
from spiketune.surrogates import get_surrogate  # noqa: E402

SURROGATE_PAIRS = {
    # (our name, our slope, snnTorch factory)
    "atan": ("atan", 2.0, lambda: surrogate.atan(alpha=2.0)),
    "atan_steep": ("atan", 5.0, lambda: surrogate.atan(alpha=5.0)),
    "fast_sigmoid": ("fast_sigmoid", 25.0, lambda: surrogate.fast_sigmoid(slope=25)),
    "fast_sigmoid_soft": (
        "fast_sigmoid",
        4.0,
        lambda: surrogate.fast_sigmoid(slope=4),
    ),
}
RESETS = {"subtraction": "subtract", "zero": "zero"}
N_IN, N_OUT, BATCH, STEPS = 7, 6, 4, 40


def make_pair(
    reset: str, pair: str, reset_delay: bool
) -> tuple[Dense, LIF, torch.nn.Linear, torch.nn.Module]:
    """Build our layer and an snnTorch layer with the same weights and beta."""
    name, slope, factory = SURROGATE_PAIRS[pair]
    torch.manual_seed(40)
    dense = Dense(N_IN, N_OUT)
    lif = LIF(
        N_OUT, tau=0.02, reset_mechanism=reset, spike_grad=get_surrogate(name, slope)
    )
    linear = torch.nn.Linear(N_IN, N_OUT, bias=False)
    with torch.no_grad():
        # Our weight is [N_in, N_out], nn.Linear's is [N_out, N_in].
        linear.weight.copy_(dense.weight.t())
    leaky = snn.Leaky(
        beta=lif.beta().detach().clone(), threshold=1.0, spike_grad=factory(),
        reset_mechanism=RESETS[reset], reset_delay=reset_delay,
    )  # fmt: skip
    return dense, lif, linear, leaky


def bounded_input(seed: int) -> torch.Tensor:
    """Return random inputs in [0, 1); ``scale_currents`` bounds the currents."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(BATCH, STEPS, N_IN, generator=generator)


def run_ours(dense: Dense, lif: LIF, x: torch.Tensor):
    lif.reset_state()
    return lif.forward_sequence(dense(x))


def run_snntorch(linear: torch.nn.Linear, leaky, x: torch.Tensor):
    mem = leaky.reset_mem()
    spikes, mems = [], []
    for t in range(x.shape[1]):
        spk, mem = leaky(linear(x[:, t]), mem)
        spikes.append(spk)
        mems.append(mem)
    return torch.stack(spikes, dim=1), torch.stack(mems, dim=1)


def scale_currents(dense: Dense, linear: torch.nn.Linear, x: torch.Tensor) -> None:
    """Scale both weights so every current lies in [-0.3, 0.6)."""
    with torch.no_grad():
        cur = x @ dense.weight
        low, high = float(cur.min()), float(cur.max())
        factor = min(0.59 / max(high, 1e-9), 0.29 / max(-low, 1e-9))
        dense.weight.mul_(factor)
        linear.weight.mul_(factor)
        cur = x @ dense.weight
    assert float(cur.max()) < 0.6
    assert float(cur.min()) >= -0.3


@pytest.mark.parametrize("pair", sorted(SURROGATE_PAIRS))
@pytest.mark.parametrize("reset", sorted(RESETS))
def test_forward_immediate_reset(reset: str, pair: str) -> None:
    dense, lif, linear, leaky = make_pair(reset, pair, reset_delay=False)
    x = bounded_input(seed=41)
    scale_currents(dense, linear, x)
    spk, mem = run_ours(dense, lif, x)
    spk_ref, mem_ref = run_snntorch(linear, leaky, x)
    assert spk.sum() > 0
    assert torch.equal(spk, spk_ref)
    torch.testing.assert_close(mem, mem_ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("pair", sorted(SURROGATE_PAIRS))
def test_grad_zero_reset_delayed(pair: str) -> None:
    dense, lif, linear, leaky = make_pair("zero", pair, reset_delay=True)
    x = bounded_input(seed=42)
    scale_currents(dense, linear, x)
    spk, mem = run_ours(dense, lif, x)
    spk_ref, mem_ref = run_snntorch(linear, leaky, x)
    assert torch.equal(spk, spk_ref)
    # snnTorch returns the membrane before the zero reset.
    torch.testing.assert_close(mem, mem_ref * (1 - spk_ref), rtol=1e-5, atol=1e-6)

    generator = torch.Generator().manual_seed(43)
    weight = torch.randn(spk.shape, generator=generator)
    (spk * weight).sum().backward()
    (spk_ref * weight).sum().backward()
    grad_ref = linear.weight.grad.t()
    assert dense.weight.grad.abs().sum() > 0
    torch.testing.assert_close(dense.weight.grad, grad_ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("pair", sorted(SURROGATE_PAIRS))
@pytest.mark.parametrize("reset", sorted(RESETS))
def test_grad_first_step(reset: str, pair: str) -> None:
    # One step from rest: no earlier reset, so both give sigma'(m - 1) x.
    dense, lif, linear, leaky = make_pair(reset, pair, reset_delay=False)
    x = bounded_input(seed=44)[:, :1] * 3.0
    spk, _ = run_ours(dense, lif, x)
    spk_ref, _ = run_snntorch(linear, leaky, x)
    spk.sum().backward()
    spk_ref.sum().backward()
    torch.testing.assert_close(dense.weight.grad, linear.weight.grad.t())


@pytest.mark.parametrize("pair", sorted(SURROGATE_PAIRS))
def test_surrogate_grad_matches(pair: str) -> None:
    name, slope, factory = SURROGATE_PAIRS[pair]
    x = torch.linspace(-1.5, 1.5, 301)
    ours = x.clone().requires_grad_(True)
    theirs = x.clone().requires_grad_(True)
    spikes = get_surrogate(name, slope)(ours)
    spikes_ref = factory()(theirs)
    assert torch.equal(spikes, spikes_ref)
    spikes.sum().backward()
    spikes_ref.sum().backward()
    torch.testing.assert_close(ours.grad, theirs.grad)
