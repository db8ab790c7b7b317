"""Helpers shared by the tuning benchmarks: fixed training work, memory, machine.

The scripts in this folder import this module as ``common``, so run them from
the repository root or with ``benchmarks`` on ``sys.path``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import resource
import statistics
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from spiketune.network import SNN, build_network

BENCHMARK_DIR = Path(__file__).resolve().parent

# Okabe-Ito colour-blind safe palette, in its published order.
OKABE_ITO = (
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#F0E442",
    "#0072B2",
    "#D55E00",
    "#CC79A7",
    "#000000",
)


def digits_task(n_steps: int) -> Any:
    """Return the spiketune digits task with ``n_steps`` time steps.

    ``build_task`` caches digits tasks per process, so only the first call in
    a process encodes the images.
    """
    from spiketune.data import build_task

    return build_task({"name": "digits", "n_steps": n_steps})


def build_work_model(n_inputs: int, n_outputs: int, hidden: int) -> SNN:
    """Build the network that the fixed training work trains.

    The arguments match what spiketune's built-in model builder passes for
    ``model.hidden = [hidden]`` with default ``model.*`` values, so a trial's
    ``context.model`` is the same network.
    """
    return build_network(n_inputs, n_outputs, (hidden,), dt=1e-3)


def train_fixed_steps(
    model: torch.nn.Module,
    train: TensorDataset,
    steps: int,
    batch_size: int,
    seed: int,
) -> float:
    """Train ``model`` for a fixed number of Adam steps and time it.

    Parameters
    ----------
    model : torch.nn.Module
        A spiketune network whose output has ``spikes`` of shape
        ``[B, T, classes]``.
    train : TensorDataset
        ``(x, y)`` with x ``[n, T, N]`` and integer labels y.
    steps : int
        Optimizer steps; the amount of work does not depend on the data.
    batch_size : int
        Samples per step, drawn with replacement.
    seed : int
        Seed of the batch sampler.

    Returns
    -------
    float
        Seconds spent in the training loop, measured with ``perf_counter``.
    """
    x, y = train.tensors
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    start = time.perf_counter()
    for _ in range(steps):
        index = torch.randint(0, len(x), (batch_size,), generator=generator)
        out = model(x[index])
        loss = F.cross_entropy(out.spikes.sum(dim=1), y[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


class PeakMemory:
    """Sample the resident set size of this process in a background thread.

    Use it as a context manager; ``peak_mib`` is the largest sample and
    ``start_mib``/``end_mib`` the first and last. Without psutil it falls back
    to ``resource.getrusage``, whose peak covers the whole process lifetime.
    """

    def __init__(self, interval_s: float = 0.02) -> None:
        self.interval_s = interval_s
        self.start_mib = float("nan")
        self.end_mib = float("nan")
        self.peak_mib = float("nan")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _rss_mib(self) -> float:
        try:
            import psutil
        except ImportError:
            # ru_maxrss is in KiB on Linux.
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return psutil.Process().memory_info().rss / 2**20

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak_mib = max(self.peak_mib, self._rss_mib())

    def __enter__(self) -> PeakMemory:
        self.start_mib = self.peak_mib = self._rss_mib()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.end_mib = self._rss_mib()
        self.peak_mib = max(self.peak_mib, self.end_mib)


def load_average() -> str:
    """Return the 1, 5 and 15 minute load averages as ``"a/b/c"``."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "n/a"
    return f"{one:.2f}/{five:.2f}/{fifteen:.2f}"


def cpu_model() -> str:
    """Return the CPU model name from ``/proc/cpuinfo``, or platform's guess."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe_machine() -> dict[str, Any]:
    """Return core count, CPU model, load and versions of the libraries timed."""
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "load": load_average(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    for name in ("ray", "optuna", "snntorch"):
        try:
            module = __import__(name)
        except ImportError:
            info[name] = None
        else:
            info[name] = getattr(module, "__version__", "unknown")
    return info


def median(values: Sequence[float]) -> float:
    """Return the median of the finite values, or NaN when there are none."""
    finite = [v for v in values if math.isfinite(v)]
    return statistics.median(finite) if finite else float("nan")


def replace_marked_section(text: str, name: str, body: str) -> str:
    """Replace the text between ``<!-- results:NAME -->`` and its end marker.

    Raises
    ------
    ValueError
        If either marker is missing from ``text``.
    """
    start = f"<!-- results:{name} -->"
    end = f"<!-- /results:{name} -->"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(
            f"README markers {start} ... {end} not found; add them where the "
            "figures belong"
        )
    return pattern.sub(lambda _: f"{start}\n{body.strip()}\n{end}", text, count=1)


def append_record(directory: str | Path, record: dict[str, Any]) -> None:
    """Append one JSON line to ``<directory>/<pid>.jsonl``.

    Each process writes its own file, so concurrent trials never interleave
    lines. Threads of one process share the file, and each line is written
    with one ``write`` call.
    """
    path = Path(directory) / f"{os.getpid()}.jsonl"
    with path.open("a") as out:
        out.write(json.dumps(record) + "\n")


def read_records(directory: str | Path) -> list[dict[str, Any]]:
    """Return every record that :func:`append_record` wrote to ``directory``."""
    records = []
    for path in sorted(Path(directory).glob("*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                records.append(json.loads(line))
    return records
