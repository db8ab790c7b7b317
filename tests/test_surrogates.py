"""Surrogate spike functions: Heaviside forward, formula gradients backward."""

from __future__ import annotations

import math

import pytest
import torch

from spiketune.surrogates import SURROGATES, Surrogate, get_surrogate

POINTS = [-1.0, -0.1, -0.013, 0.0, 0.02, 0.3, 2.5]


def atan_grad(x: float, a: float) -> float:
    return (a / 2) / (1 + (math.pi / 2 * a * x) ** 2)


def fast_sigmoid_grad(x: float, k: float) -> float:
    return 1 / (k * abs(x) + 1) ** 2


def sigmoid_grad(x: float, k: float) -> float:
    # k e^{-kx} / (1 + e^{-kx})^2, evaluated where e^{-kx} does not overflow.
    e = math.exp(-k * x)
    return k * e / (1 + e) ** 2


def triangle_grad(x: float, k: float) -> float:
    return max(0.0, 1 - k * abs(x))


FORMULAS = {
    "atan": (atan_grad, 2.0),
    "fast_sigmoid": (fast_sigmoid_grad, 25.0),
    "sigmoid": (sigmoid_grad, 25.0),
    "triangle": (triangle_grad, 1.0),
}


def surrogate_grad(surrogate: Surrogate, x: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    surrogate(x).sum().backward()
    return x.grad


@pytest.mark.parametrize("name", sorted(FORMULAS))
@pytest.mark.parametrize("x", POINTS)
def test_grad_default_slope(name: str, x: float) -> None:
    formula, default_slope = FORMULAS[name]
    surrogate = get_surrogate(name)
    assert surrogate.slope == default_slope
    grad = surrogate_grad(surrogate, torch.tensor([x], dtype=torch.float64))
    assert grad.item() == pytest.approx(formula(x, default_slope), rel=1e-12)


@pytest.mark.parametrize("name", sorted(FORMULAS))
@pytest.mark.parametrize("slope", [0.5, 4.0, 100.0])
def test_grad_custom_slope(name: str, slope: float) -> None:
    formula, _ = FORMULAS[name]
    surrogate = get_surrogate(name, slope)
    x = torch.tensor(POINTS, dtype=torch.float64)
    expected = torch.tensor([formula(p, slope) for p in POINTS], dtype=torch.float64)
    torch.testing.assert_close(surrogate_grad(surrogate, x), expected)


@pytest.mark.parametrize("name", sorted(SURROGATES))
def test_forward_heaviside(name: str) -> None:
    x = torch.tensor([-2.0, -1e-7, 0.0, 1e-7, 3.0])
    spikes = get_surrogate(name)(x)
    # H(0) = 0: a membrane exactly at threshold does not fire.
    assert spikes.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]
    assert spikes.dtype == x.dtype


@pytest.mark.parametrize("name", sorted(SURROGATES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("magnitude", [1e4, 1e30])
def test_grad_finite_extremes(name: str, dtype: torch.dtype, magnitude: float) -> None:
    x = torch.tensor([-magnitude, magnitude], dtype=dtype)
    grad = surrogate_grad(get_surrogate(name), x)
    assert torch.isfinite(grad).all()
    # Far from threshold every surrogate derivative is (close to) zero.
    assert grad.abs().max() < 1e-3


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_slope_mutable(name: str) -> None:
    formula, _ = FORMULAS[name]
    surrogate = get_surrogate(name)
    x = torch.tensor([0.05], dtype=torch.float64)
    surrogate.slope = 7.0
    # The new slope applies to the next backward pass.
    assert surrogate_grad(surrogate, x).item() == pytest.approx(formula(0.05, 7.0))


@pytest.mark.parametrize("slope", [0.0, -1.0, float("nan"), float("inf")])
def test_slope_invalid(slope: float) -> None:
    with pytest.raises(ValueError, match="slope must be a finite number > 0"):
        get_surrogate("atan", slope)


def test_unknown_name_lists_valid() -> None:
    with pytest.raises(ValueError) as info:
        get_surrogate("relu")
    message = str(info.value)
    assert "'relu'" in message
    for name in ("atan", "fast_sigmoid", "sigmoid", "triangle"):
        assert name in message


def test_instance_passthrough() -> None:
    surrogate = get_surrogate("sigmoid", 3.0)
    assert get_surrogate(surrogate) is surrogate


def test_non_string_rejected() -> None:
    with pytest.raises(TypeError, match="surrogate name or Surrogate"):
        get_surrogate(3)


def test_grad_scales_upstream() -> None:
    surrogate = get_surrogate("fast_sigmoid")
    x = torch.tensor([0.1, -0.2], dtype=torch.float64, requires_grad=True)
    upstream = torch.tensor([3.0, -2.0], dtype=torch.float64)
    surrogate(x).backward(upstream)
    expected = [3.0 * fast_sigmoid_grad(0.1, 25), -2.0 * fast_sigmoid_grad(-0.2, 25)]
    assert x.grad.tolist() == pytest.approx(expected, rel=1e-12)
