"""Weight quantisation and the sign-block layout shared by hardware code.

A chip lets each block of ``block_size`` neighbouring neurons receive one sign
from a given input. With feed-forward weights stored ``[N_in, N_out]``, a block
is a run of ``block_size`` consecutive columns of one row. The topology
penalty, sign annealing and the fit check all use :func:`sign_blocks`, so the
block axis is the same everywhere.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["quantize", "sign_blocks", "unblock", "incoherent_blocks"]


def sign_blocks(weight: torch.Tensor, block_size: int) -> torch.Tensor:
    """Reshape ``[N_in, N_out]`` weights into ``[N_in, n_blocks, block_size]``.

    A last, partial block is padded with zeros, which never break coherence.
    """
    n_in, n_out = weight.shape
    n_blocks = -(-n_out // block_size)
    padded = F.pad(weight, (0, n_blocks * block_size - n_out))
    return padded.reshape(n_in, n_blocks, block_size)


def unblock(blocks: torch.Tensor, n_out: int) -> torch.Tensor:
    """Invert :func:`sign_blocks`, dropping the padding columns."""
    n_in = blocks.shape[0]
    return blocks.reshape(n_in, -1)[:, :n_out]


def incoherent_blocks(weight: torch.Tensor, block_size: int) -> int:
    """Count blocks that hold both a strictly positive and a negative weight."""
    blocks = sign_blocks(weight.detach(), block_size)
    has_pos = (blocks > 0).any(dim=-1)
    has_neg = (blocks < 0).any(dim=-1)
    return int((has_pos & has_neg).sum())


class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:
        return grad_output


def quantize(weight: torch.Tensor, limit: float, bits: int) -> torch.Tensor:
    """Round weights to a symmetric grid of ``2**bits - 1`` levels.

    The grid spans ``[-limit, limit]`` in steps of ``limit / (2**(bits-1) - 1)``
    and includes zero. Gradients pass straight through the rounding.

    Parameters
    ----------
    weight : torch.Tensor
        Weights already clipped to ``[-limit, limit]``.
    limit : float
        Largest absolute weight.
    bits : int
        Signed precision; 5 bits give 15 positive levels, 15 negative levels
        and zero.
    """
    step = limit / (2 ** (bits - 1) - 1)
    return _RoundSTE.apply(weight / step) * step
