"""Task and activity metrics accumulated over batches.

Metric names are stable, because tuning reports and configs refer to them:

- classification: ``accuracy``, ``precision_macro``, ``recall_macro``,
  ``f1_macro``, ``precision_c{k}`` and ``recall_c{k}`` per class ``k``, and
  ``population_accuracy`` for population read-outs;
- regression: ``mse``;
- activity (see :mod:`spiketune.activity`): ``spike_rate_hz_l{i}``,
  ``silent_fraction_l{i}``, ``spikes_per_sample``, ``synops_per_sample`` and
  ``energy_per_sample_j`` (an estimate).

Class scores are the spike counts of the output neurons, or the maximum of
the membrane over time for a membrane read-out. The predicted class is the
highest score, and ties go to the lowest class index (the first maximum, as
``torch.argmax`` returns it).

A class with no true samples has recall 0, a class never predicted has
precision 0, and a class with neither has F1 0. The macro averages run over
all ``n_classes`` classes, like scikit-learn with ``labels=range(n_classes)``
and ``zero_division=0``.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

import spiketune.activity  # noqa: F401  (registers the activity metrics)
from spiketune.activity import ActivityAccumulator
from spiketune.hardware.profile import ChipProfile
from spiketune.losses import (
    TASKS,
    check_population_size,
    reduce_membrane,
    regression_prediction,
)
from spiketune.network import NetworkOutput
from spiketune.registry import register_metric

logger = logging.getLogger(__name__)

__all__ = [
    "MetricAccumulator",
    "accuracy",
    "class_scores",
    "f1_per_class",
    "f1_macro",
    "mean_squared_error",
    "precision_macro",
    "precision_per_class",
    "recall_macro",
    "recall_per_class",
]


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    numerator = numerator.astype(np.float64)
    denominator = denominator.astype(np.float64)
    result = np.zeros_like(numerator)
    np.divide(numerator, denominator, out=result, where=denominator > 0)
    return result


@register_metric("accuracy", mode="max")
def accuracy(confusion: np.ndarray) -> float:
    """Return the fraction of samples on the diagonal of ``confusion``."""
    return float(np.trace(confusion) / confusion.sum())


register_metric("population_accuracy", mode="max")(accuracy)


@register_metric("precision_c{k}", mode="max")
def precision_per_class(confusion: np.ndarray) -> np.ndarray:
    """Return ``tp / (tp + fp)`` per class, 0 for a class never predicted."""
    return _safe_divide(np.diag(confusion), confusion.sum(axis=0))


@register_metric("recall_c{k}", mode="max")
def recall_per_class(confusion: np.ndarray) -> np.ndarray:
    """Return ``tp / (tp + fn)`` per class, 0 for a class with no samples."""
    return _safe_divide(np.diag(confusion), confusion.sum(axis=1))


def f1_per_class(confusion: np.ndarray) -> np.ndarray:
    """Return ``2 tp / (2 tp + fp + fn)`` per class, 0 when the denominator is 0."""
    tp = np.diag(confusion)
    denominator = confusion.sum(axis=0) + confusion.sum(axis=1)
    return _safe_divide(2 * tp, denominator)


@register_metric("precision_macro", mode="max")
def precision_macro(confusion: np.ndarray) -> float:
    """Return the unweighted mean of the per-class precision."""
    return float(precision_per_class(confusion).mean())


@register_metric("recall_macro", mode="max")
def recall_macro(confusion: np.ndarray) -> float:
    """Return the unweighted mean of the per-class recall."""
    return float(recall_per_class(confusion).mean())


@register_metric("f1_macro", mode="max")
def f1_macro(confusion: np.ndarray) -> float:
    """Return the unweighted mean of the per-class F1 score."""
    return float(f1_per_class(confusion).mean())


@register_metric("mse", mode="min")
def mean_squared_error(squared_error_sum: float, n_elements: int) -> float:
    """Return the mean squared error from its running sum and element count."""
    return squared_error_sum / n_elements


def class_scores(out: NetworkOutput) -> torch.Tensor:
    """Return ``[B, N]`` output scores: spike counts, or max-over-time membrane."""
    if out.spikes is not None:
        return out.spikes.detach().sum(dim=1)
    return reduce_membrane(out.mem.detach(), "max")


def _check_target_range(target: torch.Tensor, n_classes: int) -> None:
    outside = target[(target < 0) | (target >= n_classes)]
    if outside.numel():
        raise ValueError(
            f"target contains class {int(outside[0])}, outside "
            f"[0, {n_classes - 1}]; pass the dataset's n_classes"
        )


class MetricAccumulator:
    """Confusion counts, squared errors and activity summed over batches.

    Parameters
    ----------
    task : str
        ``"classification"`` or ``"regression"``.
    n_classes : int, optional
        Number of classes; the number of outputs when omitted and
        ``population`` is False.
    profile : ChipProfile, optional
        Source of the energy constants for the energy estimate.
    population : bool, default False
        Treat the outputs as ``n_classes`` equal contiguous groups. The
        predicted class, used by ``population_accuracy`` and by the confusion
        matrix, is then the group with the most spikes. ``accuracy`` stays the
        group of the single most active neuron.
    mem_reduce : str, default "max"
        Reduction over time of the membrane for ``mse`` with ``[B, N]``
        targets; use the loss's ``loss.mem_reduce``.

    Raises
    ------
    ValueError
        If ``task`` is unknown, or ``population`` is set without
        ``n_classes``.
    """

    def __init__(
        self,
        *,
        task: str,
        n_classes: int | None,
        profile: ChipProfile | None,
        population: bool = False,
        mem_reduce: str = "max",
    ) -> None:
        if task not in TASKS:
            raise ValueError(
                f"task {task!r} is not valid; use one of {', '.join(TASKS)}"
            )
        if population and n_classes is None:
            raise ValueError(
                "population metrics need n_classes; pass the number of classes"
            )
        self.task = task
        self.n_classes = n_classes
        self.population = population
        self.mem_reduce = mem_reduce
        self.activity = ActivityAccumulator(profile)
        self.reset()

    def reset(self) -> None:
        """Forget every batch seen."""
        self.activity.reset()
        self._confusion: np.ndarray | None = None
        self._neuron_correct = 0
        self._squared_error_sum = 0.0
        self._n_elements = 0

    def update(self, out: NetworkOutput, target: torch.Tensor) -> None:
        """Add one batch; counts are summed, so batch sizes may differ."""
        self.activity.update(out)
        if self.task == "regression":
            self._update_regression(out, target)
        else:
            self._update_classification(out, target)

    def _update_regression(self, out: NetworkOutput, target: torch.Tensor) -> None:
        prediction = regression_prediction(out, target, self.mem_reduce).detach()
        error = (prediction - target.to(prediction.dtype)) ** 2
        self._squared_error_sum += float(error.sum())
        self._n_elements += error.numel()

    def _update_classification(self, out: NetworkOutput, target: torch.Tensor) -> None:
        scores = class_scores(out)
        n_outputs = scores.shape[-1]
        n_classes = self.n_classes if self.n_classes is not None else n_outputs
        target = target.detach().long()
        _check_target_range(target, n_classes)
        if self.population:
            if out.spikes is None:
                raise ValueError(
                    "population metrics need a spiking output layer, but the "
                    "network has a membrane read-out; set population=False"
                )
            check_population_size(n_outputs, n_classes)
            group_size = n_outputs // n_classes
            neuron_winner = scores.argmax(dim=-1) // group_size
            self._neuron_correct += int((neuron_winner == target).sum())
            group_scores = scores.reshape(-1, n_classes, group_size).sum(dim=-1)
            prediction = group_scores.argmax(dim=-1)
        else:
            if n_outputs != n_classes:
                raise ValueError(
                    f"n_classes is {n_classes} but the network has {n_outputs} "
                    "outputs; pass population=True for grouped outputs or match "
                    "n_classes to the outputs"
                )
            prediction = scores.argmax(dim=-1)
        self._add_confusion(target, prediction, n_classes)

    def _add_confusion(
        self, target: torch.Tensor, prediction: torch.Tensor, n_classes: int
    ) -> None:
        flat = target * n_classes + prediction
        counts = torch.bincount(flat, minlength=n_classes * n_classes)
        counts = counts.reshape(n_classes, n_classes).cpu().numpy()
        if self._confusion is None:
            self._confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
        self._confusion += counts

    def confusion_matrix(self) -> np.ndarray:
        """Return the ``[true, predicted]`` sample counts of all batches seen.

        Raises
        ------
        RuntimeError
            If the task is not classification or no batch was added.
        """
        if self._confusion is None:
            raise RuntimeError(
                "no classification batch seen; call update() on a classification "
                "accumulator first"
            )
        return self._confusion.copy()

    def compute(self) -> dict[str, float]:
        """Return every metric of the samples seen, by its stable name.

        Raises
        ------
        RuntimeError
            If no batch was added.
        """
        metrics = self.activity.compute()
        if self.task == "regression":
            metrics["mse"] = mean_squared_error(
                self._squared_error_sum, self._n_elements
            )
            return metrics
        confusion = self.confusion_matrix()
        if self.population:
            metrics["population_accuracy"] = accuracy(confusion)
            metrics["accuracy"] = self._neuron_correct / int(confusion.sum())
        else:
            metrics["accuracy"] = accuracy(confusion)
        metrics["precision_macro"] = precision_macro(confusion)
        metrics["recall_macro"] = recall_macro(confusion)
        metrics["f1_macro"] = f1_macro(confusion)
        precision = precision_per_class(confusion)
        recall = recall_per_class(confusion)
        for k in range(confusion.shape[0]):
            metrics[f"precision_c{k}"] = float(precision[k])
            metrics[f"recall_c{k}"] = float(recall[k])
        return metrics
