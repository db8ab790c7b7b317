"""The report's figures, drawn with matplotlib and saved as PNG files.

Figures are built with :class:`matplotlib.figure.Figure` directly, not
through ``pyplot``, so no GUI backend is selected and the caller's backend
stays as it was. ``savefig`` renders the PNGs with the Agg canvas.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import (
    EngFormatter,
    FuncFormatter,
    LogLocator,
    MaxNLocator,
    NullFormatter,
    PercentFormatter,
)

from spiketune.report.data import RunData, TunedParam, utilisation
from spiketune.report.importance import Importance
from spiketune.report.style import (
    BEST_COLOUR,
    FRONT_COLOUR,
    OKABE_ITO,
    metric_label,
    ordered_statuses,
    status_style,
)
from spiketune.tuning.results import ENERGY, SPIKES

__all__ = ["FIGURE_FILES", "FigureResult", "FigureSkipped", "write_figures"]

logger = logging.getLogger(__name__)

DPI = 110
# Above this many trials, lines and markers are drawn thinner and translucent.
MANY_TRIALS = 30
# Layer activity shows this many of the best trials.
TOP_ACTIVITY = 5
# The parameter figure shows at most this many parameters.
MAX_PARAMS = 24

FIGURE_FILES = {
    "curves": "learning_curves.png",
    "pareto": "pareto.png",
    "params": "parameters.png",
    "importance": "importance.png",
    "activity": "layer_activity.png",
    "timeline": "timeline.png",
}


class FigureSkipped(Exception):
    """Raised by a figure builder when the run has no data for the figure."""


@dataclass
class FigureResult:
    """One figure of the report: its file, or why it was skipped.

    Attributes
    ----------
    key : str
        Key in :data:`FIGURE_FILES`.
    title : str
        Heading of the figure's section.
    caption : str
        What the figure shows and how to read it.
    file : str or None
        PNG file name in the output folder, None when skipped.
    note : str
        Why the figure was skipped, or a caveat about its data.
    """

    key: str
    title: str
    caption: str
    file: str | None
    note: str = ""


def write_figures(
    run: RunData, importance: Importance, out_dir: Path
) -> list[FigureResult]:
    """Draw every figure of the report and save each as a PNG in ``out_dir``.

    A PNG left by an earlier report is deleted when its figure is skipped
    now, so the folder never shows a stale figure.
    """
    builders: list[tuple[str, str, str, Callable[[], tuple[Figure, str]]]] = [
        (
            "curves",
            "Learning curves",
            f"Objective ({run.objective}) of every trial after each epoch. A "
            "marker at the end of a line shows where the scheduler stopped a "
            "trial early or where the trial diverged; the thick black line is "
            "the best trial.",
            lambda: plot_learning_curves(run),
        ),
        (
            "pareto",
            "Pareto fronts",
            "Objective at each trial's best epoch against the estimated energy "
            "per sample and against the spikes per sample. Green diamonds are "
            "the trials no other trial beats on both axes; the energy is an "
            "estimate from the chip profile's per-event constants, not a "
            "measurement.",
            lambda: plot_pareto(run),
        ),
        (
            "params",
            "Tuned parameters",
            "Objective at each trial's best epoch against every tuned "
            "parameter. Axes of log-scaled domains are logarithmic; "
            "categorical values are spread sideways so points do not hide "
            "each other.",
            lambda: plot_parameters(run),
        ),
        (
            "importance",
            "Parameter importance",
            "Share of the objective's variance explained by each parameter, "
            "estimated with fANOVA on the finished trials.",
            lambda: plot_importance(importance),
        ),
        (
            "activity",
            "Layer activity",
            f"Mean firing rate and fraction of silent neurons per layer for the "
            f"{TOP_ACTIVITY} best trials, on the validation split at each "
            "trial's best epoch.",
            lambda: plot_layer_activity(run),
        ),
        (
            "timeline",
            "Timeline",
            "Trials over wall time, one row per worker slot. Start and end are "
            "estimated from Ray Tune's whole-second report timestamps, so "
            "bars may be off by up to a second. The busy share is the "
            "trial-seconds divided by the slots times the time from the first "
            "trial's start to the last trial's end, so Ray's start-up is not "
            "counted.",
            lambda: plot_timeline(run),
        ),
    ]
    results = []
    for key, title, caption, build in builders:
        path = out_dir / FIGURE_FILES[key]
        try:
            figure, note = build()
        except FigureSkipped as skipped:
            path.unlink(missing_ok=True)
            results.append(FigureResult(key, title, caption, None, str(skipped)))
            continue
        figure.savefig(path, dpi=DPI)
        logger.debug("wrote %s", path)
        results.append(FigureResult(key, title, caption, path.name, note))
    return results


# -- helpers ----------------------------------------------------------------


def _numeric(table: pd.DataFrame, column: str) -> pd.Series:
    if column not in table:
        return pd.Series(np.nan, index=table.index, dtype=float)
    return pd.to_numeric(table[column], errors="coerce").astype(float)


def _best_trial_id(run: RunData) -> str | None:
    values = run.objective_values()
    finite = values[np.isfinite(values)]
    if finite.empty:
        return None
    return str(run.table.loc[finite.index[0], "trial_id"])


def _status_handles(statuses: Sequence[str], line: bool = False) -> list[Line2D]:
    handles = []
    for status in ordered_statuses(statuses):
        style = status_style(status)
        handles.append(
            Line2D(
                [],
                [],
                color=style.colour,
                marker=style.marker,
                linestyle="-" if line else "none",
                label=style.label,
            )
        )
    return handles


def _use_log(values: pd.Series, ratio: float = 10.0) -> bool:
    values = values[np.isfinite(values)]
    return bool(
        len(values) > 1 and (values > 0).all() and values.max() / values.min() > ratio
    )


def _scatter_by_status(ax, run: RunData, x: pd.Series, y: pd.Series, mask) -> None:
    many = int(mask.sum()) > MANY_TRIALS
    for status in ordered_statuses(run.table.loc[mask, "status"]):
        rows = mask & (run.table["status"] == status)
        style = status_style(status)
        ax.scatter(
            x[rows],
            y[rows],
            s=14 if many else 36,
            color=style.colour,
            marker=style.marker,
            alpha=0.55 if many else 0.85,
            linewidths=0,
            zorder=2,
        )


# -- figures ----------------------------------------------------------------


def plot_learning_curves(run: RunData) -> tuple[Figure, str]:
    """Draw the objective per epoch of every trial that reported it."""
    if not run.curves:
        raise FigureSkipped(f"No trial reported {run.objective}.")
    figure = Figure(figsize=(11, 4.8), layout="constrained")
    ax = figure.add_subplot()
    many = len(run.curves) > MANY_TRIALS

    statuses = []
    for trial_id, curve in run.curves.items():
        status = run.status_of(trial_id)
        statuses.append(status)
        style = status_style(status)
        ax.plot(
            curve["epoch"],
            curve["value"],
            color=style.colour,
            linewidth=0.8 if many else 1.4,
            alpha=0.35 if many else 0.85,
            marker="." if len(curve) == 1 else None,
            zorder=2,
        )
        if status in ("stopped_early", "diverged", "incomplete"):
            ax.plot(
                curve["epoch"].iloc[-1],
                curve["value"].iloc[-1],
                color=style.colour,
                marker=style.marker,
                markersize=5 if many else 8,
                linestyle="none",
                zorder=3,
            )

    handles = _status_handles(statuses, line=True)
    best = _best_trial_id(run)
    if best in run.curves:
        curve = run.curves[best]
        ax.plot(
            curve["epoch"],
            curve["value"],
            color=BEST_COLOUR,
            linewidth=2.4,
            marker="o" if len(curve) == 1 else None,
            zorder=4,
        )
        handles.append(
            Line2D([], [], color=BEST_COLOUR, linewidth=2.4, label=f"best: {best}")
        )

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric_label(run.objective))
    count = len(run.curves)
    ax.set_title(f"{run.objective} per epoch ({count} trial{'s' * (count != 1)})")
    ax.grid(alpha=0.3)
    figure.legend(
        handles=handles,
        loc="outside lower center",
        ncols=len(handles),
        fontsize="small",
    )
    return figure, ""


def plot_pareto(run: RunData) -> tuple[Figure, str]:
    """Draw the objective against energy and spikes with each Pareto front."""
    objective = run.objective_values()
    panels = [(ENERGY, "pareto_energy"), (SPIKES, "pareto_spikes")]
    if not any(
        np.isfinite(_numeric(run.table, c) + objective).any() for c, _ in panels
    ):
        raise FigureSkipped(
            f"No trial reported {run.objective} together with {ENERGY} or {SPIKES}."
        )
    figure = Figure(figsize=(11, 4.6), layout="constrained")
    axes = figure.subplots(1, 2, sharey=True)

    for ax, (column, flag) in zip(axes, panels, strict=True):
        cost = _numeric(run.table, column)
        valid = np.isfinite(cost) & np.isfinite(objective)
        ax.set_xlabel(metric_label(column))
        ax.grid(alpha=0.3)
        if not valid.any():
            ax.text(
                0.5,
                0.5,
                f"no trial reported {column}",
                ha="center",
                va="center",
                transform=ax.transAxes,
            )
            continue
        front = valid & run.table.get(flag, pd.Series(False, index=run.table.index))
        front = front.astype(bool)

        _scatter_by_status(ax, run, cost, objective, valid & ~front)
        order = cost[front].sort_values().index
        ax.plot(
            cost[order],
            objective[order],
            color=FRONT_COLOUR,
            marker="D",
            markersize=7,
            markeredgecolor="black",
            markeredgewidth=0.6,
            drawstyle="steps-post" if run.mode == "max" else "steps-pre",
            linewidth=1.2,
            zorder=3,
        )
        if _use_log(cost[valid]):
            ax.set_xscale("log")
            _label_log_axis(ax.xaxis)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(nbins=6))
        if column == ENERGY:
            ax.xaxis.set_major_formatter(EngFormatter(unit="J"))
        ax.set_title(f"{run.objective} vs {metric_label(column)}", fontsize="medium")

    axes[0].set_ylabel(metric_label(run.objective))
    on_front = run.table[["pareto_energy", "pareto_spikes"]].all(axis=1)
    handles = _status_handles(run.table.loc[~on_front, "status"])
    handles.append(
        Line2D(
            [],
            [],
            color=FRONT_COLOUR,
            marker="D",
            markeredgecolor="black",
            label="Pareto front (any status)",
        )
    )
    figure.legend(
        handles=handles,
        loc="outside lower center",
        ncols=len(handles),
        fontsize="small",
    )
    return figure, ""


def plot_parameters(run: RunData) -> tuple[Figure, str]:
    """Draw the objective against each tuned parameter, one panel each."""
    if not run.params:
        raise FigureSkipped("The sweep tuned no parameters.")
    objective = run.objective_values()
    if not np.isfinite(objective).any():
        raise FigureSkipped(f"No trial reported a finite {run.objective}.")
    params = run.params[:MAX_PARAMS]
    ncols = min(3, len(params))
    nrows = math.ceil(len(params) / ncols)
    figure = Figure(figsize=(4.4 * ncols, 3.4 * nrows + 0.6), layout="constrained")
    axes = np.atleast_1d(figure.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, param in zip(axes, params, strict=False):
        _plot_param(ax, run, param, objective)
    for ax in axes[len(params) :]:
        ax.remove()
    figure.legend(
        handles=_status_handles(run.table["status"]),
        loc="outside lower center",
        ncols=6,
        fontsize="small",
    )
    figure.suptitle(f"{run.objective} against each tuned parameter")
    notes = []
    if len(run.params) > MAX_PARAMS:
        notes.append(
            f"Only the first {MAX_PARAMS} of {len(run.params)} parameters are shown."
        )
    inferred = [p.key for p in params if p.log_inferred and p.log]
    if inferred:
        notes.append(
            "No plain spec was found for "
            + ", ".join(inferred)
            + ", so their log axes were inferred from the sampled range."
        )
    return figure, " ".join(notes)


def _plot_param(ax, run: RunData, param: TunedParam, objective: pd.Series) -> None:
    raw = run.table[param.column]
    valid = np.isfinite(objective) & raw.notna()
    ax.set_ylabel(metric_label(run.objective))
    ax.set_title(param.key, fontsize="medium")
    ax.grid(alpha=0.3)
    if param.kind == "categorical":
        labels = list(param.choices or ())
        labels += [
            v for v in dict.fromkeys(str(v) for v in raw[valid]) if v not in labels
        ]
        position = {label: i for i, label in enumerate(labels)}
        jitter = np.random.default_rng(0).uniform(-0.18, 0.18, len(raw))
        x = raw.map(lambda v: position.get(str(v), np.nan)).astype(float) + jitter
        _scatter_by_status(ax, run, x, objective, valid)
        ax.set_xticks(range(len(labels)))
        short = [label if len(label) <= 14 else label[:13] + "…" for label in labels]
        ax.set_xticklabels(
            short,
            rotation=30 if len(labels) > 3 else 0,
            ha="right" if len(labels) > 3 else "center",
        )
        ax.set_xlim(-0.6, len(labels) - 0.4)
        ax.set_xlabel(f"{param.key} (categorical)")
        return
    x = pd.to_numeric(raw, errors="coerce").astype(float)
    _scatter_by_status(ax, run, x, objective, valid & np.isfinite(x))
    if param.log and (x[valid] > 0).all():
        ax.set_xscale("log")
        _label_log_axis(ax.xaxis)
        ax.set_xlabel(f"{param.key} (log scale)")
    else:
        ax.set_xlabel(param.key)


def plot_importance(importance: Importance) -> tuple[Figure, str]:
    """Draw the importance of each parameter as horizontal bars."""
    if not importance.values:
        raise FigureSkipped(importance.note)
    items = sorted(importance.values.items(), key=lambda kv: kv[1])
    height = max(2.4, 0.45 * len(items) + 1.2)
    figure = Figure(figsize=(8, height), layout="constrained")
    ax = figure.add_subplot()
    names = [k for k, _ in items]
    values = [v for _, v in items]
    ax.barh(names, values, color=OKABE_ITO[0])
    for y, value in enumerate(values):
        ax.text(value + 0.01, y, f"{value:.0%}", va="center", fontsize="small")
    ax.set_xlim(0, 1.1)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("share of objective variance (fANOVA)")
    ax.set_title("Parameter importance")
    ax.grid(axis="x", alpha=0.3)
    return figure, importance.note


def _layer_columns(table: pd.DataFrame, prefix: str) -> list[tuple[int, str]]:
    pattern = re.compile(rf"^{re.escape(prefix)}(\d+)$")
    found = [(int(m.group(1)), c) for c in table.columns if (m := pattern.match(c))]
    return sorted(found)


def plot_layer_activity(run: RunData) -> tuple[Figure, str]:
    """Draw per-layer spike rates and silent fractions of the best trials."""
    rates = _layer_columns(run.table, "val_spike_rate_hz_l")
    silent = dict(_layer_columns(run.table, "val_silent_fraction_l"))
    if not rates:
        raise FigureSkipped("No trial reported per-layer spike rates.")
    rate_values = run.table[[c for _, c in rates]].apply(pd.to_numeric, errors="coerce")
    has_rates = rate_values.notna().any(axis=1) & np.isfinite(run.objective_values())
    top = run.table[has_rates].head(TOP_ACTIVITY)
    if top.empty:
        raise FigureSkipped("No trial reported both the objective and spike rates.")

    figure = Figure(figsize=(11, 4.4), layout="constrained")
    rate_ax, silent_ax = figure.subplots(1, 2)
    layers = np.arange(len(rates))
    width = 0.8 / len(top)
    hatches = ["", "//", "..", "xx", "\\\\"]
    for i, (_, row) in enumerate(top.iterrows()):
        offset = (i - (len(top) - 1) / 2) * width
        colour = OKABE_ITO[i % len(OKABE_ITO)]
        label = f"#{row['rank']} {row['trial_id']}"
        rate = [pd.to_numeric(row[c], errors="coerce") for _, c in rates]
        frac = [
            pd.to_numeric(row.get(silent.get(layer, ""), np.nan), errors="coerce")
            for layer, _ in rates
        ]
        style = {
            "width": width,
            "color": colour,
            "hatch": hatches[i % len(hatches)],
            "edgecolor": "white",
            "linewidth": 0.5,
        }
        rate_ax.bar(layers + offset, rate, label=label, **style)
        silent_ax.bar(layers + offset, frac, **style)

    names = [f"layer {layer}" for layer, _ in rates]
    for ax in (rate_ax, silent_ax):
        ax.set_xticks(layers, names)
        ax.set_xlabel("spiking layer")
        ax.grid(axis="y", alpha=0.3)
    rate_ax.set_ylabel("mean firing rate (Hz)")
    rate_ax.set_title("Spike rate per layer")
    silent_ax.set_ylabel("silent neurons (% of layer)")
    silent_ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    silent_ax.set_ylim(0, 1.0)
    silent_ax.set_title("Silent neurons per layer")
    figure.legend(
        loc="outside lower center",
        ncols=min(len(top), 5),
        fontsize="small",
        title="rank and trial",
    )
    return figure, ""


def plot_timeline(run: RunData) -> tuple[Figure, str]:
    """Draw each trial as a bar on its worker slot over the sweep's wall time."""
    spans = run.spans
    if not spans:
        raise FigureSkipped("No trial has a known start and end time.")
    t0 = min(s.start for s in spans)
    slots = max(s.slot for s in spans) + 1
    busy = utilisation(spans)

    height = min(14.0, max(2.6, 0.32 * slots + 1.8))
    figure = Figure(figsize=(11, height), layout="constrained")
    ax = figure.add_subplot()
    for status in ordered_statuses(s.status for s in spans):
        group = [s for s in spans if s.status == status]
        ax.barh(
            [s.slot for s in group],
            [max(s.duration, 0.05) for s in group],
            left=[s.start - t0 for s in group],
            height=0.8,
            color=status_style(status).colour,
            edgecolor="white",
            linewidth=0.6,
        )

    if slots <= 40:
        ax.set_yticks(range(slots))
    else:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.invert_yaxis()
    ax.set_ylabel("worker slot")
    ax.set_xlabel("time since the first trial started (s)")
    ax.grid(axis="x", alpha=0.3)
    busy_text = f", {busy:.0%} busy" if busy is not None else ""
    ax.set_title(f"{len(spans)} trials on {slots} worker slots{busy_text}")
    missing = len(run.table) - len(spans)
    note = (
        f"{missing} trial(s) never reported and are not shown." if missing > 0 else ""
    )
    handles = [
        Patch(color=status_style(s).colour, label=status_style(s).label)
        for s in ordered_statuses(s.status for s in spans)
    ]
    figure.legend(handles=handles, loc="outside right upper", fontsize="small")
    return figure, note


def _label_log_axis(axis) -> None:
    """Label a log axis at 1, 2 and 5 times each power of ten, in plain numbers.

    Matplotlib's default labels only powers of ten, so a range inside one
    decade gets one label or overlapping minor labels.
    """
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())
