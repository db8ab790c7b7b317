"""Search spaces: namespaced bindings of fixed values and Ray Tune domains.

A binding maps a dotted key such as ``optim.lr`` to a fixed value, a Ray Tune
domain (``tune.loguniform(1e-4, 1e-2)``) or the same domain written as plain
data, as in YAML (``{loguniform: [1e-4, 1e-2]}``). Every key starts with one
of :data:`NAMESPACES`. The trial splits its sampled config by namespace.

Plain specs
-----------
``{uniform: [a, b]}``, ``{loguniform: [a, b]}``, ``{quniform: [a, b, q]}``,
``{qloguniform: [a, b, q]}``, ``{randint: [a, b]}`` (``a <= x < b``),
``{qrandint: [a, b, q]}`` (``a <= x <= b``, multiples of ``q``),
``{lograndint: [a, b]}``, ``{randn: [mean, sd]}``, ``{choice: [...]}`` and
``{grid: [...]}``.

Conditional values
------------------
A value that depends on another uses Ray Tune's ``tune.sample_from``. From
Python pass ``tune.sample_from(lambda spec: spec.config.model.tau / 10)``. From
YAML, ``{sample_from: {scale_of: model.tau, uniform: [0.05, 0.5]}}`` draws a
factor uniformly from the range and multiplies the referenced value, so
``trainer.dt`` can be kept below ``model.tau``. Conditional values work with
the random and grid searchers; Optuna's TPE needs an independent space.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Mapping
from typing import Any

from ray import tune
from ray.tune.search.sample import (
    Categorical,
    Domain,
    Float,
    Function,
    Integer,
    Normal,
)

from spiketune.tuning.keys import (
    _RANGE_KINDS,
    NAMESPACES,
    SPEC_KINDS,
    flatten,
    get_path,
    is_grid,
    is_spec,
    looks_like_spec,
    nest,
)

__all__ = [
    "NAMESPACES",
    "SPEC_KINDS",
    "build_search_space",
    "count_grid",
    "flatten",
    "get_path",
    "is_spec",
    "nest",
    "tuned_keys",
]


def build_search_space(bindings: Mapping[str, Any]) -> dict[str, Any]:
    """Validate bindings and return a nested Ray Tune ``param_space``.

    Parameters
    ----------
    bindings : mapping
        Dotted keys or nested namespace dicts whose leaves are fixed values,
        Ray Tune domains or plain specs.

    Returns
    -------
    dict
        One dict per namespace, leaves converted to Ray Tune domains.

    Raises
    ------
    ValueError
        For an unknown namespace, an unknown spec kind, a malformed spec, or
        an empty or inverted range; the message names the dotted key.
    """
    nested = nest(bindings)
    for namespace in nested:
        if namespace not in NAMESPACES:
            raise ValueError(
                f"{namespace}: unknown namespace; valid namespaces are "
                f"{', '.join(NAMESPACES)}"
            )
    flat = flatten(nested)
    converted = {key: _to_domain(key, value) for key, value in flat.items()}
    for key, value in converted.items():
        _check_domain(key, value)
    _check_references(converted)
    return nest(converted)


def tuned_keys(space: Mapping[str, Any]) -> list[str]:
    """Return the dotted keys whose values are searched, not fixed."""
    return [
        key
        for key, value in flatten(space).items()
        if isinstance(value, Domain) or is_grid(value)
    ]


def count_grid(space: Mapping[str, Any]) -> int:
    """Return the number of grid points: the product of every grid's size."""
    total = 1
    for value in flatten(space).values():
        if is_grid(value):
            total *= len(value["grid_search"])
    return total


def _to_domain(key: str, value: Any) -> Any:
    if isinstance(value, Domain) or is_grid(value):
        return value
    if isinstance(value, Mapping) and len(value) == 1:
        kind = next(iter(value))
        if kind in SPEC_KINDS:
            return _spec_to_domain(key, kind, value[kind])
        if kind not in NAMESPACES and looks_like_spec(kind):
            raise ValueError(
                f"{key}: unknown spec kind {kind!r}; valid kinds are "
                f"{', '.join(SPEC_KINDS)}"
            )
    return copy.deepcopy(value)


def _spec_to_domain(key: str, kind: str, args: Any) -> Any:
    if kind in ("choice", "grid"):
        if not isinstance(args, list | tuple) or not args:
            raise ValueError(
                f"{key}: {kind} needs a non-empty list of values, got {args!r}"
            )
        return (
            tune.choice(list(args))
            if kind == "choice"
            else tune.grid_search(list(args))
        )
    if kind == "sample_from":
        return _conditional(key, args)
    return _range_domain(key, kind, args)


def _range_domain(key: str, kind: str, args: Any) -> Domain:
    n_args = _RANGE_KINDS[kind]
    if not isinstance(args, list | tuple) or len(args) != n_args:
        raise ValueError(
            f"{key}: {kind} needs a list of {n_args} numbers, got {args!r}"
        )
    if not all(isinstance(a, int | float) and not isinstance(a, bool) for a in args):
        raise ValueError(f"{key}: {kind} bounds must be numbers, got {args!r}")
    if not all(math.isfinite(a) for a in args):
        raise ValueError(f"{key}: {kind} bounds must be finite, got {args!r}")
    if kind == "randn":
        if args[1] <= 0:
            raise ValueError(
                f"{key}: randn standard deviation must be > 0, got {args[1]}"
            )
        return tune.randn(*args)
    low, high = args[0], args[1]
    if not low < high:
        raise ValueError(
            f"{key}: {kind} range [{low}, {high}] is empty or inverted; "
            "the lower bound must be below the upper bound"
        )
    if "log" in kind and low <= 0:
        raise ValueError(f"{key}: {kind} needs a lower bound > 0, got {low}")
    if kind.startswith("q") and args[2] <= 0:
        raise ValueError(f"{key}: {kind} step q must be > 0, got {args[2]}")
    if kind in ("randint", "qrandint", "lograndint", "qlograndint"):
        if not all(float(a).is_integer() for a in args):
            raise ValueError(f"{key}: {kind} bounds must be integers, got {args!r}")
        args = [int(a) for a in args]
    return getattr(tune, kind)(*args)


def _conditional(key: str, args: Any) -> Function:
    if (
        not isinstance(args, Mapping)
        or set(args) != {"scale_of", "uniform"}
        or not isinstance(args["scale_of"], str)
    ):
        raise ValueError(
            f"{key}: sample_from needs {{scale_of: <dotted key>, uniform: [low, "
            f"high]}}, got {args!r}"
        )
    low, high = _range_domain(key, "uniform", args["uniform"]).lower, args["uniform"][1]
    if low <= 0:
        raise ValueError(
            f"{key}: sample_from scale factors must be > 0, got [{low}, {high}]"
        )
    reference = args["scale_of"]

    def sample(spec: Any) -> float:
        base = get_path(spec.config, reference)
        return float(base) * random.uniform(low, high)

    domain = tune.sample_from(sample)
    domain.spiketune_reference = reference
    return domain


def _check_domain(key: str, value: Any) -> None:
    if isinstance(value, Float) and isinstance(value.get_sampler(), Normal):
        return
    if isinstance(value, Float | Integer):
        low, high = value.lower, value.upper
        if low is not None and high is not None and not low < high:
            raise ValueError(
                f"{key}: range [{low}, {high}] is empty or inverted; the lower "
                "bound must be below the upper bound"
            )
        if isinstance(value, Float) and any(
            b is not None and not math.isfinite(b) for b in (low, high)
        ):
            raise ValueError(f"{key}: range bounds must be finite, got [{low}, {high}]")
    if isinstance(value, Categorical) and not value.categories:
        raise ValueError(f"{key}: choice needs at least one value")


def _check_references(converted: Mapping[str, Any]) -> None:
    for key, value in converted.items():
        reference = getattr(value, "spiketune_reference", None)
        if reference is not None and reference not in converted:
            raise ValueError(
                f"{key}: sample_from refers to {reference!r}, which is not bound; "
                f"bind {reference} too"
            )
