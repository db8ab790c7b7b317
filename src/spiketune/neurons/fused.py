"""Fused LIF recurrence over a whole sequence with a hand-written BPTT backward.

The plain sequence path calls :func:`~spiketune.neurons.functional.lif_step`
once per time step, so autograd records and later replays several small
operations per step. :class:`FusedLIFSequence` instead runs the time loop
without autograd, writing into preallocated ``[B, T, N]`` buffers, and its
backward pass runs the adjoint recurrence by hand. Everything that does not
depend on the recurrence (surrogate derivatives, reset and floor masks, the
gradients of ``beta``, the threshold and the recurrent weights) is computed
with one vectorised operation per chunk of time steps.

Notes
-----
With :math:`c_t = I_t + s_{t-1} W` (``W = 0`` without recurrence), the forward
pass is the update of :mod:`spiketune.neurons.functional`:

.. math::

    m_t = \\beta u_{t-1} + c_t, \\quad s_t = H(m_t - \\vartheta), \\quad
    v_t = \\text{reset}(m_t, s_t), \\quad u_t = \\max(v_t, f)

The reset uses the detached spike, as in ``lif_step``. Let
:math:`k_t = \\partial u_t / \\partial m_t` along the reset and floor path
(:math:`[v_t \\ge f]`, or 1 for the straight-through floor gradient, times
:math:`1 - s_t` for the zero reset) and
:math:`\\sigma'_t` the surrogate derivative at :math:`m_t - \\vartheta`. With
:math:`g^s_t, g^u_t` the incoming gradients of the outputs, the backward pass is

.. math::

    \\delta x_t = \\sigma'_t \\, (g^s_t + \\delta m_{t+1} W^\\top), \\qquad
    \\delta m_t = k_t \\, (g^u_t + \\beta \\, \\delta m_{t+1}) + \\delta x_t

from :math:`\\delta m_T = 0`. Then :math:`\\partial L / \\partial I_t = \\delta m_t`,
:math:`\\partial L / \\partial \\beta = \\sum_t \\delta m_t u_{t-1}`,
:math:`\\partial L / \\partial W = \\sum_t s_{t-1}^\\top \\delta m_t` and
:math:`\\partial L / \\partial \\vartheta = -\\sum_t \\delta x_t` plus, for the
subtraction reset, :math:`-\\sum_t s_t (\\delta m_t - \\delta x_t)`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch.autograd.function import once_differentiable

from spiketune.neurons.functional import check_floor_gradient
from spiketune.surrogates import Surrogate

__all__ = [
    "FusedLIFSequence",
    "fused_enabled",
    "fused_lif_sequence",
    "set_fused_enabled",
]

logger = logging.getLogger(__name__)

_FUSED_ENABLED = True


def set_fused_enabled(enabled: bool) -> bool:
    """Switch every LIF layer between the fused and the plain sequence path.

    Layers built with ``fused=False`` stay on the plain path either way.

    Parameters
    ----------
    enabled : bool
        ``False`` sends every :meth:`LIF.forward_sequence` call through the
        per-step :func:`~spiketune.neurons.functional.lif_step` loop.

    Returns
    -------
    bool
        The previous setting, so a caller can restore it.
    """
    global _FUSED_ENABLED
    previous = _FUSED_ENABLED
    _FUSED_ENABLED = bool(enabled)
    logger.debug("fused LIF sequence path %s", "on" if enabled else "off")
    return previous


def fused_enabled() -> bool:
    """Return whether the module-level switch allows the fused path."""
    return _FUSED_ENABLED


def fused_lif_sequence(
    cur: torch.Tensor,
    mem: torch.Tensor,
    spk: torch.Tensor,
    beta: torch.Tensor,
    threshold: torch.Tensor,
    spike_fn: Surrogate,
    reset_mechanism: str = "subtraction",
    mem_floor: float | None = None,
    w_rec: torch.Tensor | None = None,
    floor_gradient: str = "zero",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run LIF neurons over a sequence with the fused forward and backward.

    Parameters
    ----------
    cur : torch.Tensor
        Feed-forward input current ``[B, T, N]``.
    mem, spk : torch.Tensor
        Membrane after reset and spikes of the step before the sequence,
        ``[B, N]``. ``spk`` is only read when ``w_rec`` is given.
    beta, threshold : torch.Tensor
        Decay factor and firing threshold, broadcastable to ``[B, N]`` and of
        the dtype of ``cur``.
    spike_fn : Surrogate
        Spike function; its :meth:`~Surrogate.derivative` gives the backward.
    reset_mechanism : str, default "subtraction"
        ``"subtraction"``, ``"zero"`` or ``"none"``.
    mem_floor : float, optional
        Lowest allowed membrane after the reset.
    w_rec : torch.Tensor, optional
        Recurrent weight ``[N, N]`` applied to the previous step's spikes.
    floor_gradient : str, default "zero"
        Gradient of the floor, as in
        :func:`~spiketune.neurons.functional.apply_floor`.

    Returns
    -------
    spk, mem : torch.Tensor
        Spikes and membranes after reset, each ``[B, T, N]``.
    """
    check_floor_gradient(floor_gradient)
    return FusedLIFSequence.apply(
        cur, mem, spk, beta, threshold, w_rec, spike_fn, reset_mechanism, mem_floor,
        floor_gradient,
    )  # fmt: skip


class FusedLIFSequence(torch.autograd.Function):
    """Autograd function for a whole LIF sequence; see the module notes."""

    @staticmethod
    def forward(
        ctx,
        cur: torch.Tensor,
        mem0: torch.Tensor,
        spk0: torch.Tensor,
        beta: torch.Tensor,
        threshold: torch.Tensor,
        w_rec: torch.Tensor | None,
        spike_fn: Surrogate,
        reset_mechanism: str,
        mem_floor: float | None,
        floor_gradient: str,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        steps = cur.shape[1]
        # mem_pre stores m_t, the membrane before reset, for the backward pass.
        mem_pre = torch.empty_like(cur, memory_format=torch.contiguous_format)
        spk = torch.empty_like(mem_pre)
        mem = torch.empty_like(mem_pre)

        u_prev, s_prev = mem0, spk0
        for t in range(steps):
            m_t, s_t, u_t = mem_pre[:, t], spk[:, t], mem[:, t]
            if w_rec is None:
                torch.addcmul(cur[:, t], beta, u_prev, out=m_t)
            else:
                torch.addmm(cur[:, t], s_prev, w_rec, out=m_t)
                m_t.addcmul_(beta, u_prev)
            torch.gt(m_t, threshold, out=s_t)
            _reset(m_t, s_t, threshold, reset_mechanism, out=u_t)
            if mem_floor is not None:
                u_t.clamp_(min=mem_floor)
            u_prev, s_prev = u_t, s_t

        ctx.spike_fn = spike_fn
        ctx.reset_mechanism = reset_mechanism
        ctx.mem_floor = mem_floor
        ctx.floor_gradient = floor_gradient
        ctx.save_for_backward(mem_pre, spk, mem, mem0, spk0, beta, threshold, w_rec)
        ctx.set_materialize_grads(False)
        return spk, mem

    @staticmethod
    @once_differentiable
    def backward(
        ctx, grad_spk: torch.Tensor | None, grad_mem: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, ...]:
        if grad_spk is None and grad_mem is None:
            return (None,) * 10
        _, _, _, mem0, _, beta, threshold, w_rec = ctx.saved_tensors
        needs = ctx.needs_input_grad
        adjoint = _solve_adjoint(ctx, grad_spk, grad_mem)

        first = adjoint.grad_cur[:, 0]
        grad_mem0 = first * beta if needs[1] else None
        grad_spk0 = None
        if needs[2] and w_rec is not None:
            grad_spk0 = first @ w_rec.t()
        grad_beta = grad_threshold = None
        if adjoint.beta_sum is not None:
            grad_beta = adjoint.beta_sum.sum_to_size(beta.shape)
        if adjoint.threshold_sum is not None:
            grad_threshold = adjoint.threshold_sum.sum_to_size(threshold.shape)
        grad_cur = adjoint.grad_cur if needs[0] else None
        return (
            grad_cur,
            grad_mem0,
            grad_spk0,
            grad_beta,
            grad_threshold,
            adjoint.w_sum,
            None,
            None,
            None,
            None,
        )


# The backward pass handles chunks of time steps of about this many elements,
# so its temporaries stay small enough for the cache and for the allocator to
# reuse. Whole-sequence temporaries were 1.7x slower at N = 256 and 2.7x at
# N = 1024 (B = 128, T = 100, 2-core CPU), mostly from page faults.
_CHUNK_ELEMENTS = 1 << 17


@dataclass
class _Adjoint:
    """Gradient of the input current and the parameter sums of the backward."""

    grad_cur: torch.Tensor
    beta_sum: torch.Tensor | None = None
    threshold_sum: torch.Tensor | None = None
    w_sum: torch.Tensor | None = None


def _solve_adjoint(
    ctx, grad_spk: torch.Tensor | None, grad_mem: torch.Tensor | None
) -> _Adjoint:
    """Run the backward recurrence from the last step, one chunk at a time."""
    mem_pre, spk, mem, mem0, spk0, beta, threshold, w_rec = ctx.saved_tensors
    needs = ctx.needs_input_grad
    batch, steps, n = mem_pre.shape
    adjoint = _Adjoint(torch.empty_like(mem_pre))
    chunk = max(1, _CHUNK_ELEMENTS // max(1, batch * n))

    dm_next = None
    for stop in range(steps, 0, -chunk):
        start = max(0, stop - chunk)
        part = slice(start, stop)
        m, s = mem_pre[:, part], spk[:, part]
        # The surrogate slope is read now, as the plain path reads it.
        surrogate_grad = ctx.spike_fn.derivative(m - threshold)
        # The straight-through floor passes the gradient as if it were absent.
        floor = ctx.mem_floor if ctx.floor_gradient == "zero" else None
        keep = _reset_gain(ctx.reset_mechanism, floor, m, s, threshold)
        decay = beta if keep is None else keep * beta
        direct_x = None
        if grad_spk is not None:
            direct_x = surrogate_grad * grad_spk[:, part]
        direct_u = None
        if grad_mem is not None:
            direct_u = grad_mem[:, part] if keep is None else keep * grad_mem[:, part]

        dm = adjoint.grad_cur[:, part]
        if w_rec is None:
            dx = direct_x
            _feedforward_chunk(dm, direct_u, direct_x, decay, dm_next)
        else:
            dx = torch.empty_like(m, memory_format=torch.contiguous_format)
            _recurrent_chunk(
                dm, dx, direct_u, direct_x, decay, surrogate_grad, w_rec, dm_next
            )
        dm_next = dm[:, 0]

        if needs[3]:
            # sum_t delta m_t u_{t-1}, with u_{-1} the initial membrane.
            u_prev = _previous_steps(mem, mem0, start, stop)
            adjoint.beta_sum = _accumulate(adjoint.beta_sum, (dm * u_prev).sum(1))
        if needs[4]:
            total = _threshold_grad(ctx.reset_mechanism, dm, dx, s)
            adjoint.threshold_sum = _accumulate(adjoint.threshold_sum, total)
        if needs[5] and w_rec is not None:
            # sum_t s_{t-1}^T delta m_t, with s_{-1} the initial spikes.
            s_prev = _previous_steps(spk, spk0, start, stop)
            total = torch.tensordot(s_prev, dm, dims=([0, 1], [0, 1]))
            adjoint.w_sum = _accumulate(adjoint.w_sum, total)
    return adjoint


def _accumulate(total: torch.Tensor | None, value: torch.Tensor) -> torch.Tensor:
    return value if total is None else total.add_(value)


def _previous_steps(
    seq: torch.Tensor, initial: torch.Tensor, start: int, stop: int
) -> torch.Tensor:
    """Return ``seq[:, start-1:stop-1]`` with ``initial`` standing in for step -1."""
    if start > 0:
        return seq[:, start - 1 : stop - 1]
    return torch.cat([initial.unsqueeze(1), seq[:, : stop - 1]], dim=1)


def _reset(
    mem: torch.Tensor,
    spk: torch.Tensor,
    threshold: torch.Tensor,
    reset_mechanism: str,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Return the membrane after reset, ``v = reset(m, s)``, written into ``out``."""
    if out is None:
        out = torch.empty_like(mem, memory_format=torch.contiguous_format)
    if reset_mechanism == "subtraction":
        return torch.addcmul(mem, spk, threshold, value=-1.0, out=out)
    if reset_mechanism == "zero":
        # m - m * s is exactly m for s = 0 and +0 for s = 1.
        return torch.addcmul(mem, mem, spk, value=-1.0, out=out)
    return out.copy_(mem)


def _reset_gain(
    reset_mechanism: str,
    mem_floor: float | None,
    mem_pre: torch.Tensor,
    spk: torch.Tensor,
    threshold: torch.Tensor,
) -> torch.Tensor | None:
    """Return ``k_t = du_t / dm_t`` along the reset path, or None where it is 1."""
    keep = None
    if reset_mechanism == "zero":
        keep = 1.0 - spk
    if mem_floor is not None:
        # torch.clamp passes the gradient where its input is >= the bound.
        after_reset = _reset(mem_pre, spk, threshold, reset_mechanism)
        above_floor = (after_reset >= mem_floor).to(mem_pre.dtype)
        keep = above_floor if keep is None else keep * above_floor
    return keep


def _feedforward_chunk(
    dm: torch.Tensor,
    direct_u: torch.Tensor | None,
    direct_x: torch.Tensor | None,
    decay: torch.Tensor,
    dm_next: torch.Tensor | None,
) -> None:
    """Solve ``delta m_t = a_t + decay_t * delta m_{t+1}`` backward over a chunk."""
    if direct_u is None:
        constant = direct_x
    elif direct_x is None:
        constant = direct_u
    else:
        constant = direct_u + direct_x
    per_step_decay = decay.dim() == 3
    for t in range(dm.shape[1] - 1, -1, -1):
        following = dm[:, t + 1] if t + 1 < dm.shape[1] else dm_next
        if following is None:
            dm[:, t] = constant[:, t]
            continue
        decay_t = decay[:, t] if per_step_decay else decay
        torch.addcmul(constant[:, t], decay_t, following, out=dm[:, t])


def _recurrent_chunk(
    dm: torch.Tensor,
    dx: torch.Tensor,
    direct_u: torch.Tensor | None,
    direct_x: torch.Tensor | None,
    decay: torch.Tensor,
    surrogate_grad: torch.Tensor,
    w_rec: torch.Tensor,
    dm_next: torch.Tensor | None,
) -> None:
    """Solve the recurrent adjoint over a chunk, writing ``delta m`` and ``delta x``."""
    per_step_decay = decay.dim() == 3
    w_t = w_rec.t()
    from_future = torch.empty_like(dm[:, 0], memory_format=torch.contiguous_format)

    for t in range(dm.shape[1] - 1, -1, -1):
        dx_t, dm_t = dx[:, t], dm[:, t]
        following = dm[:, t + 1] if t + 1 < dm.shape[1] else dm_next
        if following is None:
            # Last step of the sequence: only the outputs' own gradients.
            _copy_or_zero(dx_t, direct_x, t)
            _copy_or_zero(dm_t, direct_u, t)
            dm_t.add_(dx_t)
            continue
        # Gradient reaching s_t through the recurrent weights of step t + 1.
        torch.mm(following, w_t, out=from_future)
        if direct_x is None:
            torch.mul(surrogate_grad[:, t], from_future, out=dx_t)
        else:
            torch.addcmul(direct_x[:, t], surrogate_grad[:, t], from_future, out=dx_t)
        decay_t = decay[:, t] if per_step_decay else decay
        if direct_u is None:
            torch.addcmul(dx_t, decay_t, following, out=dm_t)
        else:
            torch.addcmul(direct_u[:, t], decay_t, following, out=dm_t)
            dm_t.add_(dx_t)


def _copy_or_zero(out: torch.Tensor, source: torch.Tensor | None, t: int) -> None:
    if source is None:
        out.zero_()
    else:
        out.copy_(source[:, t])


def _threshold_grad(
    reset_mechanism: str,
    dm: torch.Tensor,
    dx: torch.Tensor | None,
    spk: torch.Tensor,
) -> torch.Tensor:
    """Return ``dL/dthreshold`` of a chunk summed over time, shape ``[B, N]``."""
    if reset_mechanism == "subtraction":
        # The reset subtracts s_t * threshold, whose gradient is
        # -s_t * (delta m_t - delta x_t), delta x_t being the firing path.
        total = -(spk * dm).sum(dim=1)
        if dx is not None:
            total = total - (dx * (1.0 - spk)).sum(dim=1)
        return total
    if dx is None:
        return torch.zeros_like(dm[:, 0])
    return -dx.sum(dim=1)
