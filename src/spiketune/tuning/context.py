"""Per-trial objects handed to the training loop, and its report channel."""

from __future__ import annotations

import copy
import logging
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from spiketune.data import TaskData
from spiketune.hardware.profile import ChipProfile
from spiketune.tuning.builders import resolve_builder
from spiketune.tuning.checkpoint import save_checkpoint

__all__ = ["TRAINING_STATE_FILE", "TrialContext", "TrialSettings"]

logger = logging.getLogger(__name__)

TRAINING_STATE_FILE = "training_state.pt"


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
    since_best: int = 0
    generator: torch.Generator = field(default_factory=torch.Generator)
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
            torch.save(self.training_state(), Path(tmp) / TRAINING_STATE_FILE)
            self.reporter(metrics, checkpoint_dir=tmp)
        self.model.to(self.device)

    def training_state(self) -> dict[str, Any]:
        """Return everything needed to continue training after this epoch."""
        sign, surrogate = self.sign_annealing, self.surrogate_scheduler
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "lr_scheduler": (
                self.lr_scheduler.state_dict() if self.lr_scheduler else None
            ),
            "sign_epoch": sign.epoch if sign is not None else None,
            "surrogate_epoch": surrogate.epoch if surrogate is not None else None,
            "epoch": self.epoch,
            "best": self.best,
            "since_best": self.since_best,
            "generator": self.generator.get_state(),
        }

    def restore(self, checkpoint_dir: str | Path) -> bool:
        """Continue from a checkpoint's training state, if it has one.

        Restores weights, optimizer, learning-rate and annealing schedules,
        the epoch counter, the best objective and the shuffling generator, so
        the trial resumes after the checkpointed epoch.

        Returns
        -------
        bool
            False when the checkpoint contains no training state.
        """
        path = Path(checkpoint_dir) / TRAINING_STATE_FILE
        if not path.is_file():
            return False
        state = torch.load(path, map_location=self.device, weights_only=False)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.lr_scheduler is not None and state["lr_scheduler"] is not None:
            self.lr_scheduler.load_state_dict(state["lr_scheduler"])
        _restore_schedule(self.sign_annealing, state["sign_epoch"])
        _restore_schedule(self.surrogate_scheduler, state["surrogate_epoch"])
        self.epoch = int(state["epoch"])
        self.best = state["best"]
        self.since_best = int(state["since_best"])
        self.generator.set_state(state["generator"])
        logger.info(
            "trial %s resumes after epoch %d", self.spec.get("trial_id"), self.epoch
        )
        return True


def _restore_schedule(schedule: Any, epoch: int | None) -> None:
    # Re-enter the saved epoch so the schedule's value matches it; the next
    # step() moves on to the following epoch.
    if schedule is None or epoch is None or epoch < 0:
        return
    schedule.epoch = epoch - 1
    schedule.step()


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
