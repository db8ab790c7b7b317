"""Hyperparameter importance of a sweep, computed with Optuna's fANOVA.

The finished trials are replayed into an in-memory Optuna study with
:func:`optuna.trial.create_trial`, each parameter under a distribution that
matches its search domain, and :func:`optuna.importance.get_param_importances`
scores them. Trials stopped early are left out because their objective comes
from fewer epochs and would bias the fit.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import optuna
import pandas as pd
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from spiketune.report.data import TunedParam

__all__ = ["MIN_TRIALS", "Importance", "param_importances"]

logger = logging.getLogger(__name__)

MIN_TRIALS = 3


@dataclass
class Importance:
    """Normalised importance per parameter, or the reason there is none.

    Attributes
    ----------
    values : dict of str to float
        Dotted parameter key to importance; the values sum to 1. Empty when
        the importance was skipped.
    note : str
        Why the importance was skipped, or which trials it used.
    """

    values: dict[str, float] = field(default_factory=dict)
    note: str = ""


def param_importances(
    table: pd.DataFrame,
    params: Sequence[TunedParam],
    objective: str,
    mode: str,
    min_trials: int = MIN_TRIALS,
) -> Importance:
    """Score each tuned parameter's share of the objective's variance.

    Parameters
    ----------
    table : pandas.DataFrame
        Ranked results table with ``status``, the objective and
        ``config/<key>`` columns.
    params : sequence of TunedParam
        The tuned parameters.
    objective, mode : str
        Metric the sweep optimised and its direction.
    min_trials : int, default 3
        Fewest finished trials with a finite objective needed.

    Returns
    -------
    Importance
        Empty ``values`` and a ``note`` when there are no tuned parameters,
        too few finished trials, a constant objective, or fANOVA failed.
    """
    if not params:
        return Importance(note="Skipped: the sweep tuned no parameters.")
    if table.empty or objective not in table:
        return Importance(note="Skipped: no trial reported the objective.")
    values = pd.to_numeric(table[objective], errors="coerce")
    finished = table[(table["status"] == "finished") & values.map(_finite)]
    if len(finished) < min_trials:
        return Importance(
            note=(
                f"Skipped: {len(finished)} finished trial(s) with a finite "
                f"{objective}; parameter importance needs at least {min_trials}."
            )
        )
    scores = pd.to_numeric(finished[objective]).astype(float)
    if scores.nunique() < 2:
        return Importance(note=f"Skipped: {objective} is the same in every trial.")

    distributions = {p.key: _distribution(p, finished[p.column]) for p in params}
    trials = []
    for (_, row), score in zip(finished.iterrows(), scores, strict=True):
        trial_params = {
            p.key: _param_value(p, row[p.column])
            for p in params
            if pd.notna(row[p.column])
        }
        trials.append(
            optuna.trial.create_trial(
                params=trial_params,
                distributions={k: distributions[k] for k in trial_params},
                value=score,
            )
        )
    direction = "maximize" if mode == "max" else "minimize"
    try:
        with _quiet_optuna():
            study = optuna.create_study(direction=direction)
            study.add_trials(trials)
            evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
            result = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (ValueError, RuntimeError, ZeroDivisionError) as err:
        logger.warning("parameter importance failed: %s", err)
        return Importance(note=f"Skipped: Optuna's fANOVA failed ({err}).")
    return Importance(
        values={str(k): float(v) for k, v in result.items()},
        note=(
            f"fANOVA (Optuna {optuna.__version__}) over {len(finished)} finished "
            "trials; trials stopped early are excluded."
        ),
    )


def _finite(value: float) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _distribution(param: TunedParam, values: pd.Series) -> BaseDistribution:
    present = values.dropna()
    if param.kind == "categorical":
        observed = [str(v) for v in present]
        choices = list(param.choices or ())
        choices += [v for v in dict.fromkeys(observed) if v not in choices]
        return CategoricalDistribution(choices)
    numbers = pd.to_numeric(present).astype(float)
    # Samples of a conditional or normal domain may lie outside the spec's
    # bounds, so the observed range widens them.
    low = min(numbers.min(), param.low if param.low is not None else math.inf)
    high = max(numbers.max(), param.high if param.high is not None else -math.inf)
    if param.kind == "int":
        low, high = math.floor(low), math.ceil(high)
        return IntDistribution(low, high, log=param.log and low >= 1)
    return FloatDistribution(float(low), float(high), log=param.log and low > 0)


def _param_value(param: TunedParam, value: object) -> object:
    if param.kind == "categorical":
        return str(value)
    if param.kind == "int":
        return int(round(float(value)))
    return float(value)


@contextmanager
def _quiet_optuna() -> Iterator[None]:
    # Optuna logs "A new study created in memory" at INFO for every study.
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(previous)
