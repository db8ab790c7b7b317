"""The report's static HTML page: summary, figures, trial table and failures.

The page needs no server and loads nothing from the network: figures are PNG
files next to it, and the table is sorted by a few lines of inline
JavaScript.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spiketune.report.data import RunData, status_counts, utilisation
from spiketune.report.figures import FigureResult
from spiketune.report.importance import Importance
from spiketune.report.style import STATUS_STYLES, metric_label, status_style
from spiketune.tuning.defaults import DEFAULTS
from spiketune.tuning.results import ENERGY, SPIKES

__all__ = ["objective_test_column", "render_page", "summary_items", "table_columns"]

# Metric columns shown in the trial table when present, after the objective.
_METRIC_COLUMNS = (
    "val_loss",
    "val_f1_macro",
    "train_loss",
    ENERGY,
    SPIKES,
    "val_synops_per_sample",
    "wall_time_s",
)
_FAILED = ("error", "diverged")

_HEADER_LABELS = {
    "rank": "rank",
    "trial_id": "trial",
    "status": "status",
    "epochs": "epochs",
    "best_epoch": "best epoch",
    "wall_time_s": "time (s)",
    ENERGY: "energy/sample (J, estimate)",
    SPIKES: "spikes/sample",
    "val_synops_per_sample": "synops/sample",
    "pareto": "Pareto front",
    "reason": "reason",
}

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
       max-width: 1240px; padding: 0 24px 48px; color: #1b1b1b; line-height: 1.45; }
h1 { font-size: 1.6em; margin: 24px 0 4px; }
h2 { font-size: 1.25em; margin-top: 36px; border-bottom: 1px solid #ddd;
     padding-bottom: 4px; }
.meta { color: #555; font-size: 0.9em; margin: 0; }
dl.summary { display: grid; grid-template-columns: max-content 1fr; gap: 4px 20px; }
dl.summary dt { font-weight: 600; }
dl.summary dd { margin: 0; }
figure { margin: 12px 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption, .note { color: #444; font-size: 0.92em; max-width: 960px; }
.note { font-style: italic; }
.scroll { overflow: auto; max-height: 720px; border: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 13px;
        font-variant-numeric: tabular-nums; }
th, td { padding: 3px 8px; text-align: right; white-space: nowrap; }
td.text, th.text { text-align: left; }
td.reason { white-space: normal; min-width: 240px; max-width: 480px; text-align: left; }
thead th { position: sticky; top: 0; background: #f2f2f2;
           border-bottom: 1px solid #bbb; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[data-order="asc"]::after { content: " \\25B2"; }
table.sortable th[data-order="desc"]::after { content: " \\25BC"; }
tbody tr:nth-child(even) { background: #fafafa; }
tr.front td:first-child { box-shadow: inset 4px 0 0 #009E73; }
.swatch { display: inline-block; width: 0.8em; height: 0.8em; margin-right: 4px;
          vertical-align: baseline; border-radius: 2px; }
"""

# Click a header to sort by that column; click again to reverse. Cells carry
# their numeric value in data-v, and empty cells always sort last.
_SORT_JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("thead th").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var asc = th.dataset.order !== "asc";
      table.querySelectorAll("thead th").forEach(function (h) {
        delete h.dataset.order;
      });
      th.dataset.order = asc ? "asc" : "desc";
      var body = table.tBodies[0];
      var key = function (row) {
        var cell = row.cells[col];
        var raw = cell.dataset.v !== undefined ? cell.dataset.v : cell.textContent;
        var num = parseFloat(raw);
        return raw === "" ? null : (isNaN(num) ? raw.toLowerCase() : num);
      };
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === null || y === null) { return (x === null) - (y === null); }
        if (typeof x !== typeof y) { return typeof x === "number" ? -1 : 1; }
        var order = x < y ? -1 : (x > y ? 1 : 0);
        return asc ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
// A figure missing from the folder shows as an error in the browser console.
window.addEventListener("load", function () {
  document.querySelectorAll("img").forEach(function (img) {
    if (!img.naturalWidth) {
      console.error("figure failed to load: " + img.getAttribute("src"));
    }
  });
});
"""


def render_page(
    run: RunData,
    figures: Sequence[FigureResult],
    importance: Importance,
    out_dir: Path,
) -> str:
    """Return the report page as one HTML document.

    Parameters
    ----------
    run : RunData
        The run to describe.
    figures : sequence of FigureResult
        Figures in page order; skipped ones show their note instead.
    importance : Importance
        Parameter importances, listed under their figure.
    out_dir : Path
        Folder the page is written to, for relative links to the run's files.
    """
    generated = dt.datetime.now().isoformat(timespec="seconds")
    title = f"spiketune report: {run.name}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f"<title>{_e(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">Run directory {_e(str(run.run_dir))}; page generated '
        f"{_e(generated)}.</p>",
        "<h2>Summary</h2>",
        _summary_html(run, out_dir),
    ]
    for figure in figures:
        parts.append(_figure_html(figure))
        if figure.key == "importance" and importance.values:
            parts.append(_importance_table(importance))
    parts += [
        "<h2>Trials</h2>",
        _trial_table(run),
        "<h2>Errors and divergences</h2>",
        _failures_html(run),
        f"<script>{_SORT_JS}</script>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


# -- summary ----------------------------------------------------------------


def objective_test_column(objective: str) -> str:
    """Return the table column holding the test-split score of ``objective``."""
    return "test_" + objective.removeprefix("val_")


def summary_items(run: RunData) -> list[tuple[str, str]]:
    """Return the summary as (label, plain text) pairs, in page order."""
    meta, table = run.meta, run.table
    items = [
        ("Sweep", f"{run.name} (state: {meta.get('state', 'unknown')})"),
        ("Dataset", _config_value(run, "data.name")),
        ("Task loss", _config_value(run, "loss.task")),
        ("Chip profile", _config_value(run, "model.profile")),
        ("Objective", f"{run.objective} ({meta.get('mode', run.mode)})"),
        ("Searcher", str(meta.get("searcher", "unknown"))),
        ("Scheduler", str(meta.get("scheduler", "unknown"))),
        ("Trials", _trial_counts(run)),
        ("Max epochs", str(meta.get("max_epochs", "unknown"))),
        ("CPUs per trial", str(meta.get("cpus_per_trial", "unknown"))),
        ("Wall time", _wall_time(run)),
        ("Worker slots", _slot_text(run)),
        ("Best trial", _best_text(run)),
    ]
    test = _test_text(run)
    if test:
        items.append((f"Test {run.objective.removeprefix('val_')}", test))
    tuned = ", ".join(p.key for p in run.params) or "none"
    items.append(("Tuned parameters", tuned))
    if table.empty:
        items.append(("Note", "The run directory has no trial folders yet."))
    return items


def _config_value(run: RunData, key: str) -> str:
    column = f"config/{key}"
    if not run.table.empty and column in run.table:
        values = [str(v) for v in dict.fromkeys(run.table[column].dropna())]
        if values:
            return ", ".join(values)
    value: Any = run.config
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        value = (run.meta.get("space") or {}).get(key)
    if value is not None:
        return str(value)
    default: Any = DEFAULTS
    for part in key.split("."):
        default = default.get(part) if isinstance(default, dict) else None
    return "unknown" if default is None else f"{default} (default)"


def _trial_counts(run: RunData) -> str:
    counts = status_counts(run.table)
    total = int(run.meta.get("total_trials") or len(run.table))
    shown = {
        s: counts.get(s, 0) for s in ("finished", "stopped_early", "diverged", "error")
    }
    shown.update({s: n for s, n in counts.items() if s not in shown})
    text = ", ".join(f"{n} {status_style(s).label}" for s, n in shown.items())
    return f"{len(run.table)} of {total} started: {text}"


def _format_duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 120:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _wall_time(run: RunData) -> str:
    wall = run.meta.get("wall_time_s")
    if isinstance(wall, int | float) and math.isfinite(wall):
        return _format_duration(float(wall))
    if run.spans:
        span = max(s.end for s in run.spans) - min(s.start for s in run.spans)
        duration = _format_duration(span)
        return f"{duration} (from trial timestamps; the sweep did not finish)"
    return "unknown"


def _slot_text(run: RunData) -> str:
    busy = utilisation(run.spans)
    if busy is None:
        return "unknown"
    slots = max(s.slot for s in run.spans) + 1
    return f"{slots} concurrent at peak, busy {busy:.0%} of the sweep's span"


def _best_text(run: RunData) -> str:
    values = run.objective_values()
    finite = values[np.isfinite(values)]
    if finite.empty:
        return f"none: no trial reported a finite {run.objective}"
    row = run.table.loc[finite.index[0]]
    epoch = row.get("best_epoch")
    at = f" at epoch {int(epoch)}" if pd.notna(epoch) else ""
    return f"{row['trial_id']}: {run.objective} = {_fmt(finite.iloc[0])}{at}"


def _test_text(run: RunData) -> str:
    column = objective_test_column(run.objective)
    if run.table.empty or column not in run.table:
        return ""
    scored = run.table[pd.to_numeric(run.table[column], errors="coerce").notna()]
    if scored.empty:
        return ""
    scores = "; ".join(
        f"{row['trial_id']} (rank {row['rank']}): {_fmt(row[column])}"
        for _, row in scored.iterrows()
    )
    return f"{scores}. Scored once on the test split, after selection."


def _summary_html(run: RunData, out_dir: Path) -> str:
    rows = [f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in summary_items(run)]
    links = []
    for name in ("results.csv", "results.json", "sweep.json", "config.yaml"):
        path = run.run_dir / name
        if path.is_file():
            href = Path(os.path.relpath(path, out_dir)).as_posix()
            links.append(f'<a href="{_e(href)}">{_e(name)}</a>')
    if links:
        rows.append(f"<dt>Files</dt><dd>{', '.join(links)}</dd>")
    return '<dl class="summary">' + "".join(rows) + "</dl>"


# -- figures ----------------------------------------------------------------


def _figure_html(figure: FigureResult) -> str:
    heading = f'<h2 id="{_e(figure.key)}">{_e(figure.title)}</h2>'
    if figure.file is None:
        return f'{heading}<p class="note">Not drawn. {_e(figure.note)}</p>'
    caption = figure.caption + (f" {figure.note}" if figure.note else "")
    return (
        f"{heading}<figure>"
        f'<img src="{_e(figure.file)}" alt="{_e(figure.title)}">'
        f"<figcaption>{_e(caption)} File: {_e(figure.file)}.</figcaption></figure>"
    )


def _importance_table(importance: Importance) -> str:
    rows = "".join(
        f'<tr><td class="text">{_e(k)}</td><td>{v:.1%}</td></tr>'
        for k, v in sorted(importance.values.items(), key=lambda kv: -kv[1])
    )
    return (
        '<table><thead><tr><th class="text">parameter</th><th>importance</th>'
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )


# -- trial table ------------------------------------------------------------


def table_columns(run: RunData) -> list[str]:
    """Return the results columns the trial table shows, in order."""
    wanted = [
        "rank",
        "trial_id",
        "status",
        "epochs",
        "best_epoch",
        run.objective,
        objective_test_column(run.objective),
        *_METRIC_COLUMNS,
        *(p.column for p in run.params),
    ]
    present = [c for c in dict.fromkeys(wanted) if c in run.table]
    return [*present, "pareto", "reason"]


def _trial_table(run: RunData) -> str:
    if run.table.empty:
        return '<p class="note">No trials.</p>'
    columns = table_columns(run)
    head = "".join(
        f'<th class="{"text" if _is_text(run, c) else "num"}" title="{_e(c)}">'
        f"{_e(_header(run, c))}</th>"
        for c in columns
    )
    body = []
    for _, row in run.table.iterrows():
        on_front = [
            name
            for flag, name in (("pareto_energy", "energy"), ("pareto_spikes", "spikes"))
            if bool(row.get(flag, False))
        ]
        cells = "".join(_cell(run, row, c, on_front) for c in columns)
        css = ' class="front"' if on_front else ""
        body.append(f"<tr{css}>{cells}</tr>")
    legend = (
        '<p class="note">Click a column header to sort. Rows with a green bar '
        "are on a Pareto front of the objective against the energy estimate or "
        "the spike count. Metrics are from each trial's best epoch.</p>"
    )
    return (
        f'{legend}<div class="scroll"><table class="sortable" id="trials">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def _header(run: RunData, column: str) -> str:
    if column in _HEADER_LABELS:
        return _HEADER_LABELS[column]
    if column.startswith("config/"):
        return column.removeprefix("config/")
    if column in (run.objective, objective_test_column(run.objective)):
        return column
    return metric_label(column)


def _is_text(run: RunData, column: str) -> bool:
    if column in ("trial_id", "status", "pareto", "reason"):
        return True
    series = run.table[column].dropna()
    if series.empty:
        return False
    if series.map(lambda v: isinstance(v, bool | np.bool_)).any():
        return True
    return bool(pd.to_numeric(series, errors="coerce").isna().any())


def _cell(run: RunData, row: pd.Series, column: str, on_front: list[str]) -> str:
    if column == "pareto":
        return f'<td class="text">{_e(", ".join(on_front))}</td>'
    if column == "status":
        style = status_style(str(row["status"]))
        return (
            f'<td class="text" data-v="{_e(str(row["status"]))}">'
            f'<span class="swatch" style="background:{style.colour}"></span>'
            f"{_e(style.label)}</td>"
        )
    value = row.get(column)
    if column == "reason":
        return f'<td class="reason">{_e(_first_line(value))}</td>'
    if _is_text(run, column):
        text = "" if _missing(value) else str(value)
        return f'<td class="text">{_e(text)}</td>'
    if _missing(value):
        return '<td data-v=""></td>'
    number = float(value)
    return f'<td data-v="{number!r}">{_e(_fmt(value))}</td>'


# -- failures ---------------------------------------------------------------


def _failures_html(run: RunData) -> str:
    if run.table.empty:
        return '<p class="note">No trials.</p>'
    failed = run.table[run.table["status"].isin(_FAILED)]
    if failed.empty:
        return '<p class="note">No trial raised an error or diverged.</p>'
    rows = "".join(
        f'<tr><td class="text">{_e(row["trial_id"])}</td>'
        f'<td class="text"><span class="swatch" style="background:'
        f'{status_style(row["status"]).colour}"></span>'
        f"{_e(status_style(row['status']).label)}</td>"
        f"<td>{int(row['epochs'])}</td>"
        f'<td class="reason">{_e(_first_line(row.get("reason")))}</td></tr>'
        for _, row in failed.iterrows()
    )
    counts = ", ".join(
        f"{n} {STATUS_STYLES[s].label}"
        for s, n in failed["status"].value_counts().items()
    )
    return (
        f"<p>{_e(counts)}. Each reason is the first line of the trial's error "
        "or divergence message.</p>"
        '<div class="scroll"><table class="sortable" id="failures"><thead><tr>'
        '<th class="text">trial</th><th class="text">status</th><th>epochs</th>'
        '<th class="text">reason</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></div>"
    )


# -- formatting -------------------------------------------------------------


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _missing(value: object) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _first_line(value: object) -> str:
    if _missing(value):
        return ""
    lines = [line for line in str(value).splitlines() if line.strip()]
    return lines[0][:300] if lines else ""


def _fmt(value: object) -> str:
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    number = float(value)  # type: ignore[arg-type]
    if number.is_integer() and abs(number) < 1e9:
        return str(int(number))
    return f"{number:.4g}"
