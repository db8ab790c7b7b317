"""Spike functions: a Heaviside step forward and a surrogate derivative backward.

Each surrogate is called on ``x = mem - threshold`` and returns spikes in
``{0, 1}``. Its derivative replaces the Dirac delta of the step in the backward
pass. The slope is ordinary mutable state, so a scheduler can anneal it during
training (see :class:`spiketune.schedulers.SurrogateScheduler`).

Notes
-----
With ``x`` the distance of the membrane from threshold, the derivatives are

.. math::

    \\text{atan}: \\frac{\\alpha / 2}{1 + (\\frac{\\pi}{2} \\alpha x)^2}

    \\text{fast\\_sigmoid}: \\frac{1}{(k |x| + 1)^2}

    \\text{sigmoid}: k \\, \\sigma(k x) (1 - \\sigma(k x))

    \\text{triangle}: \\max(0, 1 - k |x|)

The sigmoid form uses ``sigmoid(kx) * sigmoid(-kx)`` so it never overflows.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

__all__ = [
    "ATan",
    "FastSigmoid",
    "Sigmoid",
    "Surrogate",
    "Triangle",
    "SURROGATES",
    "get_surrogate",
]


class _SpikeFunction(torch.autograd.Function):
    """Heaviside step whose backward pass calls a surrogate's derivative."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        (x,) = ctx.saved_tensors
        return grad_output * ctx.surrogate.derivative(x), None


class Surrogate:
    """Base class of surrogate spike functions.

    Parameters
    ----------
    slope : float
        Sharpness of the surrogate derivative; larger is closer to the step.

    Raises
    ------
    ValueError
        If ``slope`` is not a finite positive number.
    """

    name = "surrogate"
    default_slope = 1.0

    def __init__(self, slope: float | None = None) -> None:
        self.slope = self.default_slope if slope is None else slope

    @property
    def slope(self) -> float:
        """Sharpness of the derivative, read at every backward pass."""
        return self._slope

    @slope.setter
    def slope(self, value: float) -> None:
        value = float(value)
        if not math.isfinite(value) or value <= 0:
            raise ValueError(
                f"{self.name} slope must be a finite number > 0, got {value}; "
                "pass a positive slope such as the default "
                f"{self.default_slope}"
            )
        self._slope = value

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Return spikes ``H(x)`` with this surrogate's gradient."""
        return _SpikeFunction.apply(x, self)

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        """Return the surrogate derivative at ``x = mem - threshold``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(slope={self.slope:g})"


class ATan(Surrogate):
    """Arctangent surrogate; ``slope`` is the ``alpha`` of the usual form."""

    name = "atan"
    default_slope = 2.0

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.slope
        return (alpha / 2) / (1 + (math.pi / 2 * alpha * x) ** 2)


class FastSigmoid(Surrogate):
    """Fast-sigmoid surrogate, the derivative of ``x / (1 + k|x|)``."""

    name = "fast_sigmoid"
    default_slope = 25.0

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return 1.0 / (self.slope * x.abs() + 1.0) ** 2


class Sigmoid(Surrogate):
    """Logistic surrogate, the derivative of ``sigmoid(k x)``."""

    name = "sigmoid"
    default_slope = 25.0

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        kx = self.slope * x

        # k e^{-kx} / (1 + e^{-kx})^2 written with two bounded sigmoids.
        return self.slope * torch.sigmoid(kx) * torch.sigmoid(-kx)


class Triangle(Surrogate):
    """Triangular surrogate: ``max(0, 1 - k|x|)``, zero beyond ``1/k``."""

    name = "triangle"
    default_slope = 1.0

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(1.0 - self.slope * x.abs(), min=0.0)


SURROGATES: dict[str, Callable[..., Surrogate]] = {
    cls.name: cls for cls in (ATan, FastSigmoid, Sigmoid, Triangle)
}


def get_surrogate(spec: str | Surrogate, slope: float | None = None) -> Surrogate:
    """Build a surrogate from its name, or return an instance unchanged.

    Parameters
    ----------
    spec : str or Surrogate
        One of ``"atan"``, ``"fast_sigmoid"``, ``"sigmoid"``, ``"triangle"``,
        or an existing surrogate.
    slope : float, optional
        Slope for a surrogate built from its name; the default of that
        surrogate when omitted.

    Returns
    -------
    Surrogate
        A new surrogate, or ``spec`` itself when it is already one.

    Raises
    ------
    ValueError
        If the name is unknown; the message lists the valid names.
    """
    if isinstance(spec, Surrogate):
        return spec
    if not isinstance(spec, str):
        raise TypeError(
            f"spike_grad must be a surrogate name or Surrogate, got {spec!r}"
        )
    try:
        factory = SURROGATES[spec]
    except KeyError:
        valid = ", ".join(sorted(SURROGATES))
        raise ValueError(
            f"unknown surrogate {spec!r}; valid names are: {valid}"
        ) from None
    return factory(slope)
