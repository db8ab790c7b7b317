"""Ranked results of a sweep, read from its run directory without Ray.

Ray Tune writes one folder per trial with ``params.json`` (the sampled
config), ``result.json`` (one JSON line per report), ``error.txt`` when the
trial raised, and ``checkpoint_*`` folders. This module turns those files and
spiketune's ``sweep.json`` into one ranked table, so a finished or interrupted
run can be inspected with pandas alone.
"""

from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spiketune.tuning.keys import flatten

__all__ = [
    "SWEEP_FILE",
    "atomic_write",
    "best_checkpoint",
    "load_results",
    "pareto_mask",
    "read_sweep_meta",
    "read_trial",
    "save_results",
]

logger = logging.getLogger(__name__)

SWEEP_FILE = "sweep.json"
TEST_FILE = "test_scores.json"
ENERGY = "val_energy_per_sample_j"
CHECKPOINT_NAME = re.compile(r"checkpoint_(\d+)")
SPIKES = "val_spikes_per_sample"


def read_sweep_meta(run_dir: str | Path) -> dict[str, Any]:
    """Return the sweep's ``sweep.json`` metadata (objective, mode, state...)."""
    if not Path(run_dir).is_dir():
        raise FileNotFoundError(f"run directory not found: {run_dir}")
    path = Path(run_dir) / SWEEP_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{run_dir} is not a spiketune run directory: {SWEEP_FILE} is missing"
        )
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot read sweep metadata ({err})") from err
    if not isinstance(meta, dict) or not {"objective", "mode"} <= set(meta):
        raise ValueError(f"{path}: not a spiketune sweep file (objective missing)")
    return meta


def read_trial(trial_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    """Return ``(config, reports, error)`` of one Ray Tune trial folder.

    A line of ``result.json`` that is not a JSON object, such as the
    half-written last line of a killed worker, is skipped with a warning. An
    unreadable ``params.json`` gives an empty config, also with a warning, so
    one damaged trial does not hide the others.
    """
    config = _read_params(trial_dir / "params.json")
    reports = []
    result_file = trial_dir / "result.json"
    if result_file.is_file():
        text = result_file.read_bytes().decode("utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                report = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                # RecursionError: nesting deeper than the JSON decoder allows.
                report = None
            if not isinstance(report, dict):
                logger.warning("skipped invalid line %d of %s", number, result_file)
                continue
            reports.append(report)
    error_file = trial_dir / "error.txt"
    error = ""
    if error_file.is_file():
        error = error_file.read_bytes().decode("utf-8", errors="replace")
    return config, reports, error


def _read_params(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        config = json.loads(path.read_bytes().decode("utf-8", errors="replace"))
    except (json.JSONDecodeError, RecursionError):
        config = None
    if not isinstance(config, dict):
        logger.warning("ignored %s: not a JSON object", path)
        return {}
    return config


def _trial_dirs(run_dir: Path) -> list[Path]:
    # A trial whose actor failed before it started has error.txt but no
    # params.json, and it still gets a row.
    marked = [*run_dir.glob("*/params.json"), *run_dir.glob("*/error.txt")]
    return sorted({p.parent for p in marked})


def _status(reports: list[dict], error: str, max_epochs: int, done: bool) -> str:
    if error and not (reports and reports[-1].get("trial_status") == "finished"):
        return "error"
    if not reports:
        return "pending" if not done else "error"
    last = reports[-1].get("trial_status", "running")
    if last == "diverged":
        return "diverged"
    if last == "plateau":
        return "stopped_early"
    if last == "finished" or reports[-1].get("epoch", 0) >= max_epochs:
        return "finished"
    return "stopped_early" if done else "incomplete"


def _best_index(reports: list[dict], objective: str, mode: str) -> int | None:
    values = [r.get(objective) for r in reports]
    finite = [
        (i, float(v))
        for i, v in enumerate(values)
        if isinstance(v, int | float) and math.isfinite(v)
    ]
    if not finite:
        return None
    pick = max if mode == "max" else min
    return pick(finite, key=lambda item: item[1])[0]


def _trial_row(trial_dir: Path, meta: dict[str, Any]) -> dict[str, Any]:
    objective, mode = meta["objective"], meta["mode"]
    config, reports, error = read_trial(trial_dir)
    done = meta.get("state") == "finished"
    status = _status(reports, error, int(meta.get("max_epochs", 0)), done)
    # A resumed trial repeats the epochs after its last checkpoint, so the
    # epoch count is the highest epoch reported, not the number of reports.
    epochs = max((int(r.get("epoch", 0)) for r in reports), default=0)
    row: dict[str, Any] = {
        "trial_id": trial_dir.name,
        "status": status,
        "epochs": epochs,
    }
    best = _best_index(reports, objective, mode)
    if best is not None:
        metrics = reports[best]
        row.update(
            {k: v for k, v in metrics.items() if k.startswith(("val_", "train_"))}
        )
        row[objective] = metrics.get(objective)
        row["best_epoch"] = metrics.get("epoch", best + 1)
    if reports:
        last = reports[-1]
        row[f"last_{objective}"] = last.get(objective)
        row["wall_time_s"] = last.get("time_total_s")
        row["seed"] = last.get("seed")
    row["reason"] = _reason(status, reports, error)
    best_epoch = row.get("best_epoch")
    row["checkpoint"] = best_checkpoint(
        trial_dir, int(best_epoch) if best_epoch is not None else None
    )
    for key, value in flatten(config).items():
        plain = not isinstance(value, list | dict)
        row[f"config/{key}"] = value if plain else json.dumps(value)
    return row


def _reason(status: str, reports: list[dict], error: str) -> str:
    if status == "error":
        lines = [line for line in error.strip().splitlines() if line.strip()]
        return lines[-1][:300] if lines else "trial failed before reporting"
    if status == "diverged":
        return str(reports[-1].get("diverged_reason", "loss not finite"))
    if status == "stopped_early":
        last = reports[-1].get("trial_status")
        return "no improvement (early_stop)" if last == "plateau" else "scheduler"
    return ""


def best_checkpoint(trial_dir: Path, epoch: int | None = None) -> str | None:
    """Return the checkpoint folder of a trial's best epoch.

    The trial writes a checkpoint only when its objective improves, so the
    newest checkpoint is normally the best. When ``epoch`` is given, the
    checkpoint of that epoch is preferred; if it is gone, the newest is
    returned with a warning, since it contains an earlier, weaker epoch.
    """
    numbered = []
    for path in trial_dir.glob("checkpoint_*"):
        match = CHECKPOINT_NAME.fullmatch(path.name)
        if match and path.is_dir():
            numbered.append((int(match.group(1)), path))
    if not numbered:
        return None
    numbered.sort()
    if epoch is not None:
        for _, path in reversed(numbered):
            if _checkpoint_epoch(path) == epoch:
                return str(path)
        logger.warning(
            "%s: no checkpoint of best epoch %d; using %s",
            trial_dir.name,
            epoch,
            numbered[-1][1].name,
        )
    return str(numbered[-1][1])


def _checkpoint_epoch(path: Path) -> int | None:
    try:
        spec = json.loads((path / "spec.json").read_text())
    except (OSError, ValueError):
        return None
    epoch = spec.get("epoch") if isinstance(spec, dict) else None
    return int(epoch) if isinstance(epoch, int | float) else None


def pareto_mask(objective: np.ndarray, cost: np.ndarray, mode: str) -> np.ndarray:
    """Flag points not dominated in (objective, cost); lower cost is better.

    Points with a NaN in either coordinate are never on the front.
    """
    score = objective if mode == "max" else -objective
    valid = np.isfinite(score) & np.isfinite(cost)
    mask = np.zeros(len(score), dtype=bool)
    for i in np.flatnonzero(valid):
        others = valid.copy()
        others[i] = False
        no_worse = (score[others] >= score[i]) & (cost[others] <= cost[i])
        better = (score[others] > score[i]) | (cost[others] < cost[i])
        mask[i] = not np.any(no_worse & better)
    return mask


def load_results(run_dir: str | Path) -> pd.DataFrame:
    """Build the ranked results table of a finished or interrupted run.

    Rows are sorted best first by the objective; trials without a finite
    objective go last. Columns include ``status``, ``epochs``, metrics at the
    best epoch, ``rank``, ``pareto_energy``, ``pareto_spikes``, test scores
    when computed, ``reason`` and ``config/<key>`` for every config value.
    """
    run_dir = Path(run_dir)
    meta = read_sweep_meta(run_dir)
    rows = [_trial_row(d, meta) for d in _trial_dirs(run_dir)]
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    objective, mode = meta["objective"], meta["mode"]
    if objective not in table:
        table[objective] = np.nan
    table = _add_test_scores(table, run_dir)
    table = table.sort_values(
        objective, ascending=mode == "min", na_position="last", kind="stable"
    ).reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    values = pd.to_numeric(table[objective], errors="coerce").to_numpy(float)
    for column, flag in ((ENERGY, "pareto_energy"), (SPIKES, "pareto_spikes")):
        cost = (
            pd.to_numeric(table[column], errors="coerce").to_numpy(float)
            if column in table
            else np.full(len(table), np.nan)
        )
        table[flag] = pareto_mask(values, cost, mode)
    return table


def _add_test_scores(table: pd.DataFrame, run_dir: Path) -> pd.DataFrame:
    path = run_dir / TEST_FILE
    if not path.is_file():
        return table
    try:
        scores = json.loads(path.read_text())
    except (OSError, ValueError):
        scores = None
    if not isinstance(scores, dict):
        logger.warning("ignored %s: not a JSON object of test scores", path)
        return table
    for trial_id, metrics in scores.items():
        if not isinstance(metrics, dict):
            continue
        for key, value in metrics.items():
            column = f"test_{key}"
            if column not in table:
                table[column] = np.nan
            table.loc[table["trial_id"] == trial_id, column] = value
    return table


def save_results(table: pd.DataFrame, run_dir: str | Path) -> tuple[Path, Path]:
    """Write the table as ``results.csv`` and ``results.json`` atomically."""
    run_dir = Path(run_dir)
    csv_path, json_path = run_dir / "results.csv", run_dir / "results.json"
    atomic_write(csv_path, table.to_csv(index=False))
    atomic_write(json_path, table.to_json(orient="records", indent=2))
    return csv_path, json_path


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
