"""Tests of the annealing curves, sign annealing and the surrogate scheduler."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn.utils import parametrize

from spiketune.hardware import check_fit, get_profile, incoherent_blocks
from spiketune.network import build_network
from spiketune.optim import build_optimizer
from spiketune.schedulers import (
    SHAPES,
    BlockSign,
    SignAnnealing,
    SurrogateScheduler,
    anneal_value,
    install_sign_annealing,
)
from spiketune.schedulers.surrogate import find_surrogates


@pytest.mark.parametrize("shape", SHAPES)
def test_anneal_value_endpoints(shape: str) -> None:
    assert anneal_value(2.0, 25.0, 0, 5, shape) == pytest.approx(2.0)
    assert anneal_value(2.0, 25.0, 4, 5, shape) == 25.0
    assert anneal_value(2.0, 25.0, 9, 5, shape) == 25.0


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        # Midpoint p = 1/2 of 3 epochs from 2 to 8.
        ("linear", 5.0),  # 2 + 6 * 0.5
        ("exponential", 4.0),  # 2 * (8 / 2) ** 0.5
        ("cosine", 5.0),  # 8 + (2 - 8) * (1 + cos(pi / 2)) / 2
    ],
)
def test_anneal_value_midpoint(shape: str, expected: float) -> None:
    assert anneal_value(2.0, 8.0, 1, 3, shape) == pytest.approx(expected)


def test_anneal_value_cosine_quarter() -> None:
    # p = 1/4 of 5 epochs: 8 + (2 - 8) * (1 + cos(pi / 4)) / 2.
    expected = 8 - 6 * (1 + math.cos(math.pi / 4)) / 2
    assert anneal_value(2.0, 8.0, 1, 5, "cosine") == pytest.approx(expected)


def test_anneal_value_single_epoch_is_end() -> None:
    assert anneal_value(2.0, 8.0, 0, 1, "linear") == 8.0


def _net(recurrent: bool = True, profile: str | None = "gen1"):
    torch.manual_seed(0)
    return build_network(8, 10, hidden=(10,), recurrent=recurrent, profile=profile)


@pytest.mark.parametrize("shape", SHAPES)
def test_surrogate_scheduler_reaches_end(shape: str) -> None:
    net = _net(profile=None)
    scheduler = SurrogateScheduler(net, start=2.0, end=25.0, n_epochs=4, shape=shape)
    slopes = []
    for _ in range(4):
        scheduler.step()
        slopes.append([s.slope for s in find_surrogates(net)])
    assert slopes[0] == pytest.approx([2.0, 2.0])
    assert slopes[-1] == [25.0, 25.0]


def test_surrogate_scheduler_needs_surrogates() -> None:
    net = build_network(4, 2, hidden=(), readout="membrane")
    with pytest.raises(ValueError, match=r"no surrogate gradient"):
        SurrogateScheduler(net, start=2.0, end=25.0, n_epochs=3)


def test_surrogate_scheduler_rejects_zero_slope() -> None:
    with pytest.raises(ValueError, match=r"anneal\.surrogate\.start: 0 is not > 0"):
        SurrogateScheduler(_net(profile=None), start=0, end=25.0, n_epochs=3)


def test_block_sign_coherent_block_unchanged() -> None:
    # A coherent block has c_b = 1, so the factor is tanh(a)/tanh(a) = 1 at
    # every alpha; magnitudes are clipped to the limit 0.9.
    latent = torch.tensor([[0.5, 0.2, 1.5, 0.0, 0.1]])
    for alpha in (0.5, 20.0):
        weight = BlockSign(limit=0.9, block_size=5, alpha=alpha)(latent)
        torch.testing.assert_close(weight, torch.tensor([[0.5, 0.2, 0.9, 0.0, 0.1]]))


def test_block_sign_incoherent_block_exact() -> None:
    # c_b = (0.5 - 0.3) / (0.5 + 0.3) = 0.25; at alpha 1 the factor is
    # tanh(0.25) / tanh(1). Both weights take the block's positive sign.
    latent = torch.tensor([[0.5, -0.3, 0.0, 0.0, 0.0]])
    factor = math.tanh(0.25) / math.tanh(1.0)
    weight = BlockSign(limit=0.9, block_size=5, alpha=1.0)(latent)
    expected = torch.tensor([[0.5 * factor, 0.3 * factor, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(weight, expected)


def test_block_sign_hard_is_large_alpha_limit() -> None:
    generator = torch.Generator().manual_seed(3)
    latent = torch.randn(4, 12, generator=generator)
    block_sign = BlockSign(limit=0.9, block_size=5, alpha=1e4)
    torch.testing.assert_close(block_sign(latent), block_sign.hard(latent))


def test_sign_annealing_alpha_schedule() -> None:
    net = _net()
    annealing = SignAnnealing(net, "gen1", alpha_start=0.5, alpha_end=20.0, n_epochs=3)
    assert annealing.alpha == 0.5
    alphas = []
    for _ in range(3):
        annealing.step()
        alphas.append(annealing.alpha)
    # Linear from 0.5 to 20 over 3 epochs: 0.5, 10.25, 20.
    assert alphas == pytest.approx([0.5, 10.25, 20.0])


def test_sign_annealing_covers_recurrent_synapses() -> None:
    net = _net(recurrent=True)
    SignAnnealing(net, "gen1", n_epochs=2)
    assert parametrize.is_parametrized(net.synapses[0], "weight")
    assert parametrize.is_parametrized(net.synapses[1], "weight")
    assert parametrize.is_parametrized(net.neurons[0].recurrent, "weight")


def test_sign_annealing_gradient_reaches_latent() -> None:
    net = _net()
    SignAnnealing(net, "gen1", n_epochs=2)
    x = (torch.rand(4, 20, 8, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    out = net(x)
    (out.mem.sum() + sum(s.sum() for s in out.layer_spikes)).backward()
    latent = net.synapses[0].parametrizations.weight.original
    assert latent.grad is not None
    assert torch.isfinite(latent.grad).all()
    assert latent.grad.abs().sum() > 0


def test_harden_gives_coherent_in_range_weights() -> None:
    profile = get_profile("gen1")
    net = _net(recurrent=True)
    # Push latent weights past the limit and mix signs in every block.
    with torch.no_grad():
        for synapse in (net.synapses[0], net.synapses[1], net.neurons[0].recurrent):
            synapse.weight.normal_(0.0, 2.0)
    assert check_fit(net, profile)

    annealing = SignAnnealing(net, profile, alpha_end=20.0, n_epochs=2)
    for _ in range(2):
        annealing.step()
    assert annealing.alpha == 20.0
    annealing.harden()

    assert check_fit(net, "gen1") == []
    for synapse in (net.synapses[0], net.synapses[1], net.neurons[0].recurrent):
        assert not parametrize.is_parametrized(synapse, "weight")
        assert incoherent_blocks(synapse.weight, profile.block_size) == 0
        assert float(synapse.weight.detach().abs().max()) <= profile.weight_limit


def test_harden_keeps_parameter_objects() -> None:
    net = _net()
    annealing = install_sign_annealing(net, "gen1", n_epochs=1)
    before = {id(p) for p in net.parameters()}
    annealing.harden()
    assert {id(p) for p in net.parameters()} == before


def test_step_after_harden_raises() -> None:
    annealing = SignAnnealing(_net(), "gen1", n_epochs=2)
    annealing.harden()
    with pytest.raises(RuntimeError, match=r"hardened"):
        annealing.step()


def test_install_after_optimizer_raises() -> None:
    net = _net()
    build_optimizer(net, {"name": "adam"})
    with pytest.raises(RuntimeError, match=r"before the optimizer is built"):
        install_sign_annealing(net, "gen1", n_epochs=3)


def test_install_twice_raises() -> None:
    net = _net()
    install_sign_annealing(net, "gen1", n_epochs=3)
    with pytest.raises(RuntimeError, match=r"already has a parametrisation"):
        install_sign_annealing(net, "gen1", n_epochs=3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha_start": 0.0}, r"anneal\.sign\.alpha_start: 0\.0 is not > 0"),
        ({"shape": "step"}, r"anneal\.sign\.shape: 'step' is not valid"),
        ({"n_epochs": 0}, r"n_epochs: 0 is not an integer >= 1"),
    ],
)
def test_sign_annealing_rejects_bad_values(kwargs: dict, message: str) -> None:
    kwargs = {"n_epochs": 3, **kwargs}
    with pytest.raises(ValueError, match=message):
        SignAnnealing(_net(), "gen1", **kwargs)
