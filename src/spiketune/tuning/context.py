"""Per-trial objects handed to the training loop, and its report channel."""

from __future__ import annotations

import copy
import logging
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from spiketune.data import TaskData
from spiketune.hardware.profile import ChipProfile
from spiketune.tuning.builders import resolve_builder
from spiketune.tuning.checkpoint import save_checkpoint

__all__ = ["TrialContext", "TrialSettings"]

logger = logging.getLogger(__name__)


@dataclass
class TrialSettings:
    """Sweep-wide settings every trial needs, shipped to the workers once.

    Attributes
    ----------
    objective : str
        Reported metric to optimise, for example ``"val_accuracy"``.
    mode : str
        ``"max"`` or ``"min"``.
    model_builder : callable or str or None
        User builder, import path, or ``None`` for the built-in networks.
    train_fn : callable or None
        User training loop taking a :class:`TrialContext`; the built-in loop
        when ``None``.
    threads : int
        Torch CPU threads per trial, so concurrent trials do not oversubscribe
        the cores.
    base_seed : int
        Sweep seed; each trial derives its own seed from it and its id.
    use_gpu : bool
        Move the model and data to CUDA when a GPU share is given.
    """

    objective: str = "val_accuracy"
    mode: str = "max"
    model_builder: Callable[..., nn.Module] | str | None = None
    train_fn: Callable[[TrialContext], None] | None = None
    threads: int = 1
    base_seed: int = 0
    use_gpu: bool = False


@dataclass
class TrialContext:
    """Everything one trial built, plus :meth:`report` to send results.

    A user ``train_fn`` receives this object: it trains ``model`` on
    ``data.train`` and calls :meth:`report` once per epoch.
    """

    config: dict[str, dict[str, Any]]
    settings: TrialSettings
    data: TaskData
    model: nn.Module
    loss_fn: Any
    optimizer: torch.optim.Optimizer
    lr_scheduler: Any
    sign_annealing: Any
    surrogate_scheduler: Any
    profile: ChipProfile | None
    spec: dict[str, Any]
    seed: int
    device: torch.device
    reporter: Callable[..., None]
    builder: Callable[..., nn.Module] | None = None
    best: float | None = None
    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)

    def is_better(self, value: float) -> bool:
        """Return True if ``value`` beats the best objective so far."""
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        min_delta = float(self.config["early_stop"].get("min_delta", 0.0))
        if self.settings.mode == "max":
            return value > self.best + min_delta
        return value < self.best - min_delta

    def export_model(self) -> nn.Module:
        """Return a copy of the model as a chip would receive it.

        With sign annealing installed, the copy is a freshly built model
        holding the hard, sign-coherent weights and no parametrisation;
        otherwise it is a plain copy.
        """
        # Neuron state from the last batch contains autograd graphs, which
        # deepcopy rejects; the next forward pass resets it anyway.
        for module in self.model.modules():
            if hasattr(module, "reset_state"):
                module.reset_state()
        if self.sign_annealing is None:
            return copy.deepcopy(self.model)

        # A deepcopy of a parametrised module shares its generated class, so
        # removing the copy's parametrisation would break the original.
        builder = self.builder or resolve_builder(self.spec["builder"])
        with torch.random.fork_rng():
            plain = builder(dict(self.spec["model_cfg"]))
        plain.load_state_dict(hard_state_dict(self.model))
        return plain.to(self.device)

    def report(
        self,
        metrics: dict[str, float],
        *,
        model: nn.Module | None = None,
        status: str = "running",
    ) -> None:
        """Send one epoch's metrics to Ray Tune, with a checkpoint when better.

        Parameters
        ----------
        metrics : dict
            Must hold the objective; values are plain floats.
        model : nn.Module, optional
            The model to checkpoint when the objective improves; the exported
            copy of the trial's model when omitted.
        status : str, default "running"
            ``"running"``, or the reason this is the last report:
            ``"finished"``, ``"diverged"`` or ``"plateau"``.
        """
        self.epoch += 1
        metrics = {
            **metrics,
            "epoch": self.epoch,
            "seed": self.seed,
            "trial_status": status,
        }
        value = float(metrics.get(self.settings.objective, math.nan))
        improved = self.is_better(value)
        if improved:
            self.best = value
        metrics[f"best_{self.settings.objective}"] = (
            self.best if self.best is not None else math.nan
        )
        self.history.append(metrics)
        if not improved:
            self.reporter(metrics, checkpoint_dir=None)
            return
        with tempfile.TemporaryDirectory() as tmp:
            exported = model if model is not None else self.export_model()
            spec = {**self.spec, "epoch": self.epoch, "metrics": _plain(metrics)}
            save_checkpoint(tmp, exported.cpu(), spec)
            self.reporter(metrics, checkpoint_dir=tmp)
        self.model.to(self.device)


@torch.no_grad()
def hard_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Return a state dict with every sign-annealed weight made hard.

    Parametrised weights appear as ``<module>.weight`` holding
    ``BlockSign.hard`` of their latent weight, as after ``harden()``.
    """
    marker = ".parametrizations.weight.original"
    state = {}
    for name, tensor in model.state_dict().items():
        if name.endswith(marker):
            prefix = name.removesuffix(marker)
            module = model.get_submodule(prefix)
            block_sign = module.parametrizations.weight[0]
            state[f"{prefix}.weight"] = block_sign.hard(tensor)
        else:
            state[name] = tensor.clone()
    return state


def _plain(metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value if isinstance(value, str) else float(value)
        for key, value in metrics.items()
    }
