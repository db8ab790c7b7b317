"""Measure what a sweep framework costs on top of the training it runs.

Every trial does the same fixed training work: ``--steps`` Adam steps of a
64 - hidden - 10 LIF network on the spike-encoded digits task, with one torch
thread. The script runs sweeps of N such trials, two at a time, through:

* ``spiketune``: ``SpikeTuner`` with a ``train_fn`` doing the work, FIFO
  scheduler, ``cpus_per_trial=1``, ``max_concurrent=2``;
* ``ray`` and ``ray_reuse``: a hand-written Ray Tune function trainable
  (``tune.Tuner`` and ``tune.report``) without and with ``reuse_actors``;
* ``optuna``: ``study.optimize(n_jobs=2)``, two threads in the driver;
* ``pool``: a ``multiprocessing`` pool of two forked processes, the ceiling.

Each sweep runs in a fresh child process, so driver memory and start-up are
measured per sweep. Frameworks run in alternating rounds, with the order
rotated each round, and the tables report medians over rounds.

Each sweep yields its wall time, the ideal time (sum of the measured work / 2
workers), utilisation (ideal / wall) and overhead per trial
((wall - ideal) * 2 / N). It also yields the driver's peak RSS and the CPU
seconds spent outside the trials' processes: in the driver, and for Ray in its
GCS, raylet and agents.

Examples
--------
``python benchmarks/tuning_overhead.py --quick`` runs N = 8 and 16 with short
trials. ``python benchmarks/tuning_overhead.py`` runs N = 16, 64 and 256 with
trials of about 2 s. ``--profile`` adds a breakdown of spiketune's per-trial
cost.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

FRAMEWORKS = ("spiketune", "ray", "ray_reuse", "optuna", "pool")
WORKERS = 2


@dataclass(frozen=True)
class Workload:
    """The fixed training work of one trial."""

    steps: int
    hidden: int
    batch_size: int
    n_steps: int


# --------------------------------------------------------------------------
# Trial functions. Each records its timeline with common.append_record.


def _trial_record(t_enter: float, work_s: float, t_work_end: float) -> dict[str, Any]:
    import threading

    return {
        "pid": os.getpid(),
        "worker": f"{os.getpid()}-{threading.get_ident()}",
        "t_enter": t_enter,
        "t_work_start": t_work_end - work_s,
        "t_work_end": t_work_end,
        "work_s": work_s,
    }


def do_work(workload: Workload, seed: int) -> float:
    """Build the data (cached per process) and a model, then train it.

    Returns
    -------
    float
        Seconds spent in the training loop only.
    """
    task = common.digits_task(workload.n_steps)
    torch.manual_seed(seed)
    model = common.build_work_model(task.n_inputs, task.n_outputs, workload.hidden)
    return common.train_fixed_steps(
        model, task.train, workload.steps, workload.batch_size, seed
    )


class FixedWorkTrainFn:
    """spiketune ``train_fn``: train ``context.model`` for a fixed step count.

    ``context.model`` is the network :func:`common.build_work_model` builds,
    because the sweep binds ``model.hidden`` and leaves every other
    ``model.*`` key at its default.
    """

    def __init__(self, workload: Workload, timeline_dir: str) -> None:
        self.workload = workload
        self.timeline_dir = timeline_dir

    def __call__(self, context: Any) -> None:
        t_enter = time.time()
        work_s = common.train_fixed_steps(
            context.model,
            context.data.train,
            self.workload.steps,
            self.workload.batch_size,
            context.seed,
        )
        t_work_end = time.time()
        # The first report always improves on "no result", so spiketune
        # exports the model and writes a checkpoint, as in a real sweep.
        context.report({"val_accuracy": 0.0, "train_work_s": work_s})
        record = _trial_record(t_enter, work_s, t_work_end)
        record["t_exit"] = time.time()
        common.append_record(self.timeline_dir, record)


def ray_trial(config: dict[str, Any]) -> None:
    """Plain Ray Tune function trainable doing the fixed work once."""
    from ray import tune

    t_enter = time.time()
    torch.set_num_threads(1)
    work_s = do_work(Workload(**config["workload"]), seed=int(config["seed"]))
    t_work_end = time.time()
    tune.report({"work_s": work_s})
    record = _trial_record(t_enter, work_s, t_work_end)
    record["t_exit"] = time.time()
    common.append_record(config["timeline_dir"], record)


def _pool_trial(args: tuple[int, Workload, str]) -> float:
    index, workload, timeline_dir = args
    t_enter = time.time()
    work_s = do_work(workload, seed=index)
    t_work_end = time.time()
    record = _trial_record(t_enter, work_s, t_work_end)
    record["t_exit"] = time.time()
    common.append_record(timeline_dir, record)
    return work_s


def _pool_init() -> None:
    torch.set_num_threads(1)


# --------------------------------------------------------------------------
# Child process: one sweep of one framework.


def _ray_init_kwargs() -> dict[str, Any]:
    # The same settings SpikeTuner.connect uses, so plain Ray pays the
    # same runtime environment and logging set-up.
    pythonpath = os.pathsep.join(
        p for p in [os.getcwd(), *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
        if p
    )  # fmt: skip
    return {
        "num_cpus": os.cpu_count(),
        "_node_ip_address": "127.0.0.1",
        "include_dashboard": False,
        "configure_logging": False,
        "log_to_driver": False,
        "runtime_env": {"env_vars": {"PYTHONPATH": pythonpath}},
    }


def _run_spiketune(
    n_trials: int, workload: Workload, timeline_dir: str, storage: str
) -> tuple[Callable[[], Any], Callable[[], None]]:
    from spiketune.tuning import SpikeTuner

    space = {
        "data.name": "digits",
        "data.n_steps": workload.n_steps,
        "model.hidden": [workload.hidden],
        "trainer.epochs": 1,
        "trainer.batch_size": workload.batch_size,
        "optim.lr": {"loguniform": [1e-3, 1e-2]},
    }
    tuner = SpikeTuner(
        space,
        objective="val_accuracy",
        mode="max",
        num_samples=n_trials,
        searcher="random",
        scheduler="fifo",
        train_fn=FixedWorkTrainFn(workload, timeline_dir),
        cpus_per_trial=1,
        max_concurrent=WORKERS,
        storage_path=storage,
        name="overhead",
        seed=0,
        test_top_k=0,
        keep_checkpoints=1,
    )
    # Start Ray the way fit() would, but outside the timed region.
    return tuner.fit, tuner.connect


def _run_ray(
    n_trials: int, workload: Workload, timeline_dir: str, storage: str, reuse: bool
) -> tuple[Callable[[], Any], Callable[[], None]]:
    import ray
    from ray import tune

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    tuner = tune.Tuner(
        tune.with_resources(ray_trial, {"cpu": 1}),
        param_space={
            "workload": asdict(workload),
            "timeline_dir": timeline_dir,
            "seed": tune.randint(0, 2**31 - 1),
            "lr": tune.loguniform(1e-3, 1e-2),
        },
        tune_config=tune.TuneConfig(
            num_samples=n_trials, max_concurrent_trials=WORKERS, reuse_actors=reuse
        ),
        run_config=tune.RunConfig(storage_path=storage, name="overhead", verbose=0),
    )
    return tuner.fit, lambda: ray.init(**_ray_init_kwargs())


def _run_optuna(
    n_trials: int, workload: Workload, timeline_dir: str
) -> tuple[Callable[[], Any], Callable[[], None]]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)

    def objective(trial: Any) -> float:
        t_enter = time.time()
        trial.suggest_float("lr", 1e-3, 1e-2, log=True)
        work_s = do_work(workload, seed=trial.number)
        t_work_end = time.time()
        record = _trial_record(t_enter, work_s, t_work_end)
        record["t_exit"] = time.time()
        common.append_record(timeline_dir, record)
        return 0.0

    def fit() -> None:
        sampler = optuna.samplers.RandomSampler(seed=0)
        study = optuna.create_study(direction="maximize", sampler=sampler)
        study.optimize(objective, n_trials=n_trials, n_jobs=WORKERS)

    return fit, _import_data_modules


def _import_data_modules() -> None:
    # Import spiketune.data (and scikit-learn) before timing, as a Ray worker
    # does before its first trial starts. Ray pays this inside fit() instead.
    import spiketune.data  # noqa: F401


def _run_pool(
    n_trials: int, workload: Workload, timeline_dir: str
) -> tuple[Callable[[], Any], Callable[[], None]]:
    import multiprocessing

    def fit() -> None:
        # fork: the workers inherit the imported modules, as the cheapest
        # bare process can. The parent has run no torch operation yet.
        context = multiprocessing.get_context("fork")
        jobs = [(i, workload, timeline_dir) for i in range(n_trials)]
        with context.Pool(WORKERS, initializer=_pool_init) as pool:
            pool.map(_pool_trial, jobs, chunksize=1)

    return fit, _import_data_modules


def _cpu_seconds_outside_trials() -> float:
    """Return CPU seconds of this process's descendants that run no trial.

    For Ray these are the GCS server, raylet and agents. Worker processes
    (``default_worker.py``) are left out because they run the trials.
    """
    try:
        import psutil
    except ImportError:
        return float("nan")
    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            if _is_ray_worker(child.name(), " ".join(child.cmdline())):
                continue
            times = child.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def _is_ray_worker(name: str, cmdline: str) -> bool:
    # Ray workers rename themselves "ray::IDLE" or "ray::<Actor>.<method>";
    # the dashboard and runtime-env agents also start with "ray::" but end
    # in "Agent".
    if "default_worker.py" in cmdline:
        return True
    return name.startswith("ray::") and not name.endswith("Agent")


def _driver_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_child(
    framework: str, n_trials: int, workload: Workload, profile_path: str | None
) -> dict[str, Any]:
    """Run one sweep in this process and return its raw measurements."""
    with tempfile.TemporaryDirectory(prefix="tuning_overhead_") as tmp:
        timeline_dir = os.path.join(tmp, "timeline")
        storage = os.path.join(tmp, "runs")
        os.makedirs(timeline_dir)
        if framework == "spiketune":
            fit, start = _run_spiketune(n_trials, workload, timeline_dir, storage)
        elif framework in ("ray", "ray_reuse"):
            reuse = framework == "ray_reuse"
            fit, start = _run_ray(n_trials, workload, timeline_dir, storage, reuse)
        elif framework == "optuna":
            fit, start = _run_optuna(n_trials, workload, timeline_dir)
        elif framework == "pool":
            fit, start = _run_pool(n_trials, workload, timeline_dir)
        else:
            raise ValueError(f"unknown framework {framework!r}; use {FRAMEWORKS}")

        started = time.perf_counter()
        start()
        startup_s = time.perf_counter() - started
        system_cpu_start = _cpu_seconds_outside_trials()
        driver_cpu_start = _driver_cpu_seconds()
        profiler = cProfile.Profile() if profile_path else None
        with common.PeakMemory() as memory:
            t_start = time.time()
            started = time.perf_counter()
            if profiler is not None:
                profiler.enable()
            fit()
            if profiler is not None:
                profiler.disable()
            wall_s = time.perf_counter() - started
            t_end = time.time()
        driver_cpu_s = _driver_cpu_seconds() - driver_cpu_start
        system_cpu_s = _cpu_seconds_outside_trials() - system_cpu_start
        if profiler is not None and profile_path is not None:
            profiler.dump_stats(profile_path)
        trials = common.read_records(timeline_dir)
        extra = _spiketune_files(storage) if framework == "spiketune" else {}

    if framework in ("spiketune", "ray", "ray_reuse"):
        import ray

        ray.shutdown()
    return {
        "framework": framework,
        "n_trials": n_trials,
        "wall_s": wall_s,
        "startup_s": startup_s,
        "t_start": t_start,
        "t_end": t_end,
        "trials": trials,
        "driver_start_mib": memory.start_mib,
        "driver_peak_mib": memory.peak_mib,
        "driver_end_mib": memory.end_mib,
        "driver_cpu_s": driver_cpu_s,
        "system_cpu_s": system_cpu_s,
        "load": common.load_average(),
        **extra,
    }


def _spiketune_files(storage: str) -> dict[str, Any]:
    """Count the files and bytes a spiketune sweep left in its run folder."""
    files = [p for p in Path(storage).rglob("*") if p.is_file()]
    return {
        "run_files": len(files),
        "run_bytes": sum(p.stat().st_size for p in files),
        "checkpoint_dirs": len(list(Path(storage).rglob("checkpoint_*"))),
    }


# --------------------------------------------------------------------------
# Parent process: rounds of child sweeps, then summaries.


def measure(
    framework: str, n_trials: int, workload: Workload, profile_path: str | None = None
) -> dict[str, Any]:
    """Run one sweep in a fresh Python process and return its measurements."""
    env = dict(os.environ)
    benchmark_dir = str(common.BENCHMARK_DIR)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (benchmark_dir, env.get("PYTHONPATH", "")) if p
    )
    env.setdefault("OMP_NUM_THREADS", "1")
    # Without an address, ray.init attaches to any Ray instance already
    # running on the machine, and SpikeTuner's ray.init(num_cpus=...) then
    # fails. "local" always starts a private instance.
    env.setdefault("RAY_ADDRESS", "local")
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out_path = handle.name
    command = [
        sys.executable,
        __file__,
        "--child",
        framework,
        "--trials",
        str(n_trials),
        "--steps",
        str(workload.steps),
        "--hidden",
        str(workload.hidden),
        "--batch-size",
        str(workload.batch_size),
        "--n-steps",
        str(workload.n_steps),
        "--child-out",
        out_path,
    ]
    if profile_path:
        command += ["--child-profile", profile_path]
    try:
        completed = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=3600
        )
        if completed.returncode != 0:
            raise RuntimeError(
                f"{framework} sweep with N = {n_trials} failed "
                f"(exit {completed.returncode}):\n{completed.stderr[-3000:]}"
            )
        return json.loads(Path(out_path).read_text())
    finally:
        Path(out_path).unlink(missing_ok=True)


def summarise_sweep(record: dict[str, Any]) -> dict[str, float]:
    """Derive utilisation, overhead and per-trial gaps from one sweep."""
    trials = record["trials"]
    n = record["n_trials"]
    work = [t["work_s"] for t in trials]
    ideal_s = sum(work) / WORKERS
    wall_s = record["wall_s"]
    report_s = [t["t_exit"] - t["t_work_end"] for t in trials]
    first_s, gaps = _slot_gaps(trials, record["t_start"])
    last_end = max((t["t_exit"] for t in trials), default=record["t_end"])
    return {
        "wall_s": wall_s,
        "ideal_s": ideal_s,
        "utilisation": ideal_s / wall_s,
        "overhead_per_trial_s": (wall_s - ideal_s) * WORKERS / n,
        "work_median_s": common.median(work),
        "gap_median_s": common.median(gaps),
        "report_median_s": common.median(report_s),
        "first_start_s": common.median(first_s),
        "tail_s": record["t_end"] - last_end,
        "startup_s": record["startup_s"],
        "driver_peak_mib": record["driver_peak_mib"],
        "driver_growth_mib": record["driver_end_mib"] - record["driver_start_mib"],
        "driver_cpu_per_trial_s": record["driver_cpu_s"] / n,
        "system_cpu_per_trial_s": record["system_cpu_s"] / n,
        "trials_seen": len(trials),
    }


def _slot_gaps(
    trials: list[dict[str, Any]], t_start: float
) -> tuple[list[float], list[float]]:
    """Split idle time per worker slot into first starts and between-trial gaps.

    Trials are placed on ``WORKERS`` slots in start order: each goes to the
    slot whose last trial ended latest before it started. This works whether
    or not a framework reuses its processes.
    """
    slot_ends: list[float | None] = [None] * WORKERS
    first_s, gaps = [], []
    for trial in sorted(trials, key=lambda t: t["t_work_start"]):
        start = trial["t_work_start"]
        free = [i for i, end in enumerate(slot_ends) if end is None or end <= start]
        if not free:
            # Overlap from clock jitter: take the slot that ended first.
            free = [min(range(WORKERS), key=lambda i: slot_ends[i] or 0.0)]
        unused = [i for i in free if slot_ends[i] is None]
        if unused:
            slot = unused[0]
            first_s.append(start - t_start)
        else:
            slot = max(free, key=lambda i: slot_ends[i] or 0.0)
            gaps.append(start - (slot_ends[slot] or start))
        slot_ends[slot] = trial["t_work_end"]
    return first_s, gaps


def run_rounds(
    frameworks: list[str],
    sizes: list[int],
    rounds: int,
    workload: Workload,
) -> list[dict[str, Any]]:
    """Run every (framework, N) once per round, rotating the framework order."""
    records = []
    for round_index in range(rounds):
        for size in sizes:
            shift = (round_index + sizes.index(size)) % len(frameworks)
            order = frameworks[shift:] + frameworks[:shift]
            for framework in order:
                load = common.load_average()
                record = measure(framework, size, workload)
                record["round"] = round_index
                record["load_before"] = load
                record["summary"] = summarise_sweep(record)
                summary = record["summary"]
                print(
                    f"round {round_index} N={size:<4} {framework:<10} "
                    f"wall {summary['wall_s']:7.1f} s  "
                    f"util {summary['utilisation']:6.1%}  "
                    f"overhead {summary['overhead_per_trial_s']:6.3f} s/trial  "
                    f"load {load}",
                    flush=True,
                )
                records.append(record)
    return records


def median_table(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return one row per (framework, N) with the median over rounds."""
    keys = sorted({(r["framework"], r["n_trials"]) for r in records})
    order = {name: i for i, name in enumerate(FRAMEWORKS)}
    keys.sort(key=lambda key: (key[1], order.get(key[0], 99)))
    rows = []
    for framework, size in keys:
        matching = [
            r["summary"]
            for r in records
            if r["framework"] == framework and r["n_trials"] == size
        ]
        row: dict[str, Any] = {"framework": framework, "n_trials": size}
        for field in matching[0]:
            row[field] = common.median([m[field] for m in matching])
        row["rounds"] = len(matching)
        row["loads"] = [
            r.get("load_before", r["load"])
            for r in records
            if r["framework"] == framework and r["n_trials"] == size
        ]
        rows.append(row)
    return rows


def memory_slopes(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Return driver peak RSS growth per extra trial (KiB), largest vs smallest N.

    NOTE: RSS also moves with allocator behaviour and the sampling interval,
    so differences below about 1 MiB between the two sizes are noise.
    """
    slopes = {}
    for framework in FRAMEWORKS:
        points = sorted(
            (r["n_trials"], r["driver_peak_mib"])
            for r in rows
            if r["framework"] == framework
        )
        if len(points) < 2:
            continue
        (n_low, mib_low), (n_high, mib_high) = points[0], points[-1]
        slopes[framework] = (mib_high - mib_low) * 1024 / (n_high - n_low)
    return slopes


def print_table(rows: list[dict[str, Any]], slopes: dict[str, float]) -> None:
    """Print the median table and the memory growth per trial."""
    print(
        f"{'framework':<10} {'N':>4} {'wall s':>7} {'ideal s':>7} {'util':>6} "
        f"{'ovh s/trial':>11} {'work s':>6} {'first s':>7} {'gap s':>6} "
        f"{'start s':>7} {'peak MiB':>8} {'drv cpu':>7} {'sys cpu':>7}"
    )
    for row in rows:
        print(
            f"{row['framework']:<10} {row['n_trials']:>4} {row['wall_s']:>7.1f} "
            f"{row['ideal_s']:>7.1f} {row['utilisation']:>6.1%} "
            f"{row['overhead_per_trial_s']:>11.3f} {row['work_median_s']:>6.2f} "
            f"{row['first_start_s']:>7.1f} {row['gap_median_s']:>6.2f} "
            f"{row['startup_s']:>7.1f} "
            f"{row['driver_peak_mib']:>8.0f} "
            f"{row['driver_cpu_per_trial_s']:>7.3f} "
            f"{row['system_cpu_per_trial_s']:>7.3f}"
        )
    for framework, slope in slopes.items():
        print(f"driver peak RSS growth {framework}: {slope:.0f} KiB per trial")


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """Return the median table as a Markdown table."""
    lines = [
        "| framework | N | wall s | ideal s | utilisation | overhead s/trial "
        "| work s/trial "
        "| first trial s | gap s | set-up s | driver peak MiB "
        "| driver CPU s/trial | Ray system CPU s/trial | load (1/5/15 min) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['framework']} | {row['n_trials']} | {row['wall_s']:.1f} "
            f"| {row['ideal_s']:.1f} | {row['utilisation']:.0%} "
            f"| {row['overhead_per_trial_s']:.2f} | {row['work_median_s']:.2f} "
            f"| {row['first_start_s']:.1f} "
            f"| {row['gap_median_s']:.2f} "
            f"| {row['startup_s']:.1f} | {row['driver_peak_mib']:.0f} "
            f"| {row['driver_cpu_per_trial_s']:.3f} "
            f"| {row['system_cpu_per_trial_s']:.3f} "
            f"| {', '.join(row['loads'])} |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------
# spiketune breakdown


def _time_call(function: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return common.median(times)


def component_times(workload: Workload, n_results: int) -> dict[str, float]:
    """Time spiketune's per-trial steps in this process, outside Ray.

    Returns median seconds of: ``build_trial`` with the data cache warm and
    cold, ``context.report`` of an improved result (export plus checkpoint
    write, with a reporter that does nothing), ``export_model`` alone, and
    ``load_results`` plus ``save_results`` of a run folder with
    ``n_results`` trial folders.
    """
    from spiketune.data.task import _build_digits_cached
    from spiketune.tuning.context import TrialSettings
    from spiketune.tuning.results import load_results, save_results
    from spiketune.tuning.trial import build_trial

    torch.set_num_threads(1)
    config = {
        "data": {"name": "digits", "n_steps": workload.n_steps},
        "model": {"hidden": [workload.hidden]},
        "trainer": {"epochs": 1, "batch_size": workload.batch_size},
    }
    settings = TrialSettings(threads=1)
    times: dict[str, float] = {}

    def cold_build() -> None:
        _build_digits_cached.cache_clear()
        build_trial(config, settings)

    times["build_trial_cold_s"] = _time_call(cold_build, 3)
    times["build_trial_warm_s"] = _time_call(lambda: build_trial(config, settings), 5)

    context = build_trial(config, settings)
    times["export_model_s"] = _time_call(context.export_model, 5)

    def improved_report() -> None:
        context.best = None
        context.report({"val_accuracy": 0.0})

    times["report_with_checkpoint_s"] = _time_call(improved_report, 5)

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = _fake_run_dir(Path(tmp), n_results)
        times["load_results_s"] = _time_call(lambda: load_results(run_dir), 3)
        table = load_results(run_dir)
        times["save_results_s"] = _time_call(lambda: save_results(table, run_dir), 3)
    times["n_results"] = n_results
    return times


def _fake_run_dir(root: Path, n_trials: int) -> Path:
    """Write a run folder shaped like a finished one-report-per-trial sweep."""
    run_dir = root / "run"
    run_dir.mkdir()
    (run_dir / "sweep.json").write_text(
        json.dumps(
            {
                "objective": "val_accuracy",
                "mode": "max",
                "max_epochs": 1,
                "state": "finished",
            }
        )  # fmt: skip
    )
    for i in range(n_trials):
        trial = run_dir / f"trial_{i:05d}"
        (trial / "checkpoint_000000").mkdir(parents=True)
        (trial / "params.json").write_text(
            json.dumps({"optim": {"lr": 1e-3}, "model": {"hidden": [64]}})
        )
        result = {
            "val_accuracy": 0.5,
            "train_work_s": 2.0,
            "epoch": 1,
            "trial_status": "finished",
            "time_total_s": 2.1,
            "seed": i,
        }
        (trial / "result.json").write_text(json.dumps(result) + "\n")
    return run_dir


def driver_profile_buckets(profile_path: str, top: int = 12) -> list[tuple]:
    """Return the driver functions with the most cumulative time in a profile.

    Each item is ``(cumulative seconds, own seconds, calls, "file:line(name)")``.
    """
    stats = pstats.Stats(profile_path)
    rows = []
    for (filename, line, name), (_, calls, own, cumulative, _) in (
        stats.stats.items()  # type: ignore[attr-defined]
    ):
        short = "/".join(Path(filename).parts[-3:])
        rows.append((cumulative, own, calls, f"{short}:{line}({name})"))
    rows.sort(reverse=True)
    return rows[:top]


def profile_spiketune(workload: Workload, n_trials: int) -> dict[str, Any]:
    """Profile one spiketune sweep's driver and time its per-trial steps."""
    with tempfile.TemporaryDirectory() as tmp:
        profile_path = os.path.join(tmp, "driver.prof")
        record = measure("spiketune", n_trials, workload, profile_path=profile_path)
        stats = pstats.Stats(profile_path)
        buckets = _driver_buckets(stats)
        top = driver_profile_buckets(profile_path)
    return {
        "sweep": summarise_sweep(record),
        "driver_buckets_s": buckets,
        "driver_top": top,
        "components": component_times(workload, n_trials),
    }


# Substrings of driver functions whose cumulative time the breakdown reports.
DRIVER_BUCKETS = {
    "Tuner.fit (whole sweep)": "tuner.py:",
    "experiment state snapshot": "(save_to_dir)",
    "experiment state sync": "(sync_up_experiment_state)",
    "trial result processing": "_on_training_result",
    "result logging callbacks": "logger/",
    "checkpoint registration": "_on_saving_result",
    "spiketune load_results": "results.py",
    "sleep/wait in event loop": "ray._raylet",
}


def _driver_buckets(stats: pstats.Stats) -> dict[str, float]:
    """Return the largest cumulative time of a function per named bucket."""
    buckets: dict[str, float] = {}
    for (filename, line, name), (_, _, _, cumulative, _) in (
        stats.stats.items()  # type: ignore[attr-defined]
    ):
        where = f"{filename}:{line}({name})"
        for label, needle in DRIVER_BUCKETS.items():
            if needle in where:
                buckets[label] = max(buckets.get(label, 0.0), cumulative)
    return buckets


# --------------------------------------------------------------------------
# Command line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="N = 8 and 16, 1 round, shorter trials"
    )
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=None, help="sweep sizes N"
    )
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds")
    parser.add_argument(
        "--frameworks",
        nargs="+",
        choices=FRAMEWORKS,
        default=list(FRAMEWORKS),
        help="frameworks to time",
    )
    parser.add_argument(
        "--steps", type=int, default=None, help="optimizer steps per trial"
    )
    parser.add_argument("--hidden", type=int, default=128, help="hidden LIF neurons")
    parser.add_argument("--batch-size", type=int, default=64, help="samples per step")
    parser.add_argument(
        "--n-steps", type=int, default=15, help="time steps of the digits encoding"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also profile one spiketune sweep and time its per-trial steps",
    )
    parser.add_argument("--json", default=None, help="write all figures to this file")
    # Internal: run one sweep in this process.
    parser.add_argument("--child", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    parser.add_argument("--trials", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    parser.add_argument("--child-profile", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    steps = args.steps or (400 if args.quick else 800)
    workload = Workload(steps, args.hidden, args.batch_size, args.n_steps)
    if args.child:
        record = run_child(args.child, args.trials, workload, args.child_profile)
        Path(args.child_out).write_text(json.dumps(record))
        return record

    sizes = args.sizes or ([8, 16] if args.quick else [16, 64, 256])
    rounds = args.rounds or (1 if args.quick else 3)
    machine = common.describe_machine()
    print(", ".join(f"{k}={v}" for k, v in machine.items()), flush=True)
    print(f"workload: {workload}", flush=True)
    started = time.perf_counter()
    records = run_rounds(list(args.frameworks), sizes, rounds, workload)
    rows = median_table(records)
    slopes = memory_slopes(rows)
    print_table(rows, slopes)
    output: dict[str, Any] = {
        "machine": machine,
        "workload": asdict(workload),
        "sizes": sizes,
        "rounds": rounds,
        "rows": rows,
        "memory_growth_kib_per_trial": slopes,
        "records": [{k: v for k, v in r.items() if k != "trials"} for r in records],
    }
    if args.profile:
        output["profile"] = profile_spiketune(workload, max(sizes))
        _print_profile(output["profile"])
    output["duration_s"] = time.perf_counter() - started
    if args.json:
        Path(args.json).write_text(json.dumps(output, indent=2, default=str))
    return output


def _print_profile(profile: dict[str, Any]) -> None:
    print("spiketune per-trial steps, median s:")
    for key, value in profile["components"].items():
        print(f"  {key}: {value:.4f}")
    print("spiketune driver, cumulative s per bucket:")
    for key, value in profile["driver_buckets_s"].items():
        print(f"  {key}: {value:.2f}")
    print("spiketune driver, top functions by cumulative s:")
    for cumulative, own, calls, where in profile["driver_top"]:
        print(f"  {cumulative:8.2f} {own:8.2f} {calls:>7} {where}")


if __name__ == "__main__":
    main()
