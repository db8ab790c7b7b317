"""Per-epoch annealing of the slope of every surrogate gradient in a model."""

from __future__ import annotations

import logging

from torch import nn

from spiketune.schedulers.shapes import anneal_value, check_anneal_range
from spiketune.surrogates import Surrogate

logger = logging.getLogger(__name__)

__all__ = ["SurrogateScheduler", "find_surrogates"]


def find_surrogates(model: nn.Module) -> list[Surrogate]:
    """Return each distinct :class:`Surrogate` held as ``spike_grad`` in ``model``."""
    found: dict[int, Surrogate] = {}
    for module in model.modules():
        surrogate = getattr(module, "spike_grad", None)
        if isinstance(surrogate, Surrogate):
            found.setdefault(id(surrogate), surrogate)
    return list(found.values())


class SurrogateScheduler:
    """Set the slope of every surrogate in a model once per epoch.

    Call :meth:`step` at the start of every epoch: epoch 0 gets ``start`` and
    epoch ``n_epochs - 1`` gets ``end``. The slope is set to ``start`` at
    construction.

    Parameters
    ----------
    model : nn.Module
        Network whose neuron layers hold surrogates as ``spike_grad``.
    start, end : float
        Slope in the first and last epoch, both > 0.
    n_epochs : int
        Number of training epochs.
    shape : str, default "linear"
        ``"linear"``, ``"exponential"`` or ``"cosine"``.

    Raises
    ------
    ValueError
        If a value is out of range or the model has no surrogate.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        start: float,
        end: float,
        n_epochs: int,
        shape: str = "linear",
    ) -> None:
        check_anneal_range(start, end, n_epochs, shape, "anneal.surrogate")
        self.start = float(start)
        self.end = float(end)
        self.n_epochs = n_epochs
        self.shape = shape
        self.epoch = -1
        self.surrogates = find_surrogates(model)
        if not self.surrogates:
            raise ValueError(
                "anneal.surrogate.enabled: the model has no surrogate gradient to "
                "anneal; set enabled to false"
            )
        self._set(self.start)

    @property
    def slope(self) -> float:
        """Current slope of every surrogate."""
        return self.surrogates[0].slope

    def _set(self, slope: float) -> None:
        for surrogate in self.surrogates:
            surrogate.slope = slope

    def step(self) -> None:
        """Advance to the next epoch and set its slope."""
        self.epoch += 1
        slope = anneal_value(
            self.start, self.end, self.epoch, self.n_epochs, self.shape
        )
        self._set(slope)
        logger.debug("surrogate epoch %d: slope = %g", self.epoch, slope)
