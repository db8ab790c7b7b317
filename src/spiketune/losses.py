"""Task losses and the composite loss built from a config's ``loss`` section.

Config layout and defaults::

    loss:
      task: ce_count        # ce_count | ce_mem | population | mse
      mem_reduce: max       # ce_mem and mse: max | mean of the membrane over time
      population_on:        # population loss only
        n_classes: null     # required for task population
        on_rate: 0.2        # target spikes per step of the target class's group
        off_rate: 0.0       # target spikes per step of every other group
      regularisers:         # optional; see spiketune.regularisers
        firing_rate: {weight: 0.1, offsets: 0.02, multipliers: 1.0}
        l1_spikes: {weight: 1.0e-4}
        weight_magnitude: {weight: 1.0, limit: null}
        topology: {weight: 0.5, block_size: null}

Dataset tasks are ``"classification"`` (integer class targets ``[B]``) and
``"regression"`` (float targets ``[B, N_out]`` or ``[B, T, N_out]``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import spiketune.regularisers  # noqa: F401  (registers the regularisers)
from spiketune.hardware.profile import ChipProfile
from spiketune.network import NetworkOutput
from spiketune.registry import (
    LOSSES,
    REGULARISERS,
    Entry,
    Param,
    register_loss,
)

logger = logging.getLogger(__name__)

__all__ = [
    "TASKS",
    "CeCount",
    "CeMem",
    "CompositeLoss",
    "LossResult",
    "Mse",
    "Population",
    "build_loss",
    "check_output_compatible",
    "reduce_membrane",
    "regression_prediction",
    "validate_loss_config",
]

TASKS = ("classification", "regression")
MEM_REDUCTIONS = ("max", "mean")

_MEM_REDUCE = Param(
    "mem_reduce",
    "str",
    "max",
    choices=MEM_REDUCTIONS,
    doc="reduction of the output membrane over time",
)


def reduce_membrane(mem: torch.Tensor, reduction: str) -> torch.Tensor:
    """Reduce a membrane ``[B, T, N]`` over time to ``[B, N]`` by max or mean."""
    if reduction == "max":
        return mem.max(dim=1).values
    if reduction == "mean":
        return mem.mean(dim=1)
    raise ValueError(
        f"loss.mem_reduce: {reduction!r} is not valid; set one of "
        f"{', '.join(MEM_REDUCTIONS)}"
    )


def regression_prediction(
    out: NetworkOutput, target: torch.Tensor, mem_reduce: str
) -> torch.Tensor:
    """Return the output membrane shaped like a regression target.

    A ``[B, T, N]`` target is compared step by step with the membrane. A
    ``[B, N]`` target is compared with the membrane reduced over time.
    """
    if target.ndim == 3:
        return out.mem
    return reduce_membrane(out.mem, mem_reduce)


def _check_class_target(target: torch.Tensor, batch: int, n_classes: int) -> None:
    if target.ndim != 1 or target.shape[0] != batch:
        raise ValueError(
            f"classification target has shape {tuple(target.shape)}, expected "
            f"[{batch}] (one class index per sample)"
        )
    if target.is_floating_point():
        raise ValueError(
            f"classification target has dtype {target.dtype}, expected an integer "
            "class index; convert it with target.long()"
        )
    outside = target[(target < 0) | (target >= n_classes)]
    if outside.numel():
        raise ValueError(
            f"classification target contains class {int(outside[0])}, outside "
            f"[0, {n_classes - 1}]; check loss.task and the number of output "
            "neurons or population_on.n_classes"
        )


def _require_spikes(out: NetworkOutput, name: str) -> torch.Tensor:
    if out.spikes is None:
        raise ValueError(
            f"loss.task: {name!r} needs a spiking output layer, but the network "
            "has a membrane read-out; set loss.task to 'ce_mem' or "
            "model.readout to 'spike'"
        )
    return out.spikes


@register_loss("ce_count", tasks=("classification",))
class CeCount:
    """Cross-entropy with each output neuron's spike count as its logit.

    Notes
    -----
    With :math:`c_n = \\sum_t s_{t,n}` and target class :math:`y`,

    .. math::

        \\ell = -\\log \\frac{e^{c_y}}{\\sum_n e^{c_n}}

    averaged over the batch.
    """

    def __call__(self, out: NetworkOutput, target: torch.Tensor) -> torch.Tensor:
        """Return the batch-mean loss."""
        counts = _require_spikes(out, "ce_count").sum(dim=1)
        return F.cross_entropy(counts, target)

    def check_output(self, out: NetworkOutput, target: torch.Tensor) -> None:
        """Raise ValueError if ``out`` or ``target`` cannot feed this loss."""
        spikes = _require_spikes(out, "ce_count")
        _check_class_target(target, spikes.shape[0], spikes.shape[-1])


@register_loss("ce_mem", params=(_MEM_REDUCE,), tasks=("classification",))
class CeMem:
    """Cross-entropy with the output membrane, reduced over time, as logits.

    Parameters
    ----------
    mem_reduce : str, default "max"
        ``"max"`` or ``"mean"`` of the membrane over time.

    Notes
    -----
    With :math:`m_{t,n}` the output membrane, :math:`z_n = \\max_t m_{t,n}`
    (or the mean over time), and the loss is :math:`-\\log \\mathrm{softmax}(z)_y`.
    """

    def __init__(self, *, mem_reduce: str = "max") -> None:
        self.mem_reduce = mem_reduce

    def __call__(self, out: NetworkOutput, target: torch.Tensor) -> torch.Tensor:
        """Return the batch-mean loss."""
        return F.cross_entropy(reduce_membrane(out.mem, self.mem_reduce), target)

    def check_output(self, out: NetworkOutput, target: torch.Tensor) -> None:
        """Raise ValueError if ``target`` does not match the read-out."""
        _check_class_target(target, out.mem.shape[0], out.mem.shape[-1])


@register_loss(
    "population",
    params=(
        Param(
            "n_classes",
            "int",
            None,
            low=2,
            nullable=True,
            doc="number of classes; output neurons form this many groups",
        ),
        Param(
            "on_rate",
            "float",
            0.2,
            low=0.0,
            high=1.0,
            doc="target spikes per step of each neuron in the target group",
        ),
        Param(
            "off_rate",
            "float",
            0.0,
            low=0.0,
            high=1.0,
            doc="target spikes per step of each neuron in the other groups",
        ),
    ),
    tasks=("classification",),
    section="population_on",
)
class Population:
    """Balanced squared error of group firing rates against on and off targets.

    The ``N`` output neurons form ``n_classes`` equal contiguous groups. The
    target class's group should fire at ``on_rate`` spikes per step and every
    other neuron at ``off_rate``. The on and off errors are averaged
    separately and then added, so the one on group weighs as much as all the
    off groups together.

    Parameters
    ----------
    n_classes : int
        Number of classes, at least 2; must divide the number of outputs.
    on_rate, off_rate : float
        Target spikes per time step, in ``[0, 1]``.

    Raises
    ------
    ValueError
        If ``n_classes`` is missing.

    Notes
    -----
    With :math:`r_n = \\frac{1}{T} \\sum_t s_{t,n}` and :math:`G_y` the
    neurons of the target class's group,

    .. math::

        \\ell = \\frac{1}{|G_y|} \\sum_{n \\in G_y} (r_n - r_{on})^2
              + \\frac{1}{N - |G_y|} \\sum_{n \\notin G_y} (r_n - r_{off})^2

    averaged over the batch.
    """

    def __init__(
        self, *, n_classes: int | None, on_rate: float = 0.2, off_rate: float = 0.0
    ) -> None:
        if n_classes is None:
            raise ValueError(
                "loss.population_on.n_classes: null is not allowed with loss.task "
                "'population'; set the number of classes (an integer >= 2)"
            )
        self.n_classes = int(n_classes)
        self.on_rate = float(on_rate)
        self.off_rate = float(off_rate)

    def __call__(self, out: NetworkOutput, target: torch.Tensor) -> torch.Tensor:
        """Return the batch-mean loss."""
        spikes = _require_spikes(out, "population")
        rates = spikes.mean(dim=1)
        on_mask = self.group_mask(target, rates.shape[-1]).to(rates.dtype)
        off_mask = 1.0 - on_mask
        on_error = ((rates - self.on_rate) ** 2 * on_mask).sum(-1) / on_mask.sum(-1)
        off_error = ((rates - self.off_rate) ** 2 * off_mask).sum(-1) / off_mask.sum(-1)
        return (on_error + off_error).mean()

    def group_mask(self, target: torch.Tensor, n_outputs: int) -> torch.Tensor:
        """Return a ``[B, N]`` boolean mask of each sample's target group."""
        group_size = n_outputs // self.n_classes
        group_of_neuron = torch.arange(n_outputs, device=target.device) // group_size
        return group_of_neuron.unsqueeze(0) == target.unsqueeze(1)

    def check_output(self, out: NetworkOutput, target: torch.Tensor) -> None:
        """Raise ValueError if outputs do not split into ``n_classes`` groups."""
        spikes = _require_spikes(out, "population")
        check_population_size(spikes.shape[-1], self.n_classes)
        _check_class_target(target, spikes.shape[0], self.n_classes)


def check_population_size(n_outputs: int, n_classes: int) -> None:
    """Raise ValueError unless ``n_outputs`` splits into ``n_classes`` groups."""
    if n_outputs % n_classes:
        raise ValueError(
            f"loss.population_on.n_classes: {n_outputs} output neurons do not "
            f"split into {n_classes} equal groups; use a multiple of {n_classes} "
            "outputs or change n_classes"
        )


@register_loss("mse", params=(_MEM_REDUCE,), tasks=("regression",))
class Mse:
    """Mean squared error between the output membrane and a float target.

    Parameters
    ----------
    mem_reduce : str, default "max"
        Reduction over time used for a ``[B, N]`` target; a ``[B, T, N]``
        target is compared at every step.

    Notes
    -----
    .. math::

        \\ell = \\frac{1}{M} \\sum_j (\\hat y_j - y_j)^2

    over all :math:`M` target elements.
    """

    def __init__(self, *, mem_reduce: str = "max") -> None:
        self.mem_reduce = mem_reduce

    def __call__(self, out: NetworkOutput, target: torch.Tensor) -> torch.Tensor:
        """Return the mean squared error of the batch."""
        prediction = regression_prediction(out, target, self.mem_reduce)
        return F.mse_loss(prediction, target.to(prediction.dtype))

    def check_output(self, out: NetworkOutput, target: torch.Tensor) -> None:
        """Raise ValueError unless ``target`` is ``[B, N]`` or ``[B, T, N]``."""
        batch, n_steps, n_out = out.mem.shape
        if tuple(target.shape) not in ((batch, n_out), (batch, n_steps, n_out)):
            raise ValueError(
                f"regression target has shape {tuple(target.shape)}, expected "
                f"[{batch}, {n_out}] or [{batch}, {n_steps}, {n_out}] to match "
                "the output layer"
            )


@dataclass
class LossResult:
    """Total loss of one batch and its named parts.

    Attributes
    ----------
    total : torch.Tensor
        Differentiable scalar: the task loss plus the weighted regularisers.
    terms : dict of str to float
        ``"task"`` and one entry per regulariser name, each the detached,
        weighted contribution to ``total``.
    """

    total: torch.Tensor
    terms: dict[str, float]


class CompositeLoss:
    """Task loss plus weighted regularisers, built by :func:`build_loss`.

    Parameters
    ----------
    task_name : str
        Registered name of the task loss.
    task_loss : callable
        ``task_loss(out, target) -> scalar``.
    regularisers : mapping of str to (float, callable)
        Weight and ``reg(out, model) -> scalar`` per regulariser name.
    n_outputs : int
        Output neurons of the network the loss was built for.
    """

    def __init__(
        self,
        task_name: str,
        task_loss: Any,
        regularisers: Mapping[str, tuple[float, Any]],
        n_outputs: int,
    ) -> None:
        self.task_name = task_name
        self.task_loss = task_loss
        self.regularisers = dict(regularisers)
        self.n_outputs = n_outputs

    def __call__(
        self, out: NetworkOutput, target: torch.Tensor, model: nn.Module
    ) -> LossResult:
        """Return the total loss and its weighted terms for one batch."""
        total = self.task_loss(out, target)
        terms = {"task": float(total.detach())}
        for name, (weight, regulariser) in self.regularisers.items():
            if weight == 0.0:
                terms[name] = 0.0
                continue
            term = weight * regulariser(out, model)
            terms[name] = float(term.detach())
            total = total + term
        return LossResult(total=total, terms=terms)

    def __repr__(self) -> str:
        regs = ", ".join(f"{n}={w:g}" for n, (w, _) in self.regularisers.items())
        return f"CompositeLoss(task={self.task_name!r}, regularisers={{{regs}}})"


_LOSS_SECTION = Entry(
    "loss",
    obj=CompositeLoss,
    params=(
        Param("task", "str", "ce_count", doc="registered task loss name"),
        _MEM_REDUCE,
        Param(
            "population_on",
            "mapping",
            {},
            nullable=True,
            doc="population loss parameters",
        ),
        Param(
            "regularisers",
            "mapping",
            {},
            nullable=True,
            doc="regulariser name to its section",
        ),
    ),
)


def _resolve(loss_cfg: Mapping[str, Any], task: str) -> dict[str, Any]:
    """Validate the ``loss`` section and return every value with defaults."""
    if task not in TASKS:
        raise ValueError(
            f"dataset task {task!r} is not valid; use one of {', '.join(TASKS)}"
        )
    resolved = _LOSS_SECTION.resolve(loss_cfg, "loss")
    entry = LOSSES.entry(resolved["task"], key="loss.task")
    if task not in entry.meta["tasks"]:
        valid = [n for n in LOSSES.names() if task in LOSSES.entry(n).meta["tasks"]]
        raise ValueError(
            f"loss.task: {entry.name!r} does not fit a {task} dataset; use one of "
            f"{', '.join(valid)}"
        )
    # A YAML key with nothing under it (null) means an empty section.
    section = LOSSES.entry("population").resolve(
        resolved["population_on"] or {}, "loss.population_on"
    )
    if entry.name == "population" and section["n_classes"] is None:
        raise ValueError(
            "loss.population_on.n_classes: null is not allowed with loss.task "
            "'population'; set the number of classes (an integer >= 2)"
        )
    resolved["population_on"] = section
    resolved["regularisers"] = {
        name: REGULARISERS.entry(name, key="loss.regularisers").resolve(
            reg_cfg or {}, f"loss.regularisers.{name}"
        )
        for name, reg_cfg in (resolved["regularisers"] or {}).items()
    }
    return resolved


def validate_loss_config(loss_cfg: Mapping[str, Any], *, task: str) -> None:
    """Check a ``loss`` config section without building a model.

    Parameters
    ----------
    loss_cfg : mapping
        The ``loss`` section; tuned values must already be sampled.
    task : str
        Dataset task, ``"classification"`` or ``"regression"``.

    Raises
    ------
    ValueError
        If a key is unknown, a name is not registered, a value is out of
        range, or the task loss does not fit the dataset task. The message
        names the full key, such as ``loss.regularisers.topology.weight``.
    """
    _resolve(loss_cfg, task)


def build_loss(
    loss_cfg: Mapping[str, Any],
    *,
    profile: ChipProfile | None,
    n_outputs: int,
    task: str,
) -> CompositeLoss:
    """Build the composite loss of a ``loss`` config section.

    Parameters
    ----------
    loss_cfg : mapping
        The ``loss`` section (see the module docstring for keys and defaults).
    profile : ChipProfile, optional
        Chip profile for regulariser defaults such as the weight limit.
    n_outputs : int
        Output neurons of the network.
    task : str
        Dataset task, ``"classification"`` or ``"regression"``.

    Returns
    -------
    CompositeLoss

    Raises
    ------
    ValueError
        As :func:`validate_loss_config`, and also when a regulariser needs a
        profile that is missing or the population groups do not divide
        ``n_outputs``.
    """
    resolved = _resolve(loss_cfg, task)
    entry = LOSSES.entry(resolved["task"])
    if entry.meta.get("section"):
        kwargs = resolved[entry.meta["section"]]
    else:
        kwargs = {p.name: resolved[p.name] for p in entry.params}
    task_loss = entry.obj(**kwargs)
    if entry.name == "population":
        check_population_size(n_outputs, task_loss.n_classes)

    regularisers = {}
    for name, params in resolved["regularisers"].items():
        params = dict(params)
        weight = params.pop("weight")
        regularisers[name] = (weight, REGULARISERS.get(name)(profile=profile, **params))
    loss = CompositeLoss(entry.name, task_loss, regularisers, n_outputs)
    logger.debug("built %r", loss)
    return loss


def check_output_compatible(
    loss: CompositeLoss, out: NetworkOutput, target: torch.Tensor
) -> None:
    """Raise ValueError if a network's output or a target cannot feed ``loss``.

    Checks that spike losses get a spiking read-out, that population groups
    divide the outputs, that targets have the right shape, dtype and class
    range, and that per-layer regulariser lists match the spiking layers.
    """
    n_out = out.mem.shape[-1]
    if n_out != loss.n_outputs:
        raise ValueError(
            f"the network has {n_out} outputs but the loss was built for "
            f"{loss.n_outputs}; rebuild the loss with n_outputs={n_out}"
        )
    loss.task_loss.check_output(out, target)
    for _, regulariser in loss.regularisers.values():
        if hasattr(regulariser, "check_output"):
            regulariser.check_output(out)
