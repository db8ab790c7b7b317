"""Tests of the HTML sweep report on real tiny sweeps and synthetic run dirs."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from spiketune.report import FIGURE_FILES, write_report
from spiketune.report.data import TrialSpan, assign_slots, load_run, utilisation
from spiketune.report.importance import param_importances

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

BASE_SPACE = {
    "data.name": "digits",
    "data.n_steps": 8,
    "model.hidden": [16],
    "model.profile": "gen1",
    "optim.lr": {"loguniform": [1e-3, 2e-2]},
    "trainer.epochs": 3,
    "anneal.sign.enabled": True,
}


def raising_builder(model_cfg: dict) -> None:
    """Model builder that fails, so every trial of a sweep errors."""
    raise RuntimeError("builder failed on purpose for the all-failed report")


def _run_sweep(storage: Path, name: str, num_samples: int, **kwargs) -> Path:
    from spiketune.tuning import SpikeTuner

    options = {"max_concurrent": 2, "scheduler_params": {"grace_period": 1}}
    options.update(kwargs)
    tuner = SpikeTuner(
        BASE_SPACE, num_samples=num_samples, storage_path=storage, name=name, **options
    )
    return tuner.fit().run_dir


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray")
    started_here = not ray.is_initialized()
    if started_here:
        # address="local" starts a private cluster even when another process
        # on this machine already runs one, which plain ray.init() would join.
        ray.init(
            address="local",
            num_cpus=2,
            include_dashboard=False,
            configure_logging=False,
            log_to_driver=False,
        )
    yield
    if started_here:
        ray.shutdown()


@pytest.fixture(scope="module")
def real_run(ray_session, tmp_path_factory) -> Path:
    # FIFO lets all three trials finish, so parameter importance (three
    # finished trials at least) and every figure are drawn. Trials stopped
    # by ASHA are covered by the synthetic runs.
    return _run_sweep(
        tmp_path_factory.mktemp("real"),
        "r",
        num_samples=3,
        scheduler="fifo",
        scheduler_params={},
    )


@pytest.fixture(scope="module")
def real_report(real_run) -> Path:
    return write_report(real_run)


def _open_in_chromium(index: Path, screenshot: Path, profile: Path) -> str:
    """Load the page headless, save a screenshot and return Chromium's stderr."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        "--hide-scrollbars",
        f"--screenshot={screenshot}",
        "--window-size=1280,2000",
        index.resolve().as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stderr


def _console_lines(stderr: str) -> list[str]:
    # The page itself logs nothing, so any console message or uncaught
    # exception, including "figure failed to load", is a failure.
    return [
        line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line
    ]


def _check_in_browser(index: Path, tmp_path: Path) -> Path:
    screenshot = tmp_path / "screenshot.png"
    stderr = _open_in_chromium(index, screenshot, tmp_path / "chromium-profile")
    assert _console_lines(stderr) == []
    assert screenshot.is_file()
    assert screenshot.read_bytes()[:8] == PNG_MAGIC
    assert screenshot.stat().st_size > 10_000
    return screenshot


# -- synthetic run directories ------------------------------------------------


def _write_synthetic_run(
    run_dir: Path, n_trials: int, seed: int = 0, max_epochs: int = 8
) -> Path:
    """Write a finished run dir in Ray Tune's layout, without running Ray.

    About half the trials stop early, a few diverge or raise, and eight
    workers run the trials one after another.
    """
    rng = np.random.default_rng(seed)
    run_dir.mkdir(parents=True)
    space = {
        "data.name": "digits",
        "model.profile": "gen1",
        "model.tau": "<ray.tune.search.sample.Categorical object at 0x0>",
        "optim.lr": "<ray.tune.search.sample.Float object at 0x0>",
        "model.slope": "<ray.tune.search.sample.Float object at 0x0>",
    }
    meta = {
        "name": run_dir.name,
        "objective": "val_accuracy",
        "mode": "max",
        "max_epochs": max_epochs,
        "searcher": "random",
        "scheduler": "asha",
        "num_samples": n_trials,
        "total_trials": n_trials,
        "cpus_per_trial": 1,
        "space": space,
        "state": "finished",
        "wall_time_s": 0.0,
    }
    config = {
        "data": {"name": "digits"},
        "model": {
            "profile": "gen1",
            "tau": {"choice": [0.008, 0.016, 0.032]},
            "slope": {"uniform": [2.0, 25.0]},
        },
        "optim": {"lr": {"loguniform": [1e-4, 1e-1]}},
    }
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    worker_clock = {pid: 1_800_000_000.0 for pid in range(100, 108)}
    for index in range(n_trials):
        trial_dir = run_dir / f"abcde_{index:05d}"
        trial_dir.mkdir()
        lr = float(10 ** rng.uniform(-4, -1))
        tau = float(rng.choice([0.008, 0.016, 0.032]))
        slope = float(rng.uniform(2.0, 25.0))
        params = {
            "data": {"name": "digits"},
            "model": {"profile": "gen1", "tau": tau, "slope": slope},
            "optim": {"lr": lr},
        }
        (trial_dir / "params.json").write_text(json.dumps(params))
        pid = min(worker_clock, key=worker_clock.get)
        kind = rng.choice(
            ["finished", "stopped", "diverged", "error"], p=[0.35, 0.5, 0.08, 0.07]
        )
        epochs = {
            "finished": max_epochs,
            "stopped": int(rng.integers(1, max_epochs)),
        }.get(kind, int(rng.integers(0, 3)))
        quality = 1.0 - abs(math.log10(lr) + 2.5) / 2.0
        reports = []
        clock, total = worker_clock[pid], 0.0
        for epoch in range(1, epochs + 1):
            step = float(rng.uniform(0.5, 2.0))
            clock += step
            total += step
            accuracy = max(
                0.05, quality * (1 - math.exp(-epoch / 3)) + rng.normal(0, 0.02)
            )
            spikes = float(rng.uniform(20, 200))
            last = epoch == epochs
            status = "running"
            if last and kind == "finished":
                status = "finished"
            if last and kind == "diverged":
                status = "diverged"
            reports.append(
                {
                    "epoch": epoch,
                    "val_accuracy": accuracy,
                    "val_loss": 2.3 * (1 - accuracy),
                    "train_loss": 2.3 * (1 - accuracy) + 0.05,
                    "val_spikes_per_sample": spikes,
                    "val_energy_per_sample_j": spikes * 1e-11 + 2e-8,
                    "val_spike_rate_hz_l0": spikes * 2,
                    "val_silent_fraction_l0": float(rng.uniform(0, 0.3)),
                    "val_spike_rate_hz_l1": spikes,
                    "val_silent_fraction_l1": float(rng.uniform(0, 0.3)),
                    "trial_status": status,
                    "diverged_reason": "loss is nan" if status == "diverged" else None,
                    "timestamp": int(clock),
                    "time_total_s": total,
                    "time_this_iter_s": step,
                    "pid": pid,
                    "hostname": "synthetic",
                    "seed": index,
                }
            )
        lines = "".join(json.dumps(r) + "\n" for r in reports)
        (trial_dir / "result.json").write_text(lines)
        if kind == "error":
            (trial_dir / "error.txt").write_text(
                "Traceback (most recent call last):\n  File ...\n"
                f"ValueError: synthetic failure in trial {index}\n"
            )
        worker_clock[pid] = clock + 0.2
    meta["wall_time_s"] = max(worker_clock.values()) - 1_800_000_000.0
    (run_dir / "sweep.json").write_text(json.dumps(meta))
    return run_dir


# -- real tiny sweep ----------------------------------------------------------


@pytest.mark.slow
def test_report_default_location(real_run, real_report):
    assert real_report == real_run / "report" / "index.html"
    assert real_report.is_file()


@pytest.mark.slow
def test_report_figures_are_png(real_report):
    for name in FIGURE_FILES.values():
        path = real_report.parent / name
        assert path.is_file(), f"{name} was not written"
        assert path.read_bytes()[:8] == PNG_MAGIC, f"{name} is not a PNG"
        assert path.stat().st_size > 5_000, f"{name} is nearly empty"


@pytest.mark.slow
def test_report_page_names_figures(real_report):
    page = real_report.read_text()
    for name in FIGURE_FILES.values():
        assert f'src="{name}"' in page


@pytest.mark.slow
def test_report_summary_fields(real_report):
    page = real_report.read_text()
    for text in ("digits", "gen1", "random", "fifo", "val_accuracy", "Test accuracy"):
        assert text in page, f"summary lacks {text!r}"
    assert "estimate" in page
    assert re.search(r"3 of 3 started: \d+ finished", page)


@pytest.mark.slow
def test_report_trial_table(real_run, real_report):
    page = real_report.read_text()
    table = page.split('id="trials"')[1].split("</table>")[0]
    assert table.count("<tr") == 1 + 3
    assert "optim.lr" in table
    assert 'class="front"' in table
    assert "table.sortable" in page


@pytest.mark.slow
def test_report_opens_in_chromium(real_report, tmp_path):
    _check_in_browser(real_report, tmp_path)


@pytest.mark.slow
def test_report_one_trial(ray_session, tmp_path):
    run_dir = _run_sweep(tmp_path, "one", num_samples=1)
    index = write_report(run_dir, out_dir=tmp_path / "out")
    assert index == tmp_path / "out" / "index.html"
    page = index.read_text()
    assert "Skipped: 1 finished trial(s)" in page
    assert (tmp_path / "out" / FIGURE_FILES["curves"]).is_file()
    assert not (tmp_path / "out" / FIGURE_FILES["importance"]).exists()
    _check_in_browser(index, tmp_path)


@pytest.mark.slow
def test_report_all_failed(ray_session, tmp_path):
    run_dir = _run_sweep(
        tmp_path, "failed", num_samples=2, model_builder=raising_builder
    )
    index = write_report(run_dir)
    page = index.read_text()
    failures = page.split("Errors and divergences")[1]
    assert failures.count("builder failed on purpose") == 2
    assert "none: no trial reported a finite val_accuracy" in page
    assert "Not drawn." in page
    _check_in_browser(index, tmp_path)


# -- synthetic edge cases ----------------------------------------------------


def test_report_many_trials(tmp_path):
    run_dir = _write_synthetic_run(tmp_path / "many", n_trials=300)
    started = time.perf_counter()
    index = write_report(run_dir)
    elapsed = time.perf_counter() - started
    assert elapsed < 60, f"report of 300 trials took {elapsed:.1f} s"
    size = sum(p.stat().st_size for p in index.parent.iterdir())
    assert size < 5_000_000, f"report folder is {size / 1e6:.1f} MB"
    page = index.read_text()
    table = page.split('id="trials"')[1].split("</table>")[0]
    assert table.count("<tr") == 1 + 300
    for name in FIGURE_FILES.values():
        assert (index.parent / name).is_file(), f"{name} was not written"
    assert "synthetic failure in trial" in page
    assert "loss is nan" in page
    _check_in_browser(index, tmp_path)


def test_report_synthetic_log_params(tmp_path):
    run = load_run(_write_synthetic_run(tmp_path / "run", n_trials=20))
    params = {p.key: p for p in run.params}
    assert set(params) == {"model.tau", "optim.lr", "model.slope"}
    assert params["optim.lr"].log
    assert not params["optim.lr"].log_inferred
    assert not params["model.slope"].log
    assert params["model.tau"].kind == "categorical"


def test_report_synthetic_slots(tmp_path):
    run = load_run(_write_synthetic_run(tmp_path / "run", n_trials=40))
    slots = {s.slot for s in run.spans}
    assert slots == set(range(8))
    for slot in slots:
        workers = {s.worker for s in run.spans if s.slot == slot}
        assert len(workers) == 1


def test_report_no_trials(tmp_path):
    run_dir = tmp_path / "empty"
    run_dir.mkdir()
    (run_dir / "sweep.json").write_text(
        json.dumps({"objective": "val_accuracy", "mode": "max", "state": "running"})
    )
    index = write_report(run_dir)
    page = index.read_text()
    assert "no trial folders yet" in page
    assert not any((index.parent / name).exists() for name in FIGURE_FILES.values())


def test_report_missing_sweep_json(tmp_path):
    with pytest.raises(FileNotFoundError, match="sweep.json"):
        write_report(tmp_path)


def test_report_removes_stale_figure(tmp_path):
    run_dir = tmp_path / "empty"
    run_dir.mkdir()
    (run_dir / "sweep.json").write_text(
        json.dumps({"objective": "val_accuracy", "mode": "max"})
    )
    stale = run_dir / "report" / FIGURE_FILES["pareto"]
    stale.parent.mkdir()
    stale.write_bytes(PNG_MAGIC)
    write_report(run_dir)
    assert not stale.exists()


def test_report_cli_out_dir(tmp_path, capsys):
    from spiketune.cli import main

    run_dir = _write_synthetic_run(tmp_path / "run", n_trials=12)
    out = tmp_path / "elsewhere"
    assert main(["report", str(run_dir), "--out", str(out)]) == 0
    assert (out / "index.html").is_file()
    assert str(out / "index.html") in capsys.readouterr().out


# -- units --------------------------------------------------------------------


def test_slots_same_worker_sequential():
    spans = [
        TrialSpan("a", 0.0, 5.0, "finished", "h:1"),
        TrialSpan("b", 0.5, 5.2, "finished", "h:2"),
        TrialSpan("c", 4.3, 5.0, "finished", "h:1"),
        TrialSpan("d", 5.2, 6.0, "finished", "h:2"),
    ]
    ordered = assign_slots(spans)
    by_id = {s.trial_id: s for s in ordered}
    assert by_id["c"].start == pytest.approx(5.0)
    assert by_id["c"].end == pytest.approx(5.7)
    assert by_id["a"].slot == by_id["c"].slot
    assert by_id["b"].slot == by_id["d"].slot
    assert by_id["a"].slot != by_id["b"].slot


def test_slots_without_worker():
    spans = [TrialSpan(str(i), float(i), float(i) + 2.5, "finished") for i in range(6)]
    ordered = assign_slots(spans, tolerance_s=0.0)
    assert max(s.slot for s in ordered) + 1 == 3


def test_utilisation_full_and_half():
    full = assign_slots(
        [TrialSpan("a", 0, 10, "finished"), TrialSpan("b", 0, 10, "finished")]
    )
    assert utilisation(full) == pytest.approx(1.0)
    half = assign_slots(
        [TrialSpan("a", 0, 10, "finished"), TrialSpan("b", 0, 5, "finished")]
    )
    assert utilisation(half) == pytest.approx(0.75)
    assert utilisation([]) is None


def test_importance_ranks_driving_param(tmp_path):
    run = load_run(_write_synthetic_run(tmp_path / "run", n_trials=120, seed=3))
    result = param_importances(run.table, run.params, run.objective, run.mode)
    assert result.values, result.note
    assert sum(result.values.values()) == pytest.approx(1.0)
    assert max(result.values, key=result.values.get) == "optim.lr"


def test_importance_skips_few_trials():
    table = pd.DataFrame(
        {
            "status": ["finished", "finished", "stopped_early"],
            "val_accuracy": [0.5, 0.6, 0.2],
            "config/optim.lr": [1e-3, 1e-2, 1e-4],
        }
    )
    from spiketune.report.data import TunedParam

    result = param_importances(
        table, [TunedParam("optim.lr", "float", log=True)], "val_accuracy", "max"
    )
    assert result.values == {}
    assert "needs at least 3" in result.note


def test_importance_skips_no_params():
    table = pd.DataFrame({"status": ["finished"] * 3, "val_accuracy": [0.1, 0.2, 0.3]})
    result = param_importances(table, [], "val_accuracy", "max")
    assert result.values == {}
    assert "no parameters" in result.note
