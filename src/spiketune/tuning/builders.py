"""Model builders: the built-in LIF networks and user builders by import path."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from spiketune.network import build_network

__all__ = [
    "BUILTIN_MODEL_KEYS",
    "build_builtin_model",
    "builder_path",
    "resolve_builder",
]

logger = logging.getLogger(__name__)

ModelBuilder = Callable[[dict[str, Any]], nn.Module]

# Keys the trial adds to model_cfg from the data before calling a builder.
INJECTED_KEYS = ("n_inputs", "n_outputs", "dt")

BUILTIN_MODEL_KEYS = (
    "arch",
    "hidden",
    "tau",
    "threshold",
    "reset_mechanism",
    "spike_grad",
    "slope",
    "readout",
    "profile",
    "weight_scale",
    "learn_tau",
    "mismatch",
    "quantize_weights",
    "population",
)


def build_builtin_model(model_cfg: Mapping[str, Any]) -> nn.Module:
    """Build a standard feed-forward or recurrent LIF network from ``model.*``.

    ``model.arch`` is ``"feedforward"`` (default) or ``"recurrent"``;
    ``model.hidden`` is an int or a list of layer sizes; ``model.population``
    gives each class that many output neurons. Every other key is passed to
    :func:`spiketune.network.build_network`.
    """
    cfg = dict(model_cfg)
    arch = cfg.pop("arch", "feedforward")
    if arch not in ("feedforward", "recurrent"):
        raise ValueError(
            f"model.arch must be 'feedforward' or 'recurrent', got {arch!r}"
        )
    hidden = cfg.pop("hidden", [64])
    if isinstance(hidden, int):
        hidden = [hidden]
    population = int(cfg.pop("population", 1))
    n_inputs = cfg.pop("n_inputs")
    n_outputs = cfg.pop("n_outputs") * population
    return build_network(
        n_inputs, n_outputs, tuple(hidden), recurrent=arch == "recurrent", **cfg
    )


def resolve_builder(spec: ModelBuilder | str | None) -> ModelBuilder:
    """Return a builder callable from ``None`` (built-in), a callable or a path.

    Parameters
    ----------
    spec : callable, str or None
        ``None`` or ``"builtin"`` for :func:`build_builtin_model`; a callable
        taking ``model_cfg``; or an import path ``"package.module:function"``.

    Raises
    ------
    ValueError
        If the path is malformed, cannot be imported or is not callable.
    """
    if spec is None or spec == "builtin":
        return build_builtin_model
    if callable(spec):
        return spec
    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(
            f"model builder {spec!r} must be 'builtin' or an import path "
            "'package.module:function'"
        )
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(
            f"model builder {spec!r}: cannot import module {module_name!r} ({err}); "
            "make it importable from the working directory or PYTHONPATH"
        ) from err
    builder = module
    for part in attr.split("."):
        builder = getattr(builder, part, None)
    if not callable(builder):
        raise ValueError(f"model builder {spec!r}: {attr!r} is not a callable")
    return builder


def builder_path(builder: ModelBuilder) -> str:
    """Return ``"package.module:function"`` for a builder, or ``"builtin"``.

    Checkpoints store this path to rebuild the model, so a builder defined in
    a script (module ``__main__``) or inside a function can only be reloaded
    in a process that defines it the same way.
    """
    if builder is build_builtin_model:
        return "builtin"
    module = getattr(builder, "__module__", None) or "__main__"
    name = getattr(builder, "__qualname__", getattr(builder, "__name__", "builder"))
    path = f"{module}:{name}"
    if module == "__main__" or "<" in name:
        logger.warning(
            "model builder %s is not importable by path; checkpoints of this "
            "sweep reload only where it is defined the same way",
            path,
        )
    return path
