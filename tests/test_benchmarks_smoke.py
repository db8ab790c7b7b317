"""Smoke test of the throughput benchmark script at tiny sizes."""

from __future__ import annotations

import json
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
