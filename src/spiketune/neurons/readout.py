"""Non-spiking leaky integrator read-out for membrane-based losses."""

from __future__ import annotations

import torch
from torch import nn

from spiketune.neurons.functional import beta_from_tau, check_lif_params

__all__ = ["LeakyReadout"]


class LeakyReadout(nn.Module):
    """Leaky integrator that never fires: ``m_t = beta m_{t-1} + I_t``.

    Parameters
    ----------
    n : int
        Number of read-out units.
    tau : float, default 0.02
        Time constant in seconds.
    dt : float, default 1e-3
        Simulation time step in seconds.
    """

    spiking = False

    def __init__(self, n: int, tau: float = 0.02, dt: float = 1e-3) -> None:
        super().__init__()
        check_lif_params(tau, dt, 1.0, "none")
        self.n = n
        self.dt = float(dt)
        self.register_buffer("tau", torch.full((n,), float(tau)))
        self.mem: torch.Tensor | None = None

    def reset_state(self) -> None:
        """Set the membrane back to rest."""
        self.mem = None

    def forward(self, cur: torch.Tensor) -> tuple[None, torch.Tensor]:
        """Advance one step; returns ``(None, mem)`` since nothing fires."""
        if self.mem is None or self.mem.shape[0] != cur.shape[0]:
            self.mem = torch.zeros_like(cur)
        self.mem = beta_from_tau(self.tau, self.dt) * self.mem + cur
        return None, self.mem

    def forward_sequence(self, cur: torch.Tensor) -> tuple[None, torch.Tensor]:
        """Integrate currents ``[B, T, N]``; returns ``(None, mem [B, T, N])``."""
        mems = []
        for cur_t in cur.unbind(dim=1):
            mems.append(self.forward(cur_t)[1])
        return None, torch.stack(mems, dim=1)
