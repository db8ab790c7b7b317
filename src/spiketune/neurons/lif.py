"""Leaky integrate-and-fire layer with a step API and a whole-sequence API."""

from __future__ import annotations

import torch
from torch import nn

from spiketune.neurons.functional import (
    beta_from_tau,
    check_floor_gradient,
    check_lif_params,
    lif_step,
)
from spiketune.neurons.fused import fused_enabled, fused_lif_sequence
from spiketune.neurons.synapse import Dense
from spiketune.surrogates import Surrogate, get_surrogate

__all__ = ["LIF"]


class LIF(nn.Module):
    """Layer of ``n`` leaky integrate-and-fire neurons.

    The update rule is given in :mod:`spiketune.neurons.functional`. Both
    :meth:`forward` (one step, ``[B, N] -> (spk, mem)``) and
    :meth:`forward_sequence` (``[B, T, N] -> (spk, mem)``, each ``[B, T, N]``)
    advance the same state and give identical results.

    Parameters
    ----------
    n : int
        Number of neurons.
    tau : float, default 0.02
        Membrane time constant in seconds.
    dt : float, default 1e-3
        Simulation time step in seconds.
    threshold : float, default 1.0
        Firing threshold.
    reset_mechanism : str, default "subtraction"
        ``"subtraction"``, ``"zero"`` or ``"none"``.
    spike_grad : str or Surrogate, default "fast_sigmoid"
        Surrogate gradient, by name or instance.
    learn_tau, learn_threshold : bool, default False
        Make ``tau`` or ``threshold`` a per-neuron learnable parameter.
    recurrent : bool, default False
        Add all-to-all recurrent weights ``[N, N]`` fed by the previous step's
        spikes.
    mem_floor : float, optional
        Lowest membrane value after the reset.
    floor_gradient : str, default "zero"
        Gradient of the floor: ``"zero"`` (exact, none below the floor) or
        ``"straight_through"`` (the gradient passes as if there were no
        floor). See :func:`~spiketune.neurons.functional.apply_floor`.
    fused : bool, default True
        Run :meth:`forward_sequence` through the fused recurrence of
        :mod:`spiketune.neurons.fused` instead of a per-step autograd loop.
        Both paths give the same spikes, membranes and gradients.
        :func:`~spiketune.neurons.fused.set_fused_enabled` turns the fused
        path off for every layer.

    Raises
    ------
    ValueError
        If ``tau``, ``dt`` or ``threshold`` is not positive, or the reset
        mechanism or floor gradient is unknown. A ``UserWarning`` is issued
        when ``tau < dt``.
    """

    def __init__(
        self,
        n: int,
        tau: float = 0.02,
        dt: float = 1e-3,
        threshold: float = 1.0,
        reset_mechanism: str = "subtraction",
        spike_grad: str | Surrogate = "fast_sigmoid",
        learn_tau: bool = False,
        learn_threshold: bool = False,
        recurrent: bool = False,
        mem_floor: float | None = None,
        floor_gradient: str = "zero",
        fused: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive number of neurons, got {n!r}")
        check_lif_params(tau, dt, threshold, reset_mechanism)
        check_floor_gradient(floor_gradient)
        self.n = n
        self.dt = float(dt)
        self.reset_mechanism = reset_mechanism
        self.mem_floor = mem_floor
        self.floor_gradient = floor_gradient
        self.fused = fused
        self.spike_grad = get_surrogate(spike_grad)

        tau_tensor = torch.full((n,), float(tau))
        threshold_tensor = torch.full((n,), float(threshold))
        if learn_tau:
            self.tau = nn.Parameter(tau_tensor)
        else:
            self.register_buffer("tau", tau_tensor)
        if learn_threshold:
            self.threshold = nn.Parameter(threshold_tensor)
        else:
            self.register_buffer("threshold", threshold_tensor)

        self.recurrent = self._make_recurrent() if recurrent else None
        self.mem: torch.Tensor | None = None
        self.spk: torch.Tensor | None = None

    def _make_recurrent(self) -> nn.Module:
        return Dense(self.n, self.n, bias=False, weight_scale=0.5)

    def reset_state(self) -> None:
        """Forget the membrane and spikes, so the next batch starts at rest."""
        self.mem = None
        self.spk = None

    def prepare(self) -> None:
        """Rebuild derived tensors before a batch; nothing to do in software."""

    def beta(self) -> torch.Tensor:
        """Return the per-neuron decay factor ``exp(-dt / tau)``."""
        # A learned tau may drift toward zero; keep it at least dt / 100.
        tau = torch.clamp(self.tau, min=self.dt * 1e-2)
        return beta_from_tau(tau, self.dt)

    def effective_threshold(self) -> torch.Tensor:
        """Return the per-neuron threshold used to fire."""
        # A learned threshold must stay positive.
        return torch.clamp(self.threshold, min=1e-3)

    def _init_state(self, batch: int, like: torch.Tensor) -> None:
        if self.mem is None or self.mem.shape[0] != batch:
            self.mem = torch.zeros(batch, self.n, dtype=like.dtype, device=like.device)
            self.spk = torch.zeros_like(self.mem)

    def _check_input(self, cur: torch.Tensor, ndim: int) -> None:
        expected = "[B, N]" if ndim == 2 else "[B, T, N]"
        if cur.ndim != ndim or cur.shape[-1] != self.n:
            raise ValueError(
                f"{type(self).__name__} current has shape {tuple(cur.shape)}, "
                f"expected {expected} with N = {self.n}"
            )

    def forward(self, cur: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Advance one step: current ``[B, N]`` to ``(spk, mem)``, each ``[B, N]``."""
        self._check_input(cur, 2)
        self._init_state(cur.shape[0], cur)
        beta = self.beta()
        threshold = self.effective_threshold()
        if self.recurrent is not None:
            cur = cur + self.recurrent(self.spk)
        self.spk, self.mem = lif_step(
            cur, self.mem, beta, threshold, self.spike_grad,
            self.reset_mechanism, self.mem_floor, self.floor_gradient,
        )  # fmt: skip
        return self.spk, self.mem

    def forward_sequence(self, cur: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run a whole sequence of currents ``[B, T, N]``.

        The recurrence is the only loop over time; feed-forward currents
        arrive precomputed for every step.

        Returns
        -------
        spk, mem : torch.Tensor
            Spikes and membranes after reset, each ``[B, T, N]``.
        """
        self._check_input(cur, 3)
        self._init_state(cur.shape[0], cur)
        beta = self.beta()
        threshold = self.effective_threshold()
        w_rec = None
        if self.recurrent is not None:
            w_rec = self.recurrent.effective_weight()

        if self.fused and fused_enabled():
            spikes, mems = fused_lif_sequence(
                cur, self.mem, self.spk, beta.to(cur.dtype),
                threshold.to(cur.dtype), self.spike_grad, self.reset_mechanism,
                self.mem_floor, None if w_rec is None else w_rec.to(cur.dtype),
                self.floor_gradient,
            )  # fmt: skip
            self.spk, self.mem = spikes[:, -1], mems[:, -1]
            return spikes, mems
        return self._forward_sequence_loop(cur, beta, threshold, w_rec)

    def _forward_sequence_loop(
        self,
        cur: torch.Tensor,
        beta: torch.Tensor,
        threshold: torch.Tensor,
        w_rec: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the sequence as a loop of :func:`lif_step` under autograd."""
        spk, mem = self.spk, self.mem
        spikes, mems = [], []
        for cur_t in cur.unbind(dim=1):
            if w_rec is not None:
                cur_t = cur_t + spk @ w_rec
            spk, mem = lif_step(
                cur_t, mem, beta, threshold, self.spike_grad,
                self.reset_mechanism, self.mem_floor, self.floor_gradient,
            )  # fmt: skip
            spikes.append(spk)
            mems.append(mem)
        self.spk, self.mem = spk, mem
        return torch.stack(spikes, dim=1), torch.stack(mems, dim=1)

    def extra_repr(self) -> str:
        tau = float(self.tau.mean())
        return (
            f"n={self.n}, tau={tau:g}, dt={self.dt:g}, "
            f"reset_mechanism={self.reset_mechanism!r}, spike_grad={self.spike_grad}"
        )
