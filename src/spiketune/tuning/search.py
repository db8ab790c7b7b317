"""Searchers and trial schedulers by name, built on Ray Tune and Optuna."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, MedianStoppingRule
from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter

from spiketune.tuning.space import count_grid, flatten, tuned_keys

__all__ = ["SCHEDULERS", "SEARCHERS", "build_scheduler", "build_searcher"]

SEARCHERS = ("random", "grid", "tpe")
SCHEDULERS = ("asha", "median", "fifo")
_SCHEDULER_KEYS = {
    "asha": {"grace_period": 1, "reduction_factor": 2},
    "median": {"grace_period": 1, "min_samples_required": 3},
    "fifo": {},
}


def build_searcher(
    name: str,
    space: Mapping[str, Any],
    *,
    metric: str,
    mode: str,
    seed: int,
    max_concurrent: int | None,
    extra_objectives: Sequence[tuple[str, str]] = (),
) -> Any:
    """Return a Ray Tune search algorithm for ``name``.

    ``random`` and ``grid`` use Ray's variant generator, which takes grid
    points from the ``grid`` specs in the space. ``tpe`` uses Optuna's TPE
    sampler through Ray's Optuna integration, optionally multi-objective.

    Raises
    ------
    ValueError
        For an unknown name, or a space that TPE cannot take (grid or
        conditional values).
    """
    if name not in SEARCHERS:
        raise ValueError(
            f"searcher: unknown searcher {name!r}; valid searchers are "
            f"{', '.join(SEARCHERS)}"
        )
    if extra_objectives and name != "tpe":
        raise ValueError(
            f"objectives: multi-objective search needs searcher 'tpe', got {name!r}"
        )
    if name in ("random", "grid"):
        return BasicVariantGenerator(
            max_concurrent=max_concurrent or 0, random_state=seed
        )
    return _optuna_searcher(space, metric, mode, seed, max_concurrent, extra_objectives)


def _optuna_searcher(space, metric, mode, seed, max_concurrent, extra_objectives):
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    if count_grid(space) > 1:
        raise ValueError(
            "searcher 'tpe' cannot take grid specs; use choice instead of grid"
        )
    if not tuned_keys(space):
        raise ValueError(
            "searcher 'tpe' needs at least one searched value; every value is "
            "fixed, so use searcher 'random'"
        )
    for key, value in flatten(space).items():
        if hasattr(value, "spiketune_reference") or type(value).__name__ == "Function":
            raise ValueError(
                f"{key}: conditional values (sample_from) need searcher 'random' "
                "or 'grid'; TPE samples an independent space"
            )
    metrics = [metric, *(m for m, _ in extra_objectives)]
    modes = [mode, *(m for _, m in extra_objectives)]
    # The seeded sampler carries the seed; OptunaSearch ignores its own seed
    # when a sampler is given.
    sampler = optuna.samplers.TPESampler(seed=seed)
    if len(metrics) == 1:
        searcher = OptunaSearch(metric=metric, mode=mode, sampler=sampler)
    else:
        searcher = OptunaSearch(metric=metrics, mode=modes, sampler=sampler)
    if max_concurrent:
        searcher = ConcurrencyLimiter(searcher, max_concurrent=max_concurrent)
    return searcher


def build_scheduler(
    name: str, params: Mapping[str, Any], *, metric: str, mode: str, max_t: int
) -> Any:
    """Return a Ray Tune trial scheduler: ``asha``, ``median`` or ``fifo``.

    Parameters
    ----------
    name : str
        Scheduler name.
    params : mapping
        ``grace_period`` and ``reduction_factor`` for ASHA;
        ``grace_period`` and ``min_samples_required`` for median stopping.
    metric, mode : str
        Objective the scheduler compares trials on.
    max_t : int
        Maximum epochs of a trial.
    """
    if name not in SCHEDULERS:
        raise ValueError(
            f"scheduler: unknown scheduler {name!r}; valid schedulers are "
            f"{', '.join(SCHEDULERS)}"
        )
    known = _SCHEDULER_KEYS[name]
    for key in params:
        if key not in known:
            raise ValueError(
                f"scheduler.{key}: unknown key for {name!r}; valid keys are "
                f"{', '.join(known) or 'none'}"
            )
    values = {**known, **params}
    if name == "fifo":
        return FIFOScheduler()
    grace = _positive_int("scheduler.grace_period", values["grace_period"])
    if grace > max_t:
        raise ValueError(
            f"scheduler.grace_period: {grace} exceeds trainer.epochs = {max_t}; "
            "lower the grace period or train longer"
        )
    if name == "median":
        return MedianStoppingRule(
            time_attr="epoch",
            metric=metric,
            mode=mode,
            grace_period=grace,
            min_samples_required=_positive_int(
                "scheduler.min_samples_required", values["min_samples_required"]
            ),
        )
    factor = values["reduction_factor"]
    if not isinstance(factor, int | float) or factor <= 1:
        raise ValueError(f"scheduler.reduction_factor: {factor!r} is not a number > 1")
    return ASHAScheduler(
        time_attr="epoch",
        metric=metric,
        mode=mode,
        max_t=max_t,
        grace_period=grace,
        reduction_factor=factor,
    )


def _positive_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key}: {value!r} is not a positive integer")
    return value
