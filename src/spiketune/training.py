"""Built-in training and evaluation loops over pre-encoded datasets."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn
from torch.utils.data import TensorDataset

from spiketune.hardware.profile import ChipProfile
from spiketune.metrics import MetricAccumulator

__all__ = ["DivergenceError", "evaluate", "iterate_batches", "train_epoch"]

logger = logging.getLogger(__name__)


class DivergenceError(RuntimeError):
    """Raised when the training loss becomes NaN or infinite."""


def iterate_batches(
    dataset: TensorDataset,
    batch_size: int,
    *,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(x, y)`` mini-batches from a tensor dataset without copying it.

    The last batch is shorter when the dataset size is not a multiple of
    ``batch_size``; :func:`spiketune.network.prepare_net` sizes the state for it.
    """
    inputs, targets = dataset.tensors[0], dataset.tensors[1]
    n = inputs.shape[0]
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for start in range(0, n, batch_size):
        index = order[start : start + batch_size]
        yield inputs[index].to(device).float(), targets[index].to(device)


def train_epoch(
    model: nn.Module,
    dataset: TensorDataset,
    loss_fn: Callable[..., Any],
    optimizer: torch.optim.Optimizer,
    *,
    batch_size: int,
    generator: torch.Generator | None = None,
    grad_clip: float | None = None,
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """Train one epoch and return the sample-weighted mean of each loss term.

    Returns
    -------
    dict
        ``loss`` (the total) and one entry per term of the composite loss.

    Raises
    ------
    DivergenceError
        If a batch loss is NaN or infinite; the weights of that step are not
        updated.
    """
    model.train()
    sums: dict[str, float] = {}
    n_seen = 0
    for x, y in iterate_batches(
        dataset, batch_size, shuffle=True, generator=generator, device=device
    ):
        result = loss_fn(model(x), y, model)
        loss = result.total
        value = float(loss.detach())
        if not math.isfinite(value):
            raise DivergenceError(f"training loss became {value}")

        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()

        batch = x.shape[0]
        n_seen += batch
        _accumulate(sums, {"loss": value, **result.terms}, batch)
    return {key: value / max(n_seen, 1) for key, value in sums.items()}


@torch.no_grad()
def evaluate(
    model: nn.Module,
    dataset: TensorDataset,
    *,
    task: str,
    n_classes: int | None,
    profile: ChipProfile | None,
    population: bool = False,
    loss_fn: Callable[..., Any] | None = None,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """Compute every metric, and the loss when given, over a whole dataset.

    Metrics accumulate counts across batches, so unequal batch sizes weigh
    each sample equally.
    """
    model.eval()
    accumulator = MetricAccumulator(
        task=task, n_classes=n_classes, profile=profile, population=population
    )
    loss_sum = 0.0
    n_seen = 0
    for x, y in iterate_batches(dataset, batch_size, device=device):
        out = model(x)
        accumulator.update(out, y)
        if loss_fn is not None:
            loss_sum += float(loss_fn(out, y, model).total) * x.shape[0]
        n_seen += x.shape[0]
    metrics = accumulator.compute()
    if loss_fn is not None:
        metrics["loss"] = loss_sum / max(n_seen, 1)
    return metrics


def _accumulate(sums: dict[str, float], values: dict[str, float], weight: int) -> None:
    for key, value in values.items():
        sums[key] = sums.get(key, 0.0) + float(value) * weight
