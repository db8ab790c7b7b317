"""Everything the report shows, read once from a run directory.

The ranked table comes from :func:`spiketune.tuning.results.load_results`.
The per-epoch reports of each trial give the learning curves and the timeline.
The search space comes from ``config.yaml`` (plain specs such as
``{loguniform: [a, b]}``) when the CLI wrote one, else from ``sweep.json``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from spiketune.tuning.results import load_results, read_sweep_meta, read_trial
from spiketune.tuning.space import NAMESPACES, flatten, is_spec

__all__ = [
    "RunData",
    "TrialSpan",
    "TunedParam",
    "assign_slots",
    "load_run",
    "status_counts",
    "trial_span",
    "tuned_params",
    "utilisation",
]

logger = logging.getLogger(__name__)

# Ray Tune writes ``timestamp`` in whole seconds, so two trials that share a
# worker slot can appear to overlap by up to this much.
SLOT_TOLERANCE_S = 1.0

# Without a plain spec, a tuned float whose positive samples span more than
# this ratio is drawn on a log axis.
LOG_RATIO = 20.0

_RAY_DOMAIN_PREFIX = "<ray.tune.search.sample."
_LOG_KINDS = {"loguniform", "qloguniform", "lograndint", "qlograndint"}
_INT_KINDS = {"randint", "qrandint", "lograndint", "qlograndint"}
_CATEGORICAL_KINDS = {"choice", "grid"}


@dataclass(frozen=True)
class TunedParam:
    """One searched config value and the domain it was drawn from.

    Attributes
    ----------
    key : str
        Dotted config key, such as ``optim.lr``.
    kind : str
        ``"float"``, ``"int"`` or ``"categorical"``.
    log : bool
        Whether the domain is log-scaled.
    log_inferred : bool
        True when ``log`` was guessed from the sampled values because the
        domain's spec was not available.
    low, high : float or None
        Bounds of a numeric domain, when the spec gives them.
    choices : tuple of str or None
        Values of a categorical domain, as strings, when the spec gives them.
    """

    key: str
    kind: str
    log: bool = False
    log_inferred: bool = False
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] | None = None

    @property
    def column(self) -> str:
        """Name of the parameter's column in the results table."""
        return f"config/{self.key}"


@dataclass
class TrialSpan:
    """Wall-clock interval of one trial, in Unix seconds, and its worker slot.

    ``worker`` is ``"hostname:pid"`` of the Ray actor that ran the trial, or
    None when the reports contain no ``pid``.
    """

    trial_id: str
    start: float
    end: float
    status: str
    worker: str | None = None
    slot: int = -1

    @property
    def duration(self) -> float:
        """Length of the interval in seconds."""
        return max(0.0, self.end - self.start)


@dataclass
class RunData:
    """A run directory's metadata, ranked table, curves, space and timeline.

    Attributes
    ----------
    run_dir : Path
        The run directory.
    meta : dict
        Contents of ``sweep.json``.
    table : pandas.DataFrame
        Ranked results table; empty when no trial folder exists.
    objective, mode : str
        Metric the sweep optimised and its direction, ``"max"`` or ``"min"``.
    config : dict
        Contents of ``config.yaml``, or an empty dict without one.
    curves : dict of str to pandas.DataFrame
        Per trial id, the columns ``epoch`` and ``value`` (the objective) of
        every report with a finite objective.
    params : list of TunedParam
        The searched config values.
    spans : list of TrialSpan
        Trials with a known start and end, each assigned a worker slot.
    """

    run_dir: Path
    meta: dict[str, Any]
    table: pd.DataFrame
    objective: str
    mode: str
    config: dict[str, Any] = field(default_factory=dict)
    curves: dict[str, pd.DataFrame] = field(default_factory=dict)
    params: list[TunedParam] = field(default_factory=list)
    spans: list[TrialSpan] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The sweep's name, or the run directory's name."""
        return str(self.meta.get("name") or self.run_dir.name)

    def objective_values(self) -> pd.Series:
        """Return the objective of every row as floats, NaN where missing."""
        if self.objective not in self.table:
            return pd.Series(np.nan, index=self.table.index, dtype=float)
        return pd.to_numeric(self.table[self.objective], errors="coerce")

    def status_of(self, trial_id: str) -> str:
        """Return the status of a trial in the table, or ``"pending"``."""
        if self.table.empty:
            return "pending"
        match = self.table.loc[self.table["trial_id"] == trial_id, "status"]
        return str(match.iloc[0]) if len(match) else "pending"


def load_run(run_dir: str | Path) -> RunData:
    """Read a run directory into a :class:`RunData`.

    Raises
    ------
    FileNotFoundError
        When ``run_dir`` has no ``sweep.json``.
    """
    run_dir = Path(run_dir)
    meta = read_sweep_meta(run_dir)
    table = load_results(run_dir)
    run = RunData(
        run_dir=run_dir,
        meta=meta,
        table=table,
        objective=str(meta.get("objective", "val_accuracy")),
        mode=str(meta.get("mode", "max")),
        config=_read_config(run_dir),
    )
    spans = []
    for trial_dir in sorted(p.parent for p in run_dir.glob("*/params.json")):
        _, reports, _ = read_trial(trial_dir)
        curve = _curve(reports, run.objective)
        if not curve.empty:
            run.curves[trial_dir.name] = curve
        span = trial_span(trial_dir, reports, run.status_of(trial_dir.name))
        if span is not None:
            spans.append(span)
    run.spans = assign_slots(spans)
    run.params = tuned_params(meta, run.config, table)
    return run


def _read_config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "config.yaml"
    if not path.is_file():
        return {}
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        logger.warning("ignored %s: invalid YAML (%s)", path, err)
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _curve(reports: list[dict[str, Any]], objective: str) -> pd.DataFrame:
    rows = []
    for index, report in enumerate(reports):
        value = report.get(objective)
        if not _is_number(value) or not math.isfinite(value):
            continue
        epoch = report.get("epoch", report.get("training_iteration", index + 1))
        rows.append({"epoch": epoch, "value": float(value)})
    return pd.DataFrame(rows, columns=["epoch", "value"])


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def status_counts(table: pd.DataFrame) -> dict[str, int]:
    """Return the number of trials per status, largest groups first."""
    if table.empty:
        return {}
    return {str(k): int(v) for k, v in table["status"].value_counts().items()}


# -- timeline ---------------------------------------------------------------


def trial_span(
    trial_dir: Path, reports: list[dict[str, Any]], status: str
) -> TrialSpan | None:
    """Estimate when a trial ran from its reports.

    The start is ``timestamp - time_total_s`` of the first report, and the
    end is the start plus ``time_total_s`` of the last report. File times are
    no substitute because Ray Tune copies trial folders to the storage path in
    batches, so a trial that never reported gets no span.

    Returns
    -------
    TrialSpan or None
        None when no report has both ``timestamp`` and ``time_total_s``.
    """
    timed = [
        r
        for r in reports
        if _is_number(r.get("timestamp")) and _is_number(r.get("time_total_s"))
    ]
    if not timed:
        return None
    first, last = timed[0], timed[-1]
    start = float(first["timestamp"]) - float(first["time_total_s"])
    end = start + float(last["time_total_s"])
    # NOTE: time_total_s excludes the pause of a resumed trial, so its bar
    # would end early. The last timestamp is then the better end.
    if float(last["timestamp"]) - end > 2 * SLOT_TOLERANCE_S:
        end = float(last["timestamp"])
    worker = None
    if last.get("pid") is not None:
        worker = f"{last.get('hostname', '')}:{last['pid']}"
    return TrialSpan(trial_dir.name, start, end, status, worker)


def assign_slots(
    spans: list[TrialSpan], tolerance_s: float = SLOT_TOLERANCE_S
) -> list[TrialSpan]:
    """Assign every trial a worker slot and return the spans by start time.

    A Ray actor runs one trial at a time, so the trials of one worker
    (``hostname:pid``) form a chain: a start that the whole-second
    timestamps put before the previous trial's end moves to that end,
    keeping the duration. Chains, and trials without a known worker, are
    then packed greedily in order of start into the lowest-numbered free
    slot. A slot is free once its last chain ended no later than
    ``tolerance_s`` after the next one starts, so the number of slots is the
    peak number of concurrent chains.
    """
    chains: dict[str, list[TrialSpan]] = {}
    for span in sorted(spans, key=lambda s: (s.start, s.trial_id)):
        key = span.worker if span.worker is not None else f"trial:{span.trial_id}"
        chain = chains.setdefault(key, [])
        if chain and chain[-1].end > span.start:
            shift = chain[-1].end - span.start
            span.start += shift
            span.end += shift
        chain.append(span)
    slot_ends: list[float] = []
    for chain in sorted(chains.values(), key=lambda c: (c[0].start, c[0].trial_id)):
        start, end = chain[0].start, max(s.end for s in chain)
        free = [i for i, e in enumerate(slot_ends) if e <= start + tolerance_s]
        if free:
            slot = free[0]
            slot_ends[slot] = end
        else:
            slot = len(slot_ends)
            slot_ends.append(end)
        for span in chain:
            span.slot = slot
    return sorted(spans, key=lambda s: (s.start, s.trial_id))


def utilisation(spans: list[TrialSpan]) -> float | None:
    """Return busy trial-seconds over slots times the sweep's span, in [0, 1].

    Returns None without spans or when the sweep's span is zero.
    """
    if not spans:
        return None
    slots = max(s.slot for s in spans) + 1
    span_s = max(s.end for s in spans) - min(s.start for s in spans)
    if span_s <= 0:
        return None
    busy = sum(s.duration for s in spans)
    return min(1.0, busy / (slots * span_s))


# -- search space -----------------------------------------------------------


def tuned_params(
    meta: Mapping[str, Any], config: Mapping[str, Any], table: pd.DataFrame
) -> list[TunedParam]:
    """List the searched config values with their domains.

    Specs come from ``config.yaml`` first, then from the ``space`` of
    ``sweep.json``, whose Ray domains are only reprs: for those the kind comes
    from the domain's class and the log scale is inferred from the samples.
    Without either source, every config column whose value differs between
    trials counts as tuned. Keys without a column in ``table`` are dropped.
    """
    specs = _specs_from_config(config)
    for key, value in (meta.get("space") or {}).items():
        if key not in specs and _is_domain(value):
            specs[key] = value
    if not specs and not table.empty:
        for column in table.columns:
            if column.startswith("config/") and table[column].nunique() > 1:
                specs[column.removeprefix("config/")] = None
    params = []
    for key, spec in specs.items():
        column = f"config/{key}"
        if table.empty or column not in table or table[column].isna().all():
            continue
        params.append(_param_from_spec(key, spec, table[column].dropna()))
    return params


def _specs_from_config(config: Mapping[str, Any]) -> dict[str, Any]:
    specs: dict[str, Any] = {}
    for namespace in NAMESPACES:
        section = config.get(namespace)
        if not isinstance(section, Mapping):
            continue
        for key, value in flatten(section, f"{namespace}.").items():
            if _is_domain(value):
                specs[key] = value
    return specs


def _is_domain(value: Any) -> bool:
    if isinstance(value, str):
        return value.startswith(_RAY_DOMAIN_PREFIX)
    return is_spec(value) or (
        isinstance(value, Mapping) and set(value) == {"grid_search"}
    )


def _param_from_spec(key: str, spec: Any, values: pd.Series) -> TunedParam:
    numeric = pd.to_numeric(values, errors="coerce")
    all_numeric = (
        bool(numeric.notna().all())
        and not values.map(lambda v: isinstance(v, bool)).any()
    )
    if isinstance(spec, Mapping):
        kind, args = next(iter(spec.items()))
        if kind in _CATEGORICAL_KINDS or kind == "grid_search":
            return TunedParam(key, "categorical", choices=tuple(str(v) for v in args))
        if kind == "sample_from" or kind == "randn":
            return TunedParam(key, "float")
        low, high = float(args[0]), float(args[1])
        number_kind = "int" if kind in _INT_KINDS else "float"
        return TunedParam(key, number_kind, log=kind in _LOG_KINDS, low=low, high=high)
    if not all_numeric:
        return TunedParam(key, "categorical")
    if isinstance(spec, str) and "Categorical" in spec:
        return TunedParam(key, "categorical")
    is_int = isinstance(spec, str) and "Integer" in spec
    positive = numeric[numeric > 0]
    log = (
        len(positive) == len(numeric)
        and len(numeric) > 1
        and positive.max() / positive.min() > LOG_RATIO
    )
    return TunedParam(
        key, "int" if is_int else "float", log=bool(log), log_inferred=True
    )
