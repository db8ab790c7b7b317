import json

import numpy as np
import pytest

from spiketune.tuning.results import load_results, pareto_mask, save_results


def _write_trial(run_dir, trial_id, reports, config=None, error=None):
    trial_dir = run_dir / trial_id
    trial_dir.mkdir(parents=True)
    (trial_dir / "params.json").write_text(json.dumps(config or {"optim": {"lr": 0.1}}))
    lines = [json.dumps(r) for r in reports]
    (trial_dir / "result.json").write_text("\n".join(lines) + ("\n" if lines else ""))
    if error:
        (trial_dir / "error.txt").write_text(error)
    return trial_dir


def _report(epoch, acc, status="running", energy=1e-9, spikes=100.0):
    return {
        "epoch": epoch,
        "val_accuracy": acc,
        "val_energy_per_sample_j": energy,
        "val_spikes_per_sample": spikes,
        "trial_status": status,
        "time_total_s": float(epoch),
        "seed": 7,
    }


@pytest.fixture
def run_dir(tmp_path):
    meta = {
        "objective": "val_accuracy",
        "mode": "max",
        "max_epochs": 3,
        "state": "finished",
    }
    (tmp_path / "sweep.json").write_text(json.dumps(meta))
    _write_trial(
        tmp_path,
        "t_done",
        [_report(1, 0.5), _report(2, 0.9, energy=3e-9), _report(3, 0.8, "finished")],
    )
    _write_trial(tmp_path, "t_asha", [_report(1, 0.4, energy=1e-9)])
    _write_trial(
        tmp_path,
        "t_nan",
        [
            _report(1, 0.3),
            {**_report(2, 0.3, "diverged"), "diverged_reason": "loss nan"},
        ],
    )
    _write_trial(
        tmp_path, "t_err", [], error="Traceback...\nRuntimeError: builder failed\n"
    )
    return tmp_path


def test_statuses(run_dir):
    table = load_results(run_dir).set_index("trial_id")
    assert table.loc["t_done", "status"] == "finished"
    assert table.loc["t_asha", "status"] == "stopped_early"
    assert table.loc["t_nan", "status"] == "diverged"
    assert table.loc["t_err", "status"] == "error"


def test_rank_order_best_first(run_dir):
    table = load_results(run_dir)
    assert list(table["trial_id"]) == ["t_done", "t_asha", "t_nan", "t_err"]
    assert list(table["rank"]) == [1, 2, 3, 4]


def test_best_epoch_metrics(run_dir):
    row = load_results(run_dir).set_index("trial_id").loc["t_done"]
    # Epoch 2 has the best accuracy 0.9, so its energy is the one reported.
    assert row["val_accuracy"] == 0.9
    assert row["best_epoch"] == 2
    assert row["val_energy_per_sample_j"] == 3e-9
    assert row["last_val_accuracy"] == 0.8


def test_reasons(run_dir):
    table = load_results(run_dir).set_index("trial_id")
    assert table.loc["t_err", "reason"] == "RuntimeError: builder failed"
    assert table.loc["t_nan", "reason"] == "loss nan"
    assert table.loc["t_asha", "reason"] == "scheduler"


def test_interrupted_run_marks_incomplete(run_dir):
    meta = json.loads((run_dir / "sweep.json").read_text())
    (run_dir / "sweep.json").write_text(json.dumps({**meta, "state": "running"}))
    table = load_results(run_dir).set_index("trial_id")
    assert table.loc["t_asha", "status"] == "incomplete"


@pytest.mark.parametrize(
    "text",
    ['{"epoch": 2, "val_acc', "42\n[1, 2]\n"],
    ids=["truncated", "not_objects"],
)
def test_invalid_lines_skipped(run_dir, text):
    with open(run_dir / "t_asha" / "result.json", "a") as f:
        f.write(text)
    table = load_results(run_dir).set_index("trial_id")
    assert table.loc["t_asha", "epochs"] == 1


def test_config_columns(run_dir):
    table = load_results(run_dir)
    assert (table["config/optim.lr"] == 0.1).all()


def test_pareto_mask_exact():
    objective = np.array([0.9, 0.8, 0.7, 0.95, np.nan])
    cost = np.array([2.0, 1.0, 1.5, 3.0, 0.1])
    # 0.7 at cost 1.5 is dominated by 0.8 at cost 1.0; NaN is never on the front.
    assert pareto_mask(objective, cost, "max").tolist() == [
        True,
        True,
        False,
        True,
        False,
    ]


def test_pareto_mask_min_mode():
    objective = np.array([0.1, 0.2, 0.05])
    cost = np.array([1.0, 0.5, 2.0])
    assert pareto_mask(objective, cost, "min").tolist() == [True, True, True]


def test_pareto_flags_in_table(run_dir):
    table = load_results(run_dir).set_index("trial_id")
    # t_done: 0.9 at 3e-9 J; t_asha: 0.4 at 1e-9 J; t_nan: 0.3 at 1e-9 J.
    assert table.loc["t_done", "pareto_energy"]
    assert table.loc["t_asha", "pareto_energy"]
    assert not table.loc["t_nan", "pareto_energy"]
    assert not table.loc["t_err", "pareto_energy"]


def test_save_and_reload(run_dir):
    table = load_results(run_dir)
    csv_path, json_path = save_results(table, run_dir)
    records = json.loads(json_path.read_text())
    assert [r["trial_id"] for r in records] == list(table["trial_id"])
    assert csv_path.read_text().splitlines()[0].startswith("rank,")


def test_missing_sweep_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="sweep.json"):
        load_results(tmp_path)


def test_nested_config_values_become_json(tmp_path):
    meta = {"objective": "val_accuracy", "mode": "max", "max_epochs": 1}
    (tmp_path / "sweep.json").write_text(json.dumps({**meta, "state": "finished"}))
    config = {"model": {"hidden": [16, 8]}, "loss": {"regularisers": {"topology": {}}}}
    _write_trial(tmp_path, "t1", [_report(1, 0.5, "finished")], config=config)
    row = load_results(tmp_path).iloc[0]
    assert row["config/model.hidden"] == "[16, 8]"
    assert row["config/loss.regularisers.topology"] == "{}"


def test_trial_that_never_started_listed(run_dir):
    # An actor cancelled before it ran leaves error.txt and no params.json.
    trial_dir = run_dir / "t_never"
    trial_dir.mkdir()
    (trial_dir / "error.txt").write_text("The actor never ran.\n")
    table = load_results(run_dir).set_index("trial_id")
    assert len(table) == 5
    assert table.loc["t_never", "status"] == "error"
    assert table.loc["t_never", "reason"] == "The actor never ran."
    assert table.loc["t_never", "epochs"] == 0


@pytest.mark.parametrize("name", ["params.json", "result.json"])
def test_deeply_nested_json_skipped(run_dir, name):
    # Nesting beyond the decoder's recursion limit raises RecursionError.
    (run_dir / "t_done" / name).write_text("[" * 200_000 + "\n")
    table = load_results(run_dir).set_index("trial_id")
    assert len(table) == 4
    assert table.loc["t_asha", "status"] == "stopped_early"


def test_folder_without_trial_files_skipped(run_dir):
    (run_dir / "stray").mkdir()
    (run_dir / "stray" / "notes.txt").write_text("not a trial")
    table = load_results(run_dir)
    assert "stray" not in set(table["trial_id"])
    assert len(table) == 4


def test_unreadable_params_ignored(run_dir):
    (run_dir / "t_done" / "params.json").write_bytes(b"\xff\xfe garbage")
    table = load_results(run_dir).set_index("trial_id")
    assert table.loc["t_done", "status"] == "finished"


def _checkpoint(trial_dir, number, epoch):
    path = trial_dir / f"checkpoint_{number:06d}"
    path.mkdir()
    (path / "spec.json").write_text(json.dumps({"epoch": epoch}))
    return path


def test_checkpoint_of_best_epoch_preferred(run_dir):
    trial_dir = run_dir / "t_done"
    best = _checkpoint(trial_dir, 0, 2)
    _checkpoint(trial_dir, 1, 3)
    (trial_dir / "checkpoint_tmp_abc").mkdir()
    row = load_results(run_dir).set_index("trial_id").loc["t_done"]
    # Epoch 2 scored best, so its checkpoint wins over the newer epoch 3.
    assert row["checkpoint"] == str(best)


def test_missing_best_checkpoint_falls_back(run_dir):
    trial_dir = run_dir / "t_done"
    newest = _checkpoint(trial_dir, 1, 3)
    row = load_results(run_dir).set_index("trial_id").loc["t_done"]
    assert row["checkpoint"] == str(newest)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"objective": "x"}'])
def test_damaged_sweep_file_named(tmp_path, text):
    (tmp_path / "sweep.json").write_text(text)
    with pytest.raises(ValueError, match="sweep.json"):
        load_results(tmp_path)
