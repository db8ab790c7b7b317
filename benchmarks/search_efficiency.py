"""Compare how many training epochs each search method needs on the digits task.

The task is a smaller version of the hardware-aware sweep in
``spiketune/configs/demo.yaml``: gen1 chip profile, sign annealing, 15 time
steps, 12 epochs per trial. Four methods search the same hyperparameters:

* ``grid``: a full grid over learning rate, membrane time constant and hidden
  size, with the surrogate slope and weight scale fixed at mid-range values;
* ``random``: random search with the FIFO scheduler, every trial trains all
  epochs, as many trials as the grid;
* ``random_asha``: random search with ASHA early stopping;
* ``tpe_asha``: Optuna's TPE sampler with ASHA early stopping.

Every method runs once per seed in one Ray session, with the method order
rotated per seed. For each sweep the script orders trials by completion
(the modification time of their ``result.json``) and tracks the best
validation accuracy against the cumulative sum of the ``epochs`` column. The
figure shows the median over seeds with a band from the lowest to the highest
seed.

Examples
--------
``python benchmarks/search_efficiency.py --quick`` runs 2 seeds with small
budgets. ``python benchmarks/search_efficiency.py`` runs 5 seeds.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

METHODS = ("grid", "random", "random_asha", "tpe_asha")
# Okabe-Ito orange, sky blue, bluish green and vermillion; its yellow is too
# pale for thin lines on white.
COLOURS = {
    "grid": common.OKABE_ITO[0],
    "random": common.OKABE_ITO[1],
    "random_asha": common.OKABE_ITO[2],
    "tpe_asha": common.OKABE_ITO[5],
}
LABELS = {
    "grid": "grid",
    "random": "random",
    "random_asha": "random + ASHA",
    "tpe_asha": "TPE + ASHA",
}
OBJECTIVE = "val_accuracy"
# Within this many accuracy points (fraction) of the grid's best counts as
# reaching it, and this fraction of the grid's epochs is the target budget.
TOLERANCE = 0.01
BUDGET_FRACTION = 0.30

FIXED = {
    "data.name": "digits",
    "data.encoder": "rate",
    "data.dt": 0.001,
    "data.gain": 0.5,
    "model.arch": "feedforward",
    "model.profile": "gen1",
    "model.spike_grad": "fast_sigmoid",
    "loss.task": "ce_count",
    "loss.regularisers.firing_rate.weight": 0.1,
    "loss.regularisers.firing_rate.offsets": 0.05,
    "loss.regularisers.weight_magnitude.weight": 1.0,
    "loss.regularisers.topology.weight": 0.01,
    "optim.name": "adam",
    "sched.name": "cosine",
    "anneal.sign.enabled": True,
    "anneal.sign.alpha_start": 0.5,
    "anneal.sign.alpha_end": 20.0,
    "anneal.sign.shape": "exponential",
    "trainer.batch_size": 64,
}


@dataclass(frozen=True)
class Budget:
    """Trial counts and grid values of one benchmark size."""

    seeds: tuple[int, ...]
    lr_grid: tuple[float, ...]
    tau_grid: tuple[float, ...]
    hidden_grid: tuple[int, ...]
    asha_samples: int
    epochs: int = 12
    n_steps: int = 15
    grace_period: int = 1
    reduction_factor: int = 3

    @property
    def grid_size(self) -> int:
        return len(self.lr_grid) * len(self.tau_grid) * len(self.hidden_grid)


FULL = Budget(
    seeds=(0, 1, 2, 3, 4),
    lr_grid=(0.002, 0.004, 0.008, 0.016),
    tau_grid=(0.008, 0.016, 0.032),
    hidden_grid=(32, 64),
    asha_samples=32,
)
QUICK = Budget(
    seeds=(0, 1),
    lr_grid=(0.003, 0.008, 0.02),
    tau_grid=(0.008, 0.032),
    hidden_grid=(32, 64),
    asha_samples=16,
)


def method_space(method: str, budget: Budget) -> dict[str, Any]:
    """Return the search space of one method.

    The grid fixes the surrogate slope and weight scale at mid-range values.
    The other methods sample them too, from the ranges in ``demo.yaml``.
    """
    if method == "grid":
        searched = {
            "optim.lr": {"grid": list(budget.lr_grid)},
            "model.tau": {"grid": list(budget.tau_grid)},
            "model.hidden": {"grid": [[h] for h in budget.hidden_grid]},
            "model.slope": 8.0,
            "model.weight_scale": 1.5,
        }
    else:
        searched = {
            "optim.lr": {"loguniform": [min(budget.lr_grid), max(budget.lr_grid)]},
            "model.tau": {"choice": list(budget.tau_grid)},
            "model.hidden": {"choice": [[h] for h in budget.hidden_grid]},
            "model.slope": {"loguniform": [2.0, 25.0]},
            "model.weight_scale": {"uniform": [0.8, 2.5]},
        }
    sizes = {"data.n_steps": budget.n_steps, "trainer.epochs": budget.epochs}
    return {**FIXED, **sizes, **searched}


def method_options(method: str, budget: Budget) -> dict[str, Any]:
    """Return the SpikeTuner searcher, scheduler and sample count of a method."""
    asha = {
        "scheduler": "asha",
        "scheduler_params": {
            "grace_period": budget.grace_period,
            "reduction_factor": budget.reduction_factor,
        },
        "num_samples": budget.asha_samples,
    }
    if method == "grid":
        return {"searcher": "grid", "scheduler": "fifo", "num_samples": 1}
    if method == "random":
        return {
            "searcher": "random",
            "scheduler": "fifo",
            "num_samples": budget.grid_size,
        }
    if method == "random_asha":
        return {"searcher": "random", **asha}
    if method == "tpe_asha":
        return {"searcher": "tpe", **asha}
    raise ValueError(f"unknown method {method!r}; valid methods are {METHODS}")


def completion_curve(run_dir: Path, table: Any) -> list[dict[str, float]]:
    """Return trials in completion order with cumulative epochs and best so far.

    A trial's completion time is the modification time of its
    ``result.json``, which Ray Tune appends to after every report.
    """
    trials = []
    for row in table.itertuples():
        result_file = run_dir / row.trial_id / "result.json"
        finished_at = result_file.stat().st_mtime if result_file.is_file() else 0.0
        value = getattr(row, OBJECTIVE)
        trials.append((finished_at, int(row.epochs), float(value)))
    trials.sort()
    curve, epochs, best = [], 0, float("nan")
    for finished_at, trial_epochs, value in trials:
        epochs += trial_epochs
        if np.isfinite(value) and not value <= best:
            best = value
        curve.append({"t": finished_at, "epochs": epochs, "best": best})
    return curve


def run_sweep(method: str, seed: int, budget: Budget, storage: str) -> dict[str, Any]:
    """Run one method with one seed and return its curve and totals."""
    from spiketune.tuning import SpikeTuner

    tuner = SpikeTuner(
        method_space(method, budget),
        objective=OBJECTIVE,
        mode="max",
        cpus_per_trial=1,
        max_concurrent=2,
        storage_path=storage,
        name=f"{method}-seed{seed}",
        seed=seed,
        test_top_k=0,
        keep_checkpoints=1,
        **method_options(method, budget),
    )
    load = common.load_average()
    started = time.perf_counter()
    result = tuner.fit()
    wall_s = time.perf_counter() - started
    table = result.table
    curve = completion_curve(result.run_dir, table)
    failed = int(table["status"].isin(["error", "diverged"]).sum())
    return {
        "method": method,
        "seed": seed,
        "trials": len(table),
        "failed": failed,
        "total_epochs": int(table["epochs"].sum()),
        "best": float(table[OBJECTIVE].max()),
        "wall_s": wall_s,
        "load": load,
        "curve": curve,
    }


def epochs_to_reach(curve: list[dict[str, float]], target: float) -> float:
    """Return the cumulative epochs at which the best first reaches ``target``."""
    for point in curve:
        if point["best"] >= target:
            return point["epochs"]
    return float("inf")


def summarise(sweeps: list[dict[str, Any]]) -> dict[str, Any]:
    """Compare every method with the grid of the same seed.

    Returns per method the median, lowest and highest best accuracy and total
    epochs over seeds, and per seed the epochs needed to come within
    ``TOLERANCE`` of that seed's grid best, as a fraction of the grid's epochs.
    """
    grid = {s["seed"]: s for s in sweeps if s["method"] == "grid"}
    summary: dict[str, Any] = {}
    for method in METHODS:
        runs = [s for s in sweeps if s["method"] == method]
        if not runs:
            continue
        fractions, budget_bests = [], []
        for run in runs:
            reference = grid.get(run["seed"])
            if reference is None:
                continue
            target = reference["best"] - TOLERANCE
            fractions.append(
                epochs_to_reach(run["curve"], target) / reference["total_epochs"]
            )
            allowed = BUDGET_FRACTION * reference["total_epochs"]
            within = [p["best"] for p in run["curve"] if p["epochs"] <= allowed]
            budget_bests.append(max(within) if within else float("nan"))
        bests = [r["best"] for r in runs]
        epochs = [r["total_epochs"] for r in runs]
        summary[method] = {
            "seeds": len(runs),
            "best_median": common.median(bests),
            "best_min": min(bests),
            "best_max": max(bests),
            "epochs_median": common.median(epochs),
            "epochs_min": min(epochs),
            "epochs_max": max(epochs),
            "wall_median_s": common.median([r["wall_s"] for r in runs]),
            "failed_trials": sum(r["failed"] for r in runs),
            "fraction_to_grid_best": fractions,
            "best_within_budget": budget_bests,
        }
    return summary


def target_verdict(summary: dict[str, Any]) -> str:
    """State whether TPE+ASHA came within 1 point of the grid in 30 % of its epochs.

    The target counts as met when the median over seeds of the epoch fraction
    is at most ``BUDGET_FRACTION``.
    """
    if "tpe_asha" not in summary or "grid" not in summary:
        return "target not evaluated: TPE+ASHA or grid missing"
    fractions = summary["tpe_asha"]["fraction_to_grid_best"]
    median_fraction = common.median(fractions) if fractions else float("inf")
    met = median_fraction <= BUDGET_FRACTION
    per_seed = ", ".join(
        "never" if not np.isfinite(f) else f"{f:.0%}" for f in fractions
    )
    return (
        f"TPE+ASHA within {TOLERANCE * 100:.0f} point of the grid's best using at "
        f"most {BUDGET_FRACTION:.0%} of the grid's epochs: "
        f"{'met' if met else 'missed'} (median {median_fraction:.0%} of the grid's "
        f"epochs; per seed: {per_seed})"
    )


def plot(sweeps: list[dict[str, Any]], path: Path) -> None:
    """Plot best-so-far validation accuracy against cumulative epochs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.2), constrained_layout=True)
    max_epochs = max(p["epochs"] for s in sweeps for p in s["curve"])
    x = np.arange(0, max_epochs + 1)
    for method in METHODS:
        runs = [s for s in sweeps if s["method"] == method]
        if not runs:
            continue
        curves = np.vstack([_step_curve(r["curve"], x) for r in runs])
        # A seed that used fewer epochs keeps its final best up to the
        # method's largest total, so the median does not jump when it ends.
        end = max(r["total_epochs"] for r in runs)
        visible = x <= end
        with warnings.catch_warnings():
            # Epochs before any seed's first trial ends are all NaN.
            warnings.simplefilter("ignore", RuntimeWarning)
            middle = np.nanmedian(curves, axis=0)
            low = np.nanmin(curves, axis=0)
            high = np.nanmax(curves, axis=0)
        colour = COLOURS[method]
        axes.plot(x[visible], middle[visible], color=colour, label=LABELS[method])
        axes.fill_between(
            x[visible], low[visible], high[visible], color=colour, alpha=0.2, lw=0
        )
    grid_runs = [s for s in sweeps if s["method"] == "grid"]
    if grid_runs:
        grid_epochs = common.median([s["total_epochs"] for s in grid_runs])
        axes.axvline(
            BUDGET_FRACTION * grid_epochs, color="0.4", ls="--", lw=1,
            label=f"{BUDGET_FRACTION:.0%} of grid epochs",
        )  # fmt: skip
    axes.set_xlabel("cumulative training epochs (trials in completion order)")
    axes.set_ylabel("best validation accuracy so far")
    axes.set_title("Digits, gen1 profile with sign annealing")
    axes.legend(loc="lower right", frameon=False)
    axes.grid(alpha=0.3)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _step_curve(curve: list[dict[str, float]], x: np.ndarray) -> np.ndarray:
    """Sample a best-so-far curve at epochs ``x``.

    Values are NaN before the first trial ends and the final best after the
    sweep's last epoch.
    """
    values = np.full(len(x), np.nan)
    for point, following in zip(curve, [*curve[1:], None], strict=True):
        stop = following["epochs"] if following else x[-1] + 1
        values[(x >= point["epochs"]) & (x < stop)] = point["best"]
    return values


def markdown_table(summary: dict[str, Any]) -> str:
    """Return the per-method summary as a Markdown table."""
    lines = [
        "| method | seeds | best val acc, median (min-max) | epochs, median "
        "(min-max) | epochs to grid best - 1 pt, % of grid | best within 30 % "
        "of grid epochs | wall s (median) |",
        "|---|---|---|---|---|---|---|",
    ]
    for method, row in summary.items():
        fractions = ", ".join(
            "never" if not np.isfinite(f) else f"{f:.0%}"
            for f in row["fraction_to_grid_best"]
        )
        budget = ", ".join(
            "none ended" if not np.isfinite(b) else f"{b:.3f}"
            for b in row["best_within_budget"]
        )
        lines.append(
            f"| {LABELS[method]} | {row['seeds']} | {row['best_median']:.3f} "
            f"({row['best_min']:.3f}-{row['best_max']:.3f}) "
            f"| {row['epochs_median']:.0f} ({row['epochs_min']}-{row['epochs_max']}) "
            f"| {fractions} | {budget} | {row['wall_median_s']:.0f} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="2 seeds, 12-point grid, 16 ASHA trials"
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=None, help="sweep seeds to run"
    )
    parser.add_argument(
        "--methods", nargs="+", choices=METHODS, default=list(METHODS),
        help="methods to compare",
    )  # fmt: skip
    parser.add_argument("--epochs", type=int, help="epochs of a full trial")
    parser.add_argument("--n-steps", type=int, help="time steps of the encoding")
    parser.add_argument("--asha-samples", type=int, help="trials of ASHA methods")
    parser.add_argument("--lr-grid", type=float, nargs="+", help="grid learning rates")
    parser.add_argument(
        "--tau-grid", type=float, nargs="+", help="grid membrane time constants (s)"
    )
    parser.add_argument(
        "--hidden-grid", type=int, nargs="+", help="grid hidden layer sizes"
    )
    parser.add_argument(
        "--figure",
        default=str(common.BENCHMARK_DIR / "search_efficiency.png"),
        help="path of the PNG figure",
    )
    parser.add_argument("--json", default=None, help="write all figures to this file")
    return parser.parse_args(argv)


def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Hidden sizes are lists such as [32]; Optuna warns that its persistent
    # storage cannot hold them, but the sweep keeps the study in memory.
    warnings.filterwarnings("ignore", message="Choices for a categorical distribution")


def _override(budget: Budget, args: argparse.Namespace) -> Budget:
    """Return ``budget`` with the sizes given on the command line."""
    values = asdict(budget)
    for key in ("seeds", "lr_grid", "tau_grid", "hidden_grid"):
        if getattr(args, key):
            values[key] = tuple(getattr(args, key))
    for key in ("epochs", "n_steps", "asha_samples"):
        if getattr(args, key):
            values[key] = getattr(args, key)
    return Budget(**values)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    budget = QUICK if args.quick else FULL
    budget = _override(budget, args)
    logging.getLogger("ray").setLevel(logging.ERROR)
    _quiet_optuna()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # Start a private Ray instance even if another one runs on this machine;
    # without an address ray.init would attach to it.
    os.environ.setdefault("RAY_ADDRESS", "local")
    machine = common.describe_machine()
    print(", ".join(f"{k}={v}" for k, v in machine.items()), flush=True)
    print(f"budget: {budget}", flush=True)

    started = time.perf_counter()
    sweeps = []
    methods = list(args.methods)
    with tempfile.TemporaryDirectory(prefix="search_efficiency_") as storage:
        for index, seed in enumerate(budget.seeds):
            shift = index % len(methods)
            for method in methods[shift:] + methods[:shift]:
                sweep = run_sweep(method, seed, budget, storage)
                sweeps.append(sweep)
                print(
                    f"seed {seed} {method:<12} trials {sweep['trials']:>3} "
                    f"epochs {sweep['total_epochs']:>4} best {sweep['best']:.3f} "
                    f"wall {sweep['wall_s']:.0f} s load {sweep['load']}",
                    flush=True,
                )
    summary = summarise(sweeps)
    verdict = target_verdict(summary)
    print(markdown_table(summary))
    print(verdict)
    plot(sweeps, Path(args.figure))
    output = {
        "machine": machine,
        "budget": asdict(budget),
        "summary": summary,
        "verdict": verdict,
        "sweeps": sweeps,
        "duration_s": time.perf_counter() - started,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(output, indent=2, default=str))
    return output


if __name__ == "__main__":
    main()
