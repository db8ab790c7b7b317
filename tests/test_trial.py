import shutil

import pytest
import torch

from spiketune.hardware import check_fit
from spiketune.tuning.context import TrialSettings
from spiketune.tuning.defaults import check_trainer_keys
from spiketune.tuning.trial import build_trial, run_builtin_loop, trial_seed

HARDWARE = {
    "data": {"name": "digits", "n_steps": 6},
    "model": {"hidden": [20], "profile": "gen1"},
    "anneal": {"sign": {"enabled": True}},
    "loss": {"regularisers": {"firing_rate": {"weight": 0.1}, "topology": {}}},
    "optim": {"lr": 0.01},
    "trainer": {"epochs": 2, "batch_size": 256, "seed": 5},
}


def _run(config, settings=None):
    reports = []
    context = build_trial(
        config,
        settings or TrialSettings(),
        reporter=lambda metrics, checkpoint_dir: reports.append(metrics),
    )
    run_builtin_loop(context)
    return context, reports


def test_loop_reports_every_epoch():
    _, reports = _run(HARDWARE)
    assert [r["epoch"] for r in reports] == [1, 2]
    assert [r["trial_status"] for r in reports] == ["running", "finished"]


STABLE_NAMES = [
    "train_loss",
    "train_task",
    "train_firing_rate",
    "train_topology",
    "val_accuracy",
    "val_f1_macro",
    "val_spike_rate_hz_l0",
    "val_silent_fraction_l1",
    "val_energy_per_sample_j",
    "val_synops_per_sample",
    "sign_alpha",
    "lr",
    "seed",
]


def test_loop_reports_stable_names():
    _, reports = _run(HARDWARE)
    for key in STABLE_NAMES:
        assert key in reports[-1], key


def test_sign_alpha_reaches_end():
    _, reports = _run(HARDWARE)
    # Two epochs: the first uses alpha_start, the last alpha_end.
    assert reports[0]["sign_alpha"] == pytest.approx(0.5)
    assert reports[-1]["sign_alpha"] == pytest.approx(20.0)


def test_export_fits_chip():
    context, _ = _run(HARDWARE)
    assert check_fit(context.export_model(), "gen1") == []


def test_same_seed_same_scores():
    _, first = _run(HARDWARE)
    _, second = _run(HARDWARE)
    assert first[-1]["val_accuracy"] == second[-1]["val_accuracy"]
    assert first[-1]["train_loss"] == second[-1]["train_loss"]


def test_seed_derived_from_trial_id():
    config = {**HARDWARE, "trainer": {**HARDWARE["trainer"], "seed": None}}
    context = build_trial(config, TrialSettings(base_seed=3), trial_id="abc_00001")
    assert context.seed == trial_seed(3, "abc_00001")
    assert trial_seed(3, "abc_00001") != trial_seed(3, "abc_00002")


def test_population_readout():
    config = {
        "data": {"name": "digits", "n_steps": 6},
        "model": {"hidden": [20], "population": 2},
        "loss": {"task": "population"},
        "trainer": {"epochs": 1, "batch_size": 256},
    }
    context, reports = _run(config)
    # Ten classes with two output neurons each.
    assert context.model.n_outputs == 20
    assert 0.0 <= reports[-1]["val_population_accuracy"] <= 1.0


def test_membrane_readout_with_spike_loss_fails_early():
    config = {
        "data": {"name": "digits", "n_steps": 6},
        "model": {"hidden": [8], "readout": "membrane"},
        "loss": {"task": "ce_count"},
    }
    with pytest.raises(ValueError, match="spik"):
        build_trial(config, TrialSettings())


def test_eval_mismatch_flag_type():
    with pytest.raises(ValueError, match="metric.eval_mismatch"):
        check_trainer_keys({"metric": {"eval_mismatch": "yes"}})


def test_eval_mismatch_scores_noisy_chip():
    config = {**HARDWARE, "metric": {"eval_mismatch": True}}
    torch.manual_seed(0)
    context, reports = _run(config)
    assert 0.0 <= reports[-1]["val_accuracy"] <= 1.0


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"trainer": {"epochs": 0}}, "trainer.epochs: 0 is not a positive integer"),
        ({"trainer": {"batch_size": 2.5}}, "trainer.batch_size"),
        ({"trainer": {"epoch": 3}}, "did you mean 'epochs'"),
        ({"early_stop": {"patience": -1}}, "early_stop.patience"),
        ({"early_stop": {"min_delta": -0.1}}, "early_stop.min_delta"),
        ({"trainer": {"grad_clip": 0}}, "trainer.grad_clip"),
    ],
)
def test_trainer_key_errors(config, match):
    with pytest.raises(ValueError, match=match):
        check_trainer_keys(config)


def test_restore_continues_after_checkpoint(tmp_path):
    config = {**HARDWARE, "trainer": {**HARDWARE["trainer"], "epochs": 4}}
    saved = []

    def keep_checkpoint(metrics, checkpoint_dir):
        if checkpoint_dir is not None and metrics["epoch"] == 2:
            target = tmp_path / "ckpt"
            shutil.copytree(checkpoint_dir, target, dirs_exist_ok=True)
            saved.append(target)

    first = build_trial(config, TrialSettings(), reporter=keep_checkpoint)
    first.report = _stop_after(first, 2)
    with pytest.raises(_Stop):
        run_builtin_loop(first)
    assert saved, "epoch 2 did not improve, so no checkpoint to resume from"

    reports = []
    second = build_trial(
        config,
        TrialSettings(),
        reporter=lambda metrics, checkpoint_dir: reports.append(metrics),
    )
    assert second.restore(saved[0])
    assert second.epoch == 2
    assert second.sign_annealing.epoch == 1
    run_builtin_loop(second)
    assert [r["epoch"] for r in reports] == [3, 4]
    assert reports[-1]["sign_alpha"] == pytest.approx(20.0)


def _stop_after(context, n_epochs):
    report = context.report

    def limited(metrics, **kwargs):
        report(metrics, **kwargs)
        if context.epoch >= n_epochs:
            raise _Stop

    return limited


class _Stop(Exception):
    pass
