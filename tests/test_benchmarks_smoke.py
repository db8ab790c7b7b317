"""Smoke tests of the benchmark scripts at tiny sizes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "lif_throughput.py"


@pytest.mark.timeout(60)
def test_throughput_quick(tmp_path: Path) -> None:
    pytest.importorskip("snntorch")
    record = tmp_path / "results.json"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--sweep", "--json", str(record)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "ratio" in result.stdout
    data = json.loads(record.read_text())
    assert len(data["results"]) == 2
    for row in data["results"]:
        assert row["spiketune_s"] > 0
        assert row["snntorch_s"] > 0
        assert row["ratio"] > 0
        assert 0 < row["bound_fraction"]
    assert data["machine"]["torch_threads"] >= 1


BENCHMARKS = SCRIPT.parent
OVERHEAD = BENCHMARKS / "tuning_overhead.py"
SEARCH = BENCHMARKS / "search_efficiency.py"


def _run_script(args: list[str], timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "OMP_NUM_THREADS": "1", "RAY_ADDRESS": "local"},
    )


@pytest.mark.timeout(60)
def test_overhead_without_ray(tmp_path: Path) -> None:
    record = tmp_path / "overhead.json"
    args = [str(OVERHEAD), "--sizes", "2", "4", "--rounds", "1", "--steps", "3"]
    args += ["--hidden", "16"]
    args += ["--frameworks", "optuna", "pool", "--json", str(record)]
    result = _run_script(args, timeout=60)
    assert result.returncode == 0, result.stderr
    data = json.loads(record.read_text())
    assert len(data["rows"]) == 4
    for row in data["rows"]:
        assert row["trials_seen"] == row["n_trials"]
        assert 0 < row["utilisation"] <= 1.05
        assert row["ideal_s"] > 0
        assert row["driver_peak_mib"] > 0
    assert set(data["memory_growth_kib_per_trial"]) == {"optuna", "pool"}


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_overhead_spiketune_sweep(tmp_path: Path) -> None:
    record = tmp_path / "overhead.json"
    args = [str(OVERHEAD), "--sizes", "2", "--rounds", "1", "--steps", "3"]
    args += ["--hidden", "16"]
    args += ["--frameworks", "spiketune", "--json", str(record)]
    result = _run_script(args, timeout=90)
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(record.read_text())["rows"]
    assert row["framework"] == "spiketune"
    assert row["trials_seen"] == 2
    assert row["wall_s"] > row["ideal_s"] > 0
    assert row["startup_s"] > 0


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_search_efficiency_tiny(tmp_path: Path) -> None:
    record = tmp_path / "search.json"
    figure = tmp_path / "search.png"
    args = [str(SEARCH), "--seeds", "0", "--epochs", "2", "--n-steps", "4"]
    args += ["--asha-samples", "2", "--lr-grid", "0.01", "0.02"]
    args += ["--tau-grid", "0.016", "--hidden-grid", "8"]
    args += ["--methods", "grid", "tpe_asha"]
    args += ["--figure", str(figure), "--json", str(record)]
    result = _run_script(args, timeout=120)
    assert result.returncode == 0, result.stderr
    data = json.loads(record.read_text())
    grid = data["summary"]["grid"]
    assert grid["epochs_median"] == 4
    assert 0 <= grid["best_max"] <= 1
    tpe = data["summary"]["tpe_asha"]
    assert len(tpe["fraction_to_grid_best"]) == 1
    assert "TPE+ASHA" in data["verdict"]
    assert figure.stat().st_size > 0


def test_readme_markers_replaced() -> None:
    sys.path.insert(0, str(BENCHMARKS))
    import common

    text = "intro\n<!-- results:demo -->\nold\n<!-- /results:demo -->\nend\n"
    replaced = common.replace_marked_section(text, "demo", "new | table")
    assert "old" not in replaced
    assert "<!-- results:demo -->\nnew | table\n<!-- /results:demo -->" in replaced
    assert replaced.startswith("intro\n")
    assert replaced.endswith("end\n")
    with pytest.raises(ValueError, match="results:missing"):
        common.replace_marked_section(text, "missing", "x")
