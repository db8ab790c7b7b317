"""Sign annealing: a weight parametrisation that hardens one sign per block.

Each synapse weight ``[N_in, N_out]`` becomes a function of a latent weight
``v`` of the same shape. Every block (``block_size`` consecutive outputs of one
input row, as laid out by :func:`spiketune.hardware.sign_blocks`) takes the
sign of its coherence, and each weight keeps its own magnitude, clipped to the
chip's weight limit. A sharpness ``alpha`` rises over training: a coherent
block passes unchanged at any ``alpha``, while an incoherent one is first
damped and finally forced to ``±1`` times its magnitudes.
:meth:`SignAnnealing.harden` replaces the parametrisation with plain weights
that are exactly sign-coherent and within the limit.
"""

from __future__ import annotations

import logging
import math

import torch
from torch import nn
from torch.nn.utils import parametrize

from spiketune.hardware.blocks import sign_blocks, unblock
from spiketune.hardware.profile import ChipProfile, get_profile
from spiketune.schedulers.shapes import anneal_value, check_anneal_range

logger = logging.getLogger(__name__)

__all__ = [
    "BlockSign",
    "SignAnnealing",
    "install_sign_annealing",
    "mark_optimizer_built",
    "optimizer_built",
]

_OPTIMIZER_BUILT = "_spiketune_optimizer_built"
# Keeps the coherence ratio finite for an all-zero block.
_EPS = 1e-12


def mark_optimizer_built(model: nn.Module) -> None:
    """Record that an optimizer now contains ``model``'s parameters."""
    setattr(model, _OPTIMIZER_BUILT, True)


def optimizer_built(model: nn.Module) -> bool:
    """Return whether :func:`mark_optimizer_built` was called on ``model``."""
    return bool(getattr(model, _OPTIMIZER_BUILT, False))


class BlockSign(nn.Module):
    """Parametrisation ``v -> min(|v|, L) * f(block coherence of v)``.

    Parameters
    ----------
    limit : float
        Weight limit :math:`L`.
    block_size : int
        Output neurons per sign block.
    alpha : float
        Initial sharpness, > 0.

    Notes
    -----
    For block :math:`b` with latent weights :math:`v_{b,k}`, the coherence is
    :math:`c_b = \\sum_k v_{b,k} / \\sum_k |v_{b,k}| \\in [-1, 1]` and

    .. math::

        w_{b,k} = \\min(|v_{b,k}|, L) \\,
                  \\frac{\\tanh(\\alpha c_b)}{\\tanh(\\alpha)}

    The factor is :math:`\\pm 1` for a coherent block at every
    :math:`\\alpha`, close to :math:`c_b` for small :math:`\\alpha`, and
    tends to :math:`\\mathrm{sign}(c_b)` as :math:`\\alpha \\to \\infty`.
    """

    def __init__(self, limit: float, block_size: int, alpha: float) -> None:
        super().__init__()
        self.limit = float(limit)
        self.block_size = int(block_size)
        self.alpha = float(alpha)

    def coherence(self, latent: torch.Tensor) -> torch.Tensor:
        """Return :math:`c_b` of every block, shaped ``[N_in, n_blocks]``."""
        blocks = sign_blocks(latent, self.block_size)
        return blocks.sum(dim=-1) / (blocks.abs().sum(dim=-1) + _EPS)

    def _spread(self, per_block: torch.Tensor, n_out: int) -> torch.Tensor:
        expanded = per_block.unsqueeze(-1).expand(-1, -1, self.block_size)
        return unblock(expanded, n_out)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """Return the annealed weight of latent weight ``latent``."""
        magnitude = latent.abs().clamp(max=self.limit)
        factor = torch.tanh(self.alpha * self.coherence(latent)) / math.tanh(self.alpha)
        return magnitude * self._spread(factor, latent.shape[1])

    def hard(self, latent: torch.Tensor) -> torch.Tensor:
        """Return the limit of :meth:`forward` as alpha grows: hard block signs."""
        magnitude = latent.abs().clamp(max=self.limit)
        sign = torch.sign(self.coherence(latent))
        return magnitude * self._spread(sign, latent.shape[1])

    def extra_repr(self) -> str:
        return (
            f"limit={self.limit:g}, block_size={self.block_size}, alpha={self.alpha:g}"
        )


def _synapses(model: nn.Module) -> list[nn.Module]:
    synapses = []
    for module in model.modules():
        if not hasattr(module, "effective_weight"):
            continue
        if parametrize.is_parametrized(module, "weight"):
            raise RuntimeError(
                f"{type(module).__name__}.weight already has a parametrisation; "
                "install sign annealing only once per model"
            )
        if isinstance(module.weight, nn.Parameter) and module.weight.ndim == 2:
            synapses.append(module)
    return synapses


class SignAnnealing:
    """Anneal the block-sign parametrisation of every 2-D synapse weight.

    Installing it replaces each synapse's ``weight`` by a :class:`BlockSign`
    parametrisation, so it must happen before the optimizer is built.
    Call :meth:`step` at the start of every epoch.

    Parameters
    ----------
    model : nn.Module
        Network whose synapses (modules with ``effective_weight``) get the
        parametrisation, recurrent synapses included.
    profile : ChipProfile or str
        Source of ``weight_limit`` and ``block_size``.
    alpha_start, alpha_end : float, default 0.5 and 20.0
        Sharpness in the first and last epoch, both > 0.
    n_epochs : int
        Number of training epochs.
    shape : str, default "linear"
        ``"linear"``, ``"exponential"`` or ``"cosine"`` curve from start to end.

    Raises
    ------
    ValueError
        If a value is out of range or the model has no 2-D synapse weight.
    RuntimeError
        If a synapse weight is already parametrised.
    """

    def __init__(
        self,
        model: nn.Module,
        profile: ChipProfile | str,
        *,
        alpha_start: float = 0.5,
        alpha_end: float = 20.0,
        n_epochs: int,
        shape: str = "linear",
    ) -> None:
        check_anneal_range(
            alpha_start,
            alpha_end,
            n_epochs,
            shape,
            "anneal.sign",
            names=("alpha_start", "alpha_end"),
        )
        self.profile = get_profile(profile)
        self.alpha_start = float(alpha_start)
        self.alpha_end = float(alpha_end)
        self.n_epochs = n_epochs
        self.shape = shape
        self.epoch = -1
        self.hardened = False
        self.modules = _synapses(model)
        if not self.modules:
            raise ValueError(
                "sign annealing found no 2-D synapse weight in the model; disable "
                "anneal.sign or build the network with synapses"
            )
        self.parametrisations: list[BlockSign] = []
        for module in self.modules:
            block_sign = BlockSign(
                self.profile.weight_limit, self.profile.block_size, self.alpha_start
            )
            parametrize.register_parametrization(module, "weight", block_sign)
            self.parametrisations.append(block_sign)
        logger.info(
            "installed sign annealing on %d synapses: alpha %g -> %g (%s, %d epochs)",
            len(self.modules),
            alpha_start,
            alpha_end,
            shape,
            n_epochs,
        )

    @property
    def alpha(self) -> float:
        """Current sharpness of every block-sign parametrisation."""
        return self.parametrisations[0].alpha

    def step(self) -> None:
        """Advance to the next epoch and set its sharpness.

        Raises
        ------
        RuntimeError
            If called after :meth:`harden`.
        """
        if self.hardened:
            raise RuntimeError("sign annealing was hardened; create a new one to train")
        self.epoch += 1
        alpha = anneal_value(
            self.alpha_start, self.alpha_end, self.epoch, self.n_epochs, self.shape
        )
        for block_sign in self.parametrisations:
            block_sign.alpha = alpha
        logger.debug("sign annealing epoch %d: alpha = %g", self.epoch, alpha)

    def harden(self) -> None:
        """Replace every parametrisation with hard, sign-coherent plain weights.

        Each weight becomes ``min(|v|, L) * sign(c_b)``, so every block shares
        one sign and every weight is within the limit. The parameter object
        stays the same, so an optimizer that contains it stays valid. A second
        call does nothing.
        """
        if self.hardened:
            return
        for module, block_sign in zip(self.modules, self.parametrisations, strict=True):
            with torch.no_grad():
                latent = module.parametrizations.weight.original
                hard_weight = block_sign.hard(latent)
            parametrize.remove_parametrizations(
                module, "weight", leave_parametrized=False
            )
            with torch.no_grad():
                module.weight.copy_(hard_weight)
        self.hardened = True
        logger.info("hardened sign annealing on %d synapses", len(self.modules))


def install_sign_annealing(
    model: nn.Module, profile: ChipProfile | str, **kwargs: object
) -> SignAnnealing:
    """Install :class:`SignAnnealing` on ``model``; keywords go to its constructor.

    Raises
    ------
    RuntimeError
        If :func:`spiketune.optim.build_optimizer` already ran for ``model``,
        because the parametrisation must exist before the optimizer is built.
    """
    if optimizer_built(model):
        raise RuntimeError(
            "sign annealing must be installed before the optimizer is built, but "
            "build_optimizer() already ran for this model; call "
            "install_sign_annealing (or build_anneal) first, then build_optimizer"
        )
    return SignAnnealing(model, profile, **kwargs)
