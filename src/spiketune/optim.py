"""Optimizer, learning-rate scheduler and annealing builders from config sections.

Config layout and defaults::

    optim:
      name: adam            # adam | adamw | sgd | rmsprop
      lr: 1.0e-3
      weight_decay: 0.0     # adamw: 0.01, as in torch.optim.AdamW
      # adam, adamw: beta1 0.9, beta2 0.999
      # sgd: momentum 0.0, nesterov false; rmsprop: momentum 0.0, alpha 0.99
    sched:
      name: none            # none | cosine | step | exponential | onecycle
      params: {}            # see the registered scheduler's parameters
    anneal:
      sign: {enabled: null, alpha_start: 0.5, alpha_end: 20.0, shape: linear}
      surrogate: {enabled: false, start: 2.0, end: 25.0, shape: cosine}

Build order matters: :func:`build_anneal` installs the sign-annealing
parametrisation, which replaces the synapse weights, so it runs before
:func:`build_optimizer`. Learning-rate schedulers are built to be stepped
once per epoch.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.optim import lr_scheduler

from spiketune.hardware.profile import ChipProfile, get_profile
from spiketune.registry import (
    SCHEDULERS,
    ConfigTypeError,
    Entry,
    Param,
    Registry,
    register_scheduler,
)
from spiketune.schedulers.shapes import SHAPES
from spiketune.schedulers.sign_annealing import (
    SignAnnealing,
    install_sign_annealing,
    mark_optimizer_built,
)
from spiketune.schedulers.surrogate import SurrogateScheduler

logger = logging.getLogger(__name__)

__all__ = [
    "OPTIMIZERS",
    "build_anneal",
    "build_lr_scheduler",
    "build_optimizer",
    "validate_anneal_config",
    "validate_optim_config",
    "validate_sched_config",
]

OPTIMIZERS = Registry("optimizer")

_LR = Param("lr", "float", 1e-3, low=0.0, low_open=True, doc="learning rate")
_BETAS = (
    Param("beta1", "float", 0.9, low=0.0, high=0.999999, doc="first-moment decay"),
    Param("beta2", "float", 0.999, low=0.0, high=0.999999, doc="second-moment decay"),
)
_MOMENTUM = Param("momentum", "float", 0.0, low=0.0, high=0.999999, doc="momentum")


def _weight_decay(default: float) -> Param:
    return Param("weight_decay", "float", default, low=0.0, doc="L2 / decoupled decay")


@OPTIMIZERS.register("adam", (_LR, _weight_decay(0.0), *_BETAS))
def _adam(params: list[nn.Parameter], *, lr, weight_decay, beta1, beta2):
    return torch.optim.Adam(
        params, lr=lr, weight_decay=weight_decay, betas=(beta1, beta2)
    )


@OPTIMIZERS.register("adamw", (_LR, _weight_decay(0.01), *_BETAS))
def _adamw(params: list[nn.Parameter], *, lr, weight_decay, beta1, beta2):
    return torch.optim.AdamW(
        params, lr=lr, weight_decay=weight_decay, betas=(beta1, beta2)
    )


@OPTIMIZERS.register(
    "sgd", (_LR, _weight_decay(0.0), _MOMENTUM, Param("nesterov", "bool", False))
)
def _sgd(params: list[nn.Parameter], *, lr, weight_decay, momentum, nesterov):
    if nesterov and momentum == 0:
        raise ValueError(
            "optim.nesterov: true needs optim.momentum > 0; set a momentum or "
            "nesterov false"
        )
    return torch.optim.SGD(
        params, lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov
    )


@OPTIMIZERS.register(
    "rmsprop",
    (
        _LR,
        _weight_decay(0.0),
        _MOMENTUM,
        Param("alpha", "float", 0.99, low=0.0, high=0.999999, doc="smoothing constant"),
    ),
)
def _rmsprop(params: list[nn.Parameter], *, lr, weight_decay, momentum, alpha):
    return torch.optim.RMSprop(
        params, lr=lr, weight_decay=weight_decay, momentum=momentum, alpha=alpha
    )


def _resolve_named(
    registry: Registry, cfg: Mapping[str, Any], prefix: str, default: str
) -> tuple[Entry, dict[str, Any]]:
    if not isinstance(cfg, Mapping):
        raise ConfigTypeError(
            f"{prefix}: {cfg!r} is not a mapping; set a config section"
        )
    entry = registry.entry(cfg.get("name", default), key=f"{prefix}.name")
    params = {k: v for k, v in cfg.items() if k != "name"}
    return entry, entry.resolve(params, prefix)


def validate_optim_config(optim_cfg: Mapping[str, Any]) -> None:
    """Raise ValueError naming the ``optim.<key>`` of an invalid optimizer config."""
    _resolve_named(OPTIMIZERS, optim_cfg, "optim", "adam")


def build_optimizer(
    model: nn.Module, optim_cfg: Mapping[str, Any]
) -> torch.optim.Optimizer:
    """Build the optimizer of an ``optim`` section over the trainable parameters.

    Marks ``model`` so that a later :func:`install_sign_annealing` raises,
    because a parametrisation installed afterwards would be missed by the
    optimizer's view of the model.

    Raises
    ------
    ValueError
        If the config is invalid or the model has no trainable parameter.
    """
    entry, params = _resolve_named(OPTIMIZERS, optim_cfg, "optim", "adam")
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("the model has no trainable parameter to optimise")
    optimizer = entry.obj(trainable, **params)
    mark_optimizer_built(model)
    logger.info("built optimizer %s with %s", entry.name, params)
    return optimizer


# TODO: ReduceLROnPlateau is not offered, because it needs the validation metric
# passed to step(), which build_lr_scheduler's callers do not do.
@register_scheduler("none")
def _no_scheduler(optimizer: torch.optim.Optimizer, n_epochs: int) -> None:
    return None


@register_scheduler(
    "cosine", (Param("eta_min", "float", 0.0, low=0.0, doc="final learning rate"),)
)
def _cosine(optimizer: torch.optim.Optimizer, n_epochs: int, *, eta_min: float):
    return lr_scheduler.CosineAnnealingLR(optimizer, T_max=n_epochs, eta_min=eta_min)


@register_scheduler(
    "step",
    (
        Param("step_size", "int", 10, low=1, doc="epochs between decays"),
        Param(
            "gamma",
            "float",
            0.1,
            low=0.0,
            low_open=True,
            high=1.0,
            doc="factor per decay",
        ),
    ),
)
def _step(optimizer: torch.optim.Optimizer, n_epochs: int, *, step_size, gamma):
    return lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)


@register_scheduler(
    "exponential",
    (
        Param(
            "gamma",
            "float",
            0.95,
            low=0.0,
            low_open=True,
            high=1.0,
            doc="factor per epoch",
        ),
    ),
)
def _exponential(optimizer: torch.optim.Optimizer, n_epochs: int, *, gamma: float):
    return lr_scheduler.ExponentialLR(optimizer, gamma=gamma)


@register_scheduler(
    "onecycle",
    (
        Param(
            "max_lr",
            "float",
            None,
            low=0.0,
            low_open=True,
            nullable=True,
            doc="peak learning rate; the optimizer's lr when null",
        ),
        Param(
            "pct_start",
            "float",
            0.3,
            low=0.0,
            low_open=True,
            high=1.0,
            doc="fraction of epochs spent increasing the learning rate",
        ),
        Param("anneal_strategy", "str", "cos", choices=("cos", "linear")),
    ),
)
def _onecycle(
    optimizer: torch.optim.Optimizer,
    n_epochs: int,
    *,
    max_lr,
    pct_start,
    anneal_strategy,
):
    if max_lr is None:
        max_lr = [group["lr"] for group in optimizer.param_groups]
    # The constructor takes the first step, so n_epochs more calls need
    # n_epochs + 1 steps in all.
    return lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=max_lr,
        total_steps=n_epochs + 1,
        pct_start=pct_start,
        anneal_strategy=anneal_strategy,
    )


def _resolve_sched(sched_cfg: Mapping[str, Any]) -> tuple[Entry, dict[str, Any]]:
    if not isinstance(sched_cfg, Mapping):
        raise ConfigTypeError(f"sched: {sched_cfg!r} is not a mapping; set a section")
    unknown = sorted(set(sched_cfg) - {"name", "params"})
    if unknown:
        raise ValueError(
            f"sched: unknown key(s) {', '.join(map(str, unknown))}; valid keys "
            "are name, params (scheduler parameters go under sched.params)"
        )
    entry = SCHEDULERS.entry(sched_cfg.get("name", "none"), key="sched.name")
    params = sched_cfg.get("params") or {}
    return entry, entry.resolve(params, "sched.params")


def validate_sched_config(sched_cfg: Mapping[str, Any]) -> None:
    """Raise ValueError naming the ``sched.<key>`` of an invalid config."""
    _resolve_sched(sched_cfg)


def build_lr_scheduler(
    optimizer: torch.optim.Optimizer, sched_cfg: Mapping[str, Any], n_epochs: int
) -> lr_scheduler.LRScheduler | None:
    """Build the learning-rate scheduler of a ``scheduler`` section.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        Optimizer whose learning rate is scheduled.
    sched_cfg : mapping
        ``{name: ..., params: {...}}``; ``name: none`` gives no scheduler.
    n_epochs : int
        Training epochs; the scheduler is stepped once per epoch.

    Returns
    -------
    LRScheduler or None
    """
    entry, params = _resolve_sched(sched_cfg)
    if isinstance(n_epochs, bool) or not isinstance(n_epochs, int) or n_epochs < 1:
        raise ValueError(f"n_epochs: {n_epochs!r} is not an integer >= 1")
    return entry.obj(optimizer, n_epochs, **params)


_ANNEAL_SECTIONS = {
    "sign": Entry(
        "sign",
        SignAnnealing,
        (
            Param(
                "enabled",
                "bool",
                None,
                nullable=True,
                doc="null: on when the network has a chip profile",
            ),
            Param("alpha_start", "float", 0.5, low=0.0, low_open=True),
            Param("alpha_end", "float", 20.0, low=0.0, low_open=True),
            Param("shape", "str", "linear", choices=SHAPES),
        ),
    ),
    "surrogate": Entry(
        "surrogate",
        SurrogateScheduler,
        (
            Param("enabled", "bool", False),
            Param("start", "float", 2.0, low=0.0, low_open=True, doc="first slope"),
            Param("end", "float", 25.0, low=0.0, low_open=True, doc="last slope"),
            Param("shape", "str", "cosine", choices=SHAPES),
        ),
    ),
}


def _resolve_anneal(anneal_cfg: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    if not isinstance(anneal_cfg, Mapping):
        raise ConfigTypeError(f"anneal: {anneal_cfg!r} is not a mapping; set a section")
    unknown = sorted(set(anneal_cfg) - set(_ANNEAL_SECTIONS))
    if unknown:
        raise ValueError(
            f"anneal: unknown key(s) {', '.join(map(str, unknown))}; valid keys "
            f"are {', '.join(_ANNEAL_SECTIONS)}"
        )
    return {
        name: entry.resolve(anneal_cfg.get(name) or {}, f"anneal.{name}")
        for name, entry in _ANNEAL_SECTIONS.items()
    }


def validate_anneal_config(anneal_cfg: Mapping[str, Any]) -> None:
    """Raise ValueError naming the ``anneal.<key>`` of an invalid config."""
    _resolve_anneal(anneal_cfg)


def build_anneal(
    model: nn.Module,
    anneal_cfg: Mapping[str, Any],
    profile: ChipProfile | str | None,
    n_epochs: int,
) -> tuple[SignAnnealing | None, SurrogateScheduler | None]:
    """Install sign annealing and build the surrogate scheduler of ``anneal``.

    Call it before :func:`build_optimizer`. Step both schedulers at the start
    of every epoch and call ``SignAnnealing.harden()`` after training.

    Parameters
    ----------
    model : nn.Module
        The network.
    anneal_cfg : mapping
        The ``anneal`` section.
    profile : ChipProfile or str, optional
        Chip profile for sign annealing; ``model.profile`` when omitted.
    n_epochs : int
        Training epochs.

    Returns
    -------
    (SignAnnealing or None, SurrogateScheduler or None)
        ``None`` for each disabled part. With ``anneal.sign.enabled: null``
        sign annealing is on exactly when a profile is known.

    Raises
    ------
    ValueError
        If the config is invalid, or sign annealing is enabled without a
        profile.
    RuntimeError
        If an optimizer was already built for ``model``.
    """
    resolved = _resolve_anneal(anneal_cfg)
    if profile is None:
        profile = getattr(model, "profile", None)
    sign_cfg = dict(resolved["sign"])
    enabled = sign_cfg.pop("enabled")
    if enabled and profile is None:
        raise ValueError(
            "anneal.sign.enabled: true needs a chip profile for the weight limit "
            "and block size; build the network with a profile or set enabled false"
        )
    sign = None
    if enabled or (enabled is None and profile is not None):
        sign = install_sign_annealing(
            model, get_profile(profile), n_epochs=n_epochs, **sign_cfg
        )

    surrogate_cfg = dict(resolved["surrogate"])
    surrogate = None
    if surrogate_cfg.pop("enabled"):
        surrogate = SurrogateScheduler(model, n_epochs=n_epochs, **surrogate_cfg)
    return sign, surrogate
