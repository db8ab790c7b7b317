"""Dense synapses: spikes or currents in, synaptic current out."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["Dense"]


class Dense(nn.Module):
    """Map inputs ``[..., N_in]`` to currents ``[..., N_out]``.

    The weight is stored ``[N_in, N_out]``, so one call on a whole sequence
    ``[B, T, N_in]`` computes the currents of every time step as a single
    matrix product.

    Parameters
    ----------
    n_in, n_out : int
        Input and output sizes.
    bias : bool, default False
        Add a learnable bias per output.
    weight_scale : float, default 1.0
        Multiplier on the uniform ``1 / sqrt(n_in)`` initialisation.
    """

    def __init__(
        self, n_in: int, n_out: int, bias: bool = False, weight_scale: float = 1.0
    ) -> None:
        super().__init__()
        _check_size("n_in", n_in)
        _check_size("n_out", n_out)
        if not isinstance(weight_scale, int | float) or not weight_scale > 0:
            raise ValueError(
                f"weight_scale must be a number > 0, got {weight_scale!r}; it "
                "multiplies the default initialisation range"
            )
        self.n_in = n_in
        self.n_out = n_out
        bound = weight_scale / math.sqrt(n_in)
        self.weight = nn.Parameter(torch.empty(n_in, n_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(n_out)) if bias else None

    def effective_weight(self) -> torch.Tensor:
        """Return the weight used in the forward pass."""
        return self.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.n_in:
            raise ValueError(
                f"{type(self).__name__} input has {x.shape[-1]} features in "
                f"shape {tuple(x.shape)}, expected [..., {self.n_in}]"
            )
        out = torch.matmul(x, self.effective_weight())
        if self.bias is not None:
            out = out + self.bias
        return out

    def extra_repr(self) -> str:
        return f"n_in={self.n_in}, n_out={self.n_out}, bias={self.bias is not None}"


def _check_size(key: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key} must be a positive integer, got {value!r}")
