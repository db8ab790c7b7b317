import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
import yaml

TINY_CONFIG = {
    "name": "tiny",
    "seed": 3,
    "searcher": "random",
    "scheduler": {"name": "asha", "grace_period": 1, "reduction_factor": 2},
    "resources": {"cpus_per_trial": 1, "max_concurrent": 2},
    "budget": {"num_samples": 3, "test_top_k": 1},
    "data": {"name": "digits", "n_steps": 6},
    "model": {"hidden": [16], "profile": "gen1"},
    "optim": {"lr": {"loguniform": [0.003, 0.03]}},
    "anneal": {"sign": {"enabled": True}},
    "trainer": {"epochs": 2, "batch_size": 128},
}


def _spiketune(*args, cwd, timeout=300, env=None):
    env = {**os.environ, **(env or {}), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "spiketune", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def _write(tmp_path, config, name="sweep.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("cli")
    config = {**TINY_CONFIG, "output_dir": str(tmp_path / "runs")}
    out = _spiketune("run", _write(tmp_path, config), "--no-report", cwd=tmp_path)
    return tmp_path, out


@pytest.mark.slow
def test_run_prints_table(finished_run):
    tmp_path, out = finished_run
    assert out.returncode == 0, out.stderr
    assert "rank" in out.stdout
    assert "results:" in out.stdout
    run_dir = tmp_path / "runs" / "tiny"
    assert (run_dir / "results.csv").is_file()
    assert (run_dir / "config.yaml").is_file()


@pytest.mark.slow
def test_resolved_config_has_defaults(finished_run):
    tmp_path, _ = finished_run
    resolved = yaml.safe_load((tmp_path / "runs" / "tiny" / "config.yaml").read_text())
    assert resolved["trainer"]["epochs"] == 2
    assert resolved["trainer"]["eval_batch_size"] == 512
    assert resolved["early_stop"] == {"patience": None, "min_delta": 0.0}


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_results_command(finished_run, fmt):
    tmp_path, _ = finished_run
    out = _spiketune(
        "results",
        tmp_path / "runs" / "tiny",
        "--top",
        "2",
        "--format",
        fmt,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    if fmt == "json":
        assert len(json.loads(out.stdout)) == 2
    else:
        assert "trial_id" in out.stdout


@pytest.mark.slow
def test_export_best_trial(finished_run):
    tmp_path, _ = finished_run
    out_dir = tmp_path / "exported"
    out = _spiketune(
        "export", tmp_path / "runs" / "tiny", "--out", out_dir, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    description = json.loads((out_dir / "network.json").read_text())
    assert description["profile"]["name"] == "gen1"
    weights = [
        w for layer in description["layers"] for row in layer["weight"] for w in row
    ]
    assert max(abs(w) for w in weights) <= 0.9 + 1e-6
    assert (out_dir / "network.nir").is_file()


@pytest.mark.slow
def test_existing_run_dir_needs_resume(finished_run):
    tmp_path, _ = finished_run
    config = {**TINY_CONFIG, "output_dir": str(tmp_path / "runs")}
    out = _spiketune("run", _write(tmp_path, config, "again.yaml"), cwd=tmp_path)
    assert out.returncode == 2
    assert "--resume" in out.stderr


@pytest.mark.slow
def test_resume_finished_run(finished_run):
    tmp_path, _ = finished_run
    config = {**TINY_CONFIG, "output_dir": str(tmp_path / "runs")}
    path = _write(tmp_path, config, "resume.yaml")
    out = _spiketune("run", path, "--resume", "--no-report", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "tiny" in out.stdout


BAD_CONFIGS = [
    ({"trainer": {"epochs": -3}}, "trainer.epochs: -3 is not a positive integer"),
    ({"budgett": {"num_samples": 2}}, "did you mean 'budget'"),
    ({"resources": {"cpus_per_tril": 1}}, "did you mean 'cpus_per_trial'"),
    ({"optim": {"lr": {"loguniform": [0.1, 0.01]}}}, "optim.lr: loguniform range"),
    ({"optim": {"lr": {"choice": []}}}, "optim.lr: choice needs a non-empty list"),
    ({"data": {"name": "audio", "root": "/no/such/folder"}}, "data.root"),
    ({"loss": {"task": "cross_entropy"}}, "loss.task"),
    ({"trainer": {"epochs": "ten"}}, "trainer.epochs"),
    ({"model": {"tau": -0.01}}, "tau must be > 0"),
    ({"model": {"hiden": [8]}}, "did you mean 'hidden'"),
    ({"scheduler": {"name": "hyperband"}}, "scheduler.name"),
    ({"mystery": 1}, "mystery: unknown key"),
    ({"objective": {"metric": "val_acc"}}, "did you mean 'val_accuracy'"),
    ({"model_builder": "no_such_module:build"}, "cannot import module"),
    ({"data": {"name": "digits", "n_steps": 100_000_000}}, "data.n_steps"),
    ({"model": {"weight_scale": -1.0}}, "weight_scale must be a number > 0"),
    ({"model": {"quantize_weights": "yes"}}, "model.quantize_weights"),
    ({"metric": {"eval_mismach": True}}, "did you mean 'eval_mismatch'"),
    ({"tensorboard": "no"}, "tensorboard: 'no' is invalid"),
    ({"tensorboard": 1}, "tensorboard: 1 is invalid"),
    ({"model": {"hidden": [300], "profile": "gen1"}}, "has 256"),
    (
        {"model": {"hidden": [80], "arch": "recurrent", "profile": "gen1"}},
        "does not fit one core",
    ),
]


@pytest.mark.parametrize(("change", "message"), BAD_CONFIGS)
def test_bad_config_exits_2(tmp_path, change, message):
    config = {**TINY_CONFIG, **change, "output_dir": str(tmp_path / "runs")}
    out = _spiketune("run", _write(tmp_path, config), cwd=tmp_path, timeout=120)
    assert out.returncode == 2, out.stdout + out.stderr
    assert message in out.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--name", "../escape"], "not a valid run name"),
        (["--max-concurrent", "0"], "--max-concurrent"),
        (["--cpus-per-trial", "-1"], "--cpus-per-trial"),
        (["--address", "127.0.0.1:1"], "cannot reach a Ray head"),
        (["--name", ""], "must not be empty"),
    ],
)
def test_bad_option_exits_2(tmp_path, options, message):
    config = {**TINY_CONFIG, "output_dir": str(tmp_path / "runs")}
    out = _spiketune("run", _write(tmp_path, config), *options, cwd=tmp_path)
    assert out.returncode == 2, out.stdout + out.stderr
    assert message in out.stderr
    assert not (tmp_path / "runs").exists()


def test_missing_config_file(tmp_path):
    out = _spiketune("run", tmp_path / "nope.yaml", cwd=tmp_path, timeout=120)
    assert out.returncode == 2
    assert "config file not found" in out.stderr


@pytest.mark.slow
def test_ctrl_c_then_resume(tmp_path):
    config = {
        **TINY_CONFIG,
        "name": "interrupted",
        "scheduler": {"name": "fifo"},
        "budget": {"num_samples": 2, "test_top_k": 0},
        "trainer": {"epochs": 40, "batch_size": 128},
        "output_dir": str(tmp_path / "runs"),
    }
    path = _write(tmp_path, config)
    run_dir = tmp_path / "runs" / "interrupted"
    proc = subprocess.Popen(
        [sys.executable, "-m", "spiketune", "run", str(path), "--no-report"],
        cwd=tmp_path,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if any(p.stat().st_size > 0 for p in run_dir.glob("*/result.json")):
            break
        time.sleep(0.2)
    # Ctrl-C in a terminal reaches the whole process group.
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=120) == 130
    meta = json.loads((run_dir / "sweep.json").read_text())
    assert meta["state"] == "interrupted"

    out = _spiketune("run", path, "--resume", "--no-report", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    table = json.loads((run_dir / "results.json").read_text())
    assert [row["epochs"] for row in table] == [40, 40]
    for result_file in run_dir.glob("*/result.json"):
        epochs = [json.loads(line)["epoch"] for line in result_file.open()]
        # A resumed trial continues after its checkpoint: epoch 1 runs once.
        assert epochs.count(1) == 1


def test_results_top_must_be_positive(tmp_path):
    out = _spiketune("results", tmp_path, "--top", "0", cwd=tmp_path, timeout=120)
    assert out.returncode == 2


def test_results_of_missing_run(tmp_path):
    out = _spiketune("results", tmp_path, cwd=tmp_path, timeout=120)
    assert out.returncode == 1
    assert "sweep.json" in out.stderr


@pytest.mark.parametrize("command", ["run", "demo", "results", "export", "report"])
def test_help_lists_options(tmp_path, command):
    out = _spiketune(command, "--help", cwd=tmp_path, timeout=120)
    assert out.returncode == 0
    assert "usage: spiketune" in out.stdout


def test_unknown_command_is_usage_error(tmp_path):
    out = _spiketune("sweep", cwd=tmp_path, timeout=120)
    assert out.returncode == 2


@pytest.mark.slow
def test_all_failed_exits_1(tmp_path):
    module = tmp_path / "broken_model.py"
    module.write_text("def build(cfg):\n    raise RuntimeError('no network today')\n")
    config = {
        **TINY_CONFIG,
        "model_builder": "broken_model:build",
        "model": {},
        "anneal": {},
        "budget": {"num_samples": 2},
        "output_dir": str(tmp_path / "runs"),
    }
    out = _spiketune("run", _write(tmp_path, config), "--no-report", cwd=tmp_path)
    assert out.returncode == 1
    assert "no network today" in out.stderr


@pytest.mark.slow
def _stop_ray_head(temp_dir: str) -> None:
    # `ray stop` would end every Ray instance of this user, including one that
    # this process or another program runs, so only this head's processes and
    # their children (workers, agents) are stopped.
    processes = []
    for process in psutil.process_iter(["cmdline"]):
        if temp_dir in " ".join(process.info["cmdline"] or []):
            try:
                processes += [process, *process.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.terminate()
    _, alive = psutil.wait_procs(processes, timeout=15)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


def test_run_on_loopback_cluster(tmp_path):
    ray_bin = Path(sys.executable).with_name("ray")
    # ray.init in this process sets RAY_AUTH_MODE=token in os.environ. The
    # head and the driver must agree, so both get the same mode.
    auth = {"RAY_AUTH_MODE": "disabled"}
    env = {**os.environ, **auth}
    port = 6391
    # A short folder of its own: Ray's socket paths must stay under 108 bytes.
    temp_dir = tempfile.mkdtemp(prefix="spiketune-ray-", dir="/tmp")
    start = subprocess.run(
        [ray_bin, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
         "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats",
         f"--temp-dir={temp_dir}"],
        capture_output=True, text=True, timeout=180, env=env,
    )  # fmt: skip
    try:
        assert start.returncode == 0, start.stderr[-2000:]
        config = {
            **TINY_CONFIG,
            "budget": {"num_samples": 2, "test_top_k": 0},
            "output_dir": str(tmp_path / "runs"),
        }
        out = _spiketune(
            "run", _write(tmp_path, config), "--address", f"127.0.0.1:{port}",
            "--no-report", cwd=tmp_path, env=auth,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr[-3000:]
        table = json.loads((tmp_path / "runs" / "tiny" / "results.json").read_text())
        assert len(table) == 2
    finally:
        _stop_ray_head(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_demo_config_matches_example():
    # The packaged demo config and its copy in examples/ must not drift apart.
    root = Path(__file__).resolve().parents[1]
    packaged = root / "src" / "spiketune" / "configs" / "demo.yaml"
    example = root / "examples" / "digits_hardware.yaml"
    assert packaged.read_text() == example.read_text()
