import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
import sweep_models

from spiketune.hardware import check_fit
from spiketune.tuning import SpikeTuner, SweepResult, load_model, load_results

pytestmark = pytest.mark.slow

TINY = {
    "data.name": "digits",
    "data.n_steps": 6,
    "model.hidden": [16],
    "trainer.batch_size": 128,
}


@pytest.fixture(autouse=True)
def _ray_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def _tuner(tmp_path, space, **kwargs):
    options = {
        "storage_path": tmp_path,
        "name": "sweep",
        "max_concurrent": 2,
        "test_top_k": 1,
    }
    options.update(kwargs)
    return SpikeTuner({**TINY, **space}, **options)


def test_asha_stops_some_trials(tmp_path):
    tuner = _tuner(
        tmp_path,
        {"optim.lr": {"loguniform": [1e-4, 3e-2]}, "trainer.epochs": 4},
        num_samples=6,
        scheduler_params={"grace_period": 1, "reduction_factor": 3},
    )
    result = tuner.fit()
    table = result.table
    assert len(table) == 6
    assert (table["status"] == "stopped_early").sum() >= 1
    assert (table["status"] == "finished").sum() >= 1
    assert table["epochs"].min() < 4


def test_best_checkpoint_reloads(tmp_path):
    tuner = _tuner(
        tmp_path,
        {
            "model.profile": "gen1",
            "anneal.sign.enabled": True,
            "optim.lr": 0.01,
            "trainer.epochs": 3,
        },
        num_samples=1,
        scheduler="fifo",
    )
    result = tuner.fit()
    best = result.best
    model = load_model(best["checkpoint"])
    # The checkpoint contains the hardened export, so it fits the chip.
    assert check_fit(model, "gen1") == []
    spec = json.loads((Path(best["checkpoint"]) / "spec.json").read_text())
    assert spec["metrics"]["val_accuracy"] == pytest.approx(best["val_accuracy"])
    assert 0.0 <= best["test_accuracy"] <= 1.0


def test_error_and_divergence_do_not_stop_sweep(tmp_path):
    tuner = _tuner(
        tmp_path,
        {
            "model.fault": {"grid": ["none", "raise", "nan"]},
            # A membrane read-out passes NaN weights on to a NaN loss.
            "model.readout": "membrane",
            "loss.task": "ce_mem",
            "trainer.epochs": 2,
        },
        num_samples=1,
        scheduler="fifo",
        model_builder=sweep_models.flaky_builder,
    )
    result = tuner.fit()
    status = dict(
        zip(result.table["config/model.fault"], result.table["status"], strict=True)
    )
    assert status == {"none": "finished", "raise": "error", "nan": "diverged"}
    assert not result.all_failed
    reasons = result.failure_summary()
    assert "builder failed on purpose" in reasons
    assert "loss became nan" in reasons


def test_all_failed_flag(tmp_path):
    tuner = _tuner(
        tmp_path,
        {"model.fault": "raise", "trainer.epochs": 1},
        num_samples=2,
        scheduler="fifo",
        model_builder=sweep_models.flaky_builder,
    )
    result = tuner.fit()
    assert result.all_failed
    assert (result.table["status"] == "error").all()


def test_empty_result_has_summary(tmp_path):
    result = SweepResult(pd.DataFrame(), tmp_path, "val_accuracy", "max")
    assert result.all_failed
    assert result.failure_summary() == (
        "no trial folder with results or errors was found"
    )


@pytest.mark.parametrize("value", ["no", 1, None])
def test_tensorboard_must_be_bool(tmp_path, value):
    with pytest.raises(TypeError, match="tensorboard: .* is not True or False"):
        _tuner(tmp_path, {"trainer.epochs": 1}, tensorboard=value)


def test_grid_times_samples(tmp_path):
    tuner = _tuner(
        tmp_path,
        {
            "model.tau": {"grid": [0.01, 0.02, 0.04]},
            "optim.lr": {"loguniform": [1e-3, 1e-2]},
            "trainer.epochs": 1,
        },
        num_samples=2,
        scheduler="fifo",
        searcher="grid",
    )
    assert tuner.total_trials == 6
    table = tuner.fit().table
    assert len(table) == 6
    assert sorted(table["config/model.tau"].value_counts().tolist()) == [2, 2, 2]


def test_tpe_searcher_runs(tmp_path):
    tuner = _tuner(
        tmp_path,
        {"optim.lr": {"loguniform": [1e-3, 3e-2]}, "trainer.epochs": 1},
        num_samples=3,
        searcher="tpe",
        scheduler="fifo",
    )
    table = tuner.fit().table
    assert len(table) == 3
    assert (table["status"] == "finished").all()


def test_multi_objective_tpe(tmp_path):
    tuner = _tuner(
        tmp_path,
        {"optim.lr": {"loguniform": [1e-3, 3e-2]}, "trainer.epochs": 1},
        num_samples=3,
        searcher="tpe",
        scheduler="fifo",
        extra_objectives=[("val_energy_per_sample_j", "min")],
    )
    table = tuner.fit().table
    assert len(table) == 3
    assert table["pareto_energy"].any()


def test_multi_objective_needs_tpe(tmp_path):
    with pytest.raises(ValueError, match="needs searcher 'tpe'"):
        _tuner(
            tmp_path,
            {"trainer.epochs": 1},
            extra_objectives=[("val_energy_per_sample_j", "min")],
        )


def test_tpe_needs_searched_value(tmp_path):
    with pytest.raises(ValueError, match="at least one searched value"):
        _tuner(tmp_path, {"trainer.epochs": 1}, searcher="tpe")


def test_extra_objective_name_checked(tmp_path):
    with pytest.raises(ValueError, match="val_energy_per_sample_j"):
        _tuner(
            tmp_path,
            {"optim.lr": {"loguniform": [1e-3, 1e-2]}},
            searcher="tpe",
            extra_objectives=[("val_energy_per_sampel_j", "min")],
        )


def test_plateau_early_stop(tmp_path):
    tuner = _tuner(
        tmp_path,
        {
            # A learning rate of 1e-12 leaves the weights, so the objective
            # stays flat: best at epoch 1, then two epochs without improvement.
            "optim.lr": 1e-12,
            "trainer.epochs": 6,
            "early_stop.patience": 2,
        },
        num_samples=1,
        scheduler="fifo",
    )
    row = tuner.fit().best
    assert row["epochs"] == 3
    assert row["status"] == "stopped_early"
    assert row["reason"] == "no improvement (early_stop)"


def test_results_reload_without_ray(tmp_path):
    tuner = _tuner(tmp_path, {"trainer.epochs": 1}, num_samples=2, scheduler="fifo")
    first = tuner.fit().table
    code = textwrap.dedent(
        f"""
        import sys
        from spiketune.tuning.results import load_results
        table = load_results({str(tuner.run_dir)!r})
        assert "ray" not in sys.modules, "loading results imported ray"
        print(len(table))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(len(first))


@pytest.mark.parametrize("tensorboard", [False, True])
def test_result_loggers(tmp_path, tensorboard):
    tuner = _tuner(
        tmp_path,
        {"trainer.epochs": 1},
        num_samples=1,
        scheduler="fifo",
        test_top_k=0,
        tensorboard=tensorboard,
    )
    tuner.fit()
    trial_dirs = [p for p in tuner.run_dir.iterdir() if (p / "params.json").is_file()]
    assert len(trial_dirs) == 1
    trial_dir = trial_dirs[0]
    assert (trial_dir / "result.json").stat().st_size > 0
    assert (trial_dir / "progress.csv").stat().st_size > 0
    events = list(trial_dir.glob("events.out.tfevents.*"))
    assert bool(events) is tensorboard
    assert "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS" not in os.environ


def _driver_script(storage: Path) -> str:
    return textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import sweep_models
        from spiketune.tuning import SpikeTuner
        tuner = SpikeTuner(
            {{**{TINY!r}, "trainer.epochs": 3}},
            num_samples=4, storage_path={str(storage)!r}, name="killed",
            max_concurrent=1, scheduler="fifo", train_fn=sweep_models.slow_train_fn,
        )
        tuner.fit()
        """
    )


def test_resume_after_driver_killed(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", _driver_script(tmp_path)],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    run_dir = tmp_path / "killed"
    deadline = time.monotonic() + 120
    # Wait until at least one trial has reported, then kill the whole driver.
    while time.monotonic() < deadline:
        if any(p.stat().st_size > 0 for p in run_dir.glob("*/result.json")):
            break
        time.sleep(0.5)
    time.sleep(2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    before = load_results(run_dir)
    assert (before["status"] == "finished").sum() < 4

    tuner = SpikeTuner(
        {**TINY, "trainer.epochs": 3},
        num_samples=4,
        storage_path=tmp_path,
        name="killed",
        max_concurrent=2,
        scheduler="fifo",
        train_fn=sweep_models.slow_train_fn,
        test_top_k=0,
    )
    table = tuner.fit(resume=True).table
    assert len(table) == 4
    assert (table["status"] == "finished").all()
