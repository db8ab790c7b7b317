import os
import platform
import types

import pytest
from ray.tune.experiment import Trial
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, TBXLoggerCallback

from spiketune.tuning.footprint import (
    ReleaseTrialStats,
    default_loggers_disabled,
    logger_callbacks,
    release_trial_stats,
    trim_heap,
)

ENV = "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"


def _trial_with_results(n_results: int) -> Trial:
    trial = Trial("trainable", config={"lr": 0.01}, stub=True)
    for step in range(1, n_results + 1):
        result = {
            "val_accuracy": 0.1 * step,
            "loss": 1.0 / step,
            "training_iteration": step,
            "layer": {"rate": 0.05},
        }
        trial.update_last_result(result)
    return trial


def test_trial_has_stats_before_release():
    trial = _trial_with_results(3)
    stats = trial.run_metadata.metric_analysis
    assert stats["val_accuracy"]["max"] == pytest.approx(0.3)
    assert stats["loss"]["min"] == pytest.approx(1.0 / 3)
    assert "layer/rate" in stats


def test_release_drops_stats_and_keeps_last_result():
    trial = _trial_with_results(3)
    json_before = len(trial.run_metadata.get_json_state())

    release_trial_stats(trial)

    assert trial.run_metadata.metric_analysis == {}
    assert trial.run_metadata.metric_n_steps == {}
    assert trial.last_result["val_accuracy"] == pytest.approx(0.3)
    assert trial.last_result["training_iteration"] == 3
    assert trial.config == {"lr": 0.01}
    assert len(trial.run_metadata.get_json_state()) < json_before / 2


@pytest.mark.parametrize("hook", ["on_trial_complete", "on_trial_error"])
def test_callback_releases_on_trial_end(hook):
    trial = _trial_with_results(2)
    getattr(ReleaseTrialStats(), hook)(iteration=5, trials=[trial], trial=trial)
    assert trial.run_metadata.metric_analysis == {}
    assert trial.last_result["val_accuracy"] == pytest.approx(0.2)


def test_release_skips_object_without_metadata():
    trial = types.SimpleNamespace(last_result={"val_accuracy": 0.5})
    release_trial_stats(trial)
    assert vars(trial) == {"last_result": {"val_accuracy": 0.5}}


@pytest.mark.parametrize(
    ("tensorboard", "expected"),
    [
        (False, [JsonLoggerCallback, CSVLoggerCallback]),
        (True, [JsonLoggerCallback, CSVLoggerCallback, TBXLoggerCallback]),
    ],
)
def test_logger_callbacks(tensorboard, expected):
    callbacks = logger_callbacks(tensorboard)
    assert [type(c) for c in callbacks] == expected


@pytest.mark.parametrize("previous", [None, "0", "1"])
def test_default_loggers_disabled_restores_env(monkeypatch, previous):
    if previous is None:
        monkeypatch.delenv(ENV, raising=False)
    else:
        monkeypatch.setenv(ENV, previous)

    with default_loggers_disabled():
        assert os.environ[ENV] == "1"

    assert os.environ.get(ENV) == previous


def test_default_loggers_disabled_restores_env_on_error(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    with pytest.raises(RuntimeError, match="boom"):
        with default_loggers_disabled():
            raise RuntimeError("boom")
    assert ENV not in os.environ


def test_trim_heap_on_glibc():
    is_glibc = platform.libc_ver()[0] == "glibc"
    assert trim_heap() is is_glibc
