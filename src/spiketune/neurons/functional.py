"""Pure functions for one leaky integrate-and-fire (LIF) time step.

Notes
-----
The membrane is discretised with :math:`\\beta = e^{-dt / \\tau}`:

.. math::

    m_t = \\beta u_{t-1} + I_t, \\qquad s_t = H(m_t - \\vartheta)

followed by the reset that gives the stored state :math:`u_t`:
subtraction :math:`u_t = m_t - s_t \\vartheta`, zero :math:`u_t = m_t (1 - s_t)`
or none :math:`u_t = m_t`, and an optional floor :math:`u_t = \\max(u_t, f)`.
The reset term uses the detached spike, so gradients flow through the firing
and not through the reset, as is common in surrogate-gradient training.

The floor's exact derivative is zero wherever it clamps, so a neuron whose
current is negative carries no gradient from one step to the next. The
``"straight_through"`` floor gradient passes the gradient through the floor as
if it were absent, while the forward pass still clamps.
"""

from __future__ import annotations

import math
import warnings

import torch

from spiketune.surrogates import Surrogate

__all__ = [
    "FLOOR_GRADIENTS",
    "RESET_MECHANISMS",
    "apply_floor",
    "beta_from_tau",
    "check_floor_gradient",
    "check_lif_params",
    "lif_step",
]

RESET_MECHANISMS = ("subtraction", "zero", "none")
FLOOR_GRADIENTS = ("zero", "straight_through")


def beta_from_tau(tau: torch.Tensor | float, dt: float) -> torch.Tensor:
    """Return the decay factor ``exp(-dt / tau)`` for ``tau`` and ``dt`` in s."""
    tau = torch.as_tensor(tau)
    return torch.exp(-dt / tau)


def check_lif_params(
    tau: float | torch.Tensor, dt: float, threshold: float | torch.Tensor, reset: str
) -> None:
    """Reject invalid LIF parameters and warn when ``tau < dt``.

    Raises
    ------
    ValueError
        If ``tau``, ``dt`` or ``threshold`` is not positive, or ``reset`` is
        not a known reset mechanism.
    """
    if not isinstance(dt, int | float) or not math.isfinite(dt) or dt <= 0:
        raise ValueError(f"dt must be > 0 s, got {dt!r}; set the step in seconds")
    tau_min = float(torch.as_tensor(tau, dtype=torch.float64).min())
    if not math.isfinite(tau_min) or tau_min <= 0:
        raise ValueError(
            f"tau must be > 0 s, got {tau_min!r}; set a positive time constant "
            "in seconds"
        )
    threshold_min = float(torch.as_tensor(threshold, dtype=torch.float64).min())
    if not math.isfinite(threshold_min) or threshold_min <= 0:
        raise ValueError(
            f"threshold must be > 0, got {threshold_min!r}; set a positive "
            "firing threshold"
        )
    if reset not in RESET_MECHANISMS:
        raise ValueError(
            f"reset_mechanism must be one of {', '.join(RESET_MECHANISMS)}, "
            f"got {reset!r}"
        )
    if tau_min < dt:
        warnings.warn(
            f"tau = {tau_min:g} s is shorter than dt = {dt:g} s, so the neuron "
            f"keeps less than exp(-1) of its membrane after one step; use "
            "tau >= dt unless this is intended",
            stacklevel=3,
        )


def check_floor_gradient(floor_gradient: str, key: str = "floor_gradient") -> None:
    """Raise ValueError unless ``floor_gradient`` is a known floor gradient."""
    if floor_gradient not in FLOOR_GRADIENTS:
        raise ValueError(
            f"{key} must be one of {', '.join(FLOOR_GRADIENTS)}, got {floor_gradient!r}"
        )


class _StraightThroughFloor(torch.autograd.Function):
    """``max(mem, floor)`` in the forward pass, the identity in the backward."""

    @staticmethod
    def forward(ctx, mem: torch.Tensor, floor: float) -> torch.Tensor:
        return torch.clamp(mem, min=floor)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad, None


def apply_floor(
    mem: torch.Tensor, mem_floor: float, floor_gradient: str = "zero"
) -> torch.Tensor:
    """Clamp the membrane at ``mem_floor`` with the chosen gradient.

    Parameters
    ----------
    mem : torch.Tensor
        Membrane after the reset.
    mem_floor : float
        Lowest allowed membrane.
    floor_gradient : str, default "zero"
        ``"zero"`` is the exact derivative of the clamp: no gradient where the
        membrane is below the floor. ``"straight_through"`` passes the
        gradient unchanged everywhere.

    Returns
    -------
    torch.Tensor
        ``max(mem, mem_floor)``, the same values for both gradients.
    """
    if floor_gradient == "straight_through":
        return _StraightThroughFloor.apply(mem, mem_floor)
    check_floor_gradient(floor_gradient)
    return torch.clamp(mem, min=mem_floor)


def lif_step(
    cur: torch.Tensor,
    mem: torch.Tensor,
    beta: torch.Tensor,
    threshold: torch.Tensor,
    spike_fn: Surrogate,
    reset_mechanism: str = "subtraction",
    mem_floor: float | None = None,
    floor_gradient: str = "zero",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advance LIF neurons by one time step.

    Parameters
    ----------
    cur : torch.Tensor
        Input current ``[B, N]``.
    mem : torch.Tensor
        Membrane after the previous step's reset, ``[B, N]``.
    beta : torch.Tensor
        Decay factor per neuron, broadcastable to ``[B, N]``.
    threshold : torch.Tensor
        Firing threshold, broadcastable to ``[B, N]``.
    spike_fn : Surrogate
        Spike function with its surrogate gradient.
    reset_mechanism : str, default "subtraction"
        ``"subtraction"``, ``"zero"`` or ``"none"``.
    mem_floor : float, optional
        Lowest allowed membrane after the reset.
    floor_gradient : str, default "zero"
        Gradient of the floor, see :func:`apply_floor`.

    Returns
    -------
    spk, mem : torch.Tensor
        Spikes and the membrane after reset, both ``[B, N]``.
    """
    # Decay and integrate.
    mem = beta * mem + cur

    # Fire.
    spk = spike_fn(mem - threshold)

    # Reset with the detached spike.
    if reset_mechanism == "subtraction":
        mem = mem - spk.detach() * threshold
    elif reset_mechanism == "zero":
        mem = mem * (1.0 - spk.detach())

    if mem_floor is not None:
        mem = apply_floor(mem, mem_floor, floor_gradient)
    return spk, mem
