"""Measure forward+backward time of a LIF network against snnTorch on CPU.

Every configuration times one training step (forward pass, loss, backward pass)
of a network ``n_in - hidden - hidden - n_out`` on a batch ``[B, T, n_in]`` of
random input spikes, for four implementations in the same process and with the
same thread count:

* spiketune software layers (``build_network``), fused sequence path;
* spiketune hardware-aware layers (``build_network(profile="gen1")``, training
  mode, so weights are clipped, quantised and perturbed by mismatch);
* snnTorch: ``nn.Linear`` plus ``snn.Leaky`` called once per time step;
* the matmul bound: the same forward and backward matrix products of the
  network done as single large ``torch.matmul`` calls, with no neuron dynamics.

The printed ratio is snnTorch time over spiketune time, so 2.0 means spiketune
is twice as fast. The bound fraction is matmul time over spiketune time.

Examples
--------
``python benchmarks/lif_throughput.py`` times the default 700-256-256-20,
T = 100, B = 128 network. ``--sweep`` adds hidden sizes 64, 256 and 1024,
T from 50 to 500 and B from 32 to 256. ``--quick`` uses tiny sizes.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn

from spiketune.network import SNN, build_network
from spiketune.neurons.fused import set_fused_enabled

TAU = 0.02
DT = 1e-3
SLOPE = 25.0


@dataclass
class Config:
    """One network and batch size to time."""

    n_in: int
    hidden: int
    n_out: int
    steps: int
    batch: int


@dataclass
class Result:
    """Median seconds per training step for each implementation."""

    config: Config
    spiketune_s: float
    hardware_s: float
    snntorch_s: float | None
    matmul_s: float

    @property
    def ratio(self) -> float | None:
        if self.snntorch_s is None:
            return None
        return self.snntorch_s / self.spiketune_s

    @property
    def hardware_ratio(self) -> float | None:
        if self.snntorch_s is None:
            return None
        return self.snntorch_s / self.hardware_s

    @property
    def bound_fraction(self) -> float:
        return self.matmul_s / self.spiketune_s


def _loss(spikes: torch.Tensor, mem: torch.Tensor) -> torch.Tensor:
    # Spike count and membrane terms, so both outputs carry gradient.
    return spikes.sum(dim=1).square().mean() + mem.square().mean()


def _time_interleaved(
    steps: dict[str, Callable[[], None]], repeats: int, warmup: int
) -> dict[str, float]:
    """Return the median seconds of each step, timed in alternating rounds.

    Each round times every implementation once, so a burst of load from other
    processes slows all of them alike instead of one.
    """
    for _ in range(warmup):
        for step in steps.values():
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def _spiketune_step(net: SNN, inputs: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        net.zero_grad(set_to_none=True)
        out = net(inputs)
        _loss(out.spikes, out.mem).backward()

    return step


class _SnntorchNet(nn.Module):
    """The usual snnTorch idiom: a Python loop calling Linear and Leaky."""

    def __init__(self, sizes: list[int]) -> None:
        import snntorch as snn
        from snntorch import surrogate

        super().__init__()
        beta = math.exp(-DT / TAU)
        # No bias, so the matrix work equals spiketune's bias-free Dense.
        self.fcs = nn.ModuleList(
            nn.Linear(n_in, n_out, bias=False)
            for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.lifs = nn.ModuleList(
            snn.Leaky(beta=beta, spike_grad=surrogate.fast_sigmoid(slope=SLOPE))
            for _ in self.fcs
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mems = [lif.reset_mem() for lif in self.lifs]
        spikes_out, mems_out = [], []
        for t in range(x.shape[1]):
            hidden = x[:, t]
            for i, (fc, lif) in enumerate(zip(self.fcs, self.lifs, strict=True)):
                hidden, mems[i] = lif(fc(hidden), mems[i])
            spikes_out.append(hidden)
            mems_out.append(mems[-1])
        return torch.stack(spikes_out, dim=1), torch.stack(mems_out, dim=1)


def _snntorch_step(net: _SnntorchNet, inputs: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        net.zero_grad(set_to_none=True)
        spikes, mem = net(inputs)
        _loss(spikes, mem).backward()

    return step


def _matmul_step(sizes: list[int], rows: int) -> Callable[[], None]:
    """Build the forward and backward products of the network as large matmuls."""
    products = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        x = torch.rand(rows, n_in)
        w = torch.rand(n_in, n_out)
        grad_y = torch.rand(rows, n_out)
        products.append((x, w))  # forward: currents of every step
        products.append((x.t(), grad_y))  # backward: weight gradient
        if i > 0:
            # Backward: gradient to the previous layer's spikes. The input
            # layer needs none because the input does not require grad.
            products.append((grad_y, w.t()))

    def step() -> None:
        for a, b in products:
            torch.matmul(a, b)

    return step


def _input_spikes(config: Config, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    shape = (config.batch, config.steps, config.n_in)
    return (torch.rand(shape, generator=generator) < 0.05).float()


def time_config(
    config: Config, repeats: int, warmup: int, with_snntorch: bool, seed: int = 0
) -> Result:
    """Time one configuration for every implementation in this process."""
    torch.manual_seed(seed)
    inputs = _input_spikes(config, seed)
    hidden = (config.hidden, config.hidden)
    # weight_scale 3 makes the hidden layers spike at a few percent per step.
    software = build_network(
        config.n_in, config.n_out, hidden, tau=TAU, dt=DT, weight_scale=3.0
    )
    hardware = build_network(
        config.n_in, config.n_out, hidden, tau=TAU, dt=DT, weight_scale=3.0,
        profile="gen1",
    )  # fmt: skip
    hardware.train()
    sizes = [config.n_in, *hidden, config.n_out]

    rows = config.batch * config.steps
    steps = {
        "spiketune": _spiketune_step(software, inputs),
        "hardware": _spiketune_step(hardware, inputs),
        "matmul": _matmul_step(sizes, rows),
    }
    if with_snntorch:
        steps["snntorch"] = _snntorch_step(_SnntorchNet(sizes), inputs)
    median = _time_interleaved(steps, repeats, warmup)
    spiketune_s, hardware_s = median["spiketune"], median["hardware"]
    snntorch_s = median.get("snntorch")
    matmul_s = median["matmul"]
    return Result(config, spiketune_s, hardware_s, snntorch_s, matmul_s)


def sweep_configs(base: Config) -> list[Config]:
    """Return the base case and one-at-a-time changes of hidden, T and B."""
    configs = [base]
    for hidden in (64, 256, 1024):
        configs.append(Config(base.n_in, hidden, base.n_out, base.steps, base.batch))
    for steps in (50, 200, 500):
        configs.append(Config(base.n_in, base.hidden, base.n_out, steps, base.batch))
    for batch in (32, 64, 256):
        configs.append(Config(base.n_in, base.hidden, base.n_out, base.steps, batch))
    unique = []
    for config in configs:
        if config not in unique:
            unique.append(config)
    return unique


def _format_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def print_results(results: list[Result]) -> None:
    """Print one table row per configuration."""
    header = (
        f"{'hidden':>6} {'T':>4} {'B':>4} {'spiketune ms':>12} {'hardware ms':>11} "
        f"{'snntorch ms':>11} {'ratio':>6} {'hw ratio':>8} {'matmul ms':>9} "
        f"{'bound':>6}"
    )
    print(header)
    for result in results:
        config = result.config
        snntorch_ms = (
            "n/a" if result.snntorch_s is None else f"{result.snntorch_s * 1e3:.1f}"
        )
        print(
            f"{config.hidden:>6} {config.steps:>4} {config.batch:>4} "
            f"{result.spiketune_s * 1e3:>12.1f} {result.hardware_s * 1e3:>11.1f} "
            f"{snntorch_ms:>11} {_format_ratio(result.ratio):>6} "
            f"{_format_ratio(result.hardware_ratio):>8} "
            f"{result.matmul_s * 1e3:>9.1f} {result.bound_fraction:>6.0%}"
        )


def describe_machine() -> dict[str, object]:
    """Return the CPU model, core count, thread count and library versions."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info: dict[str, object] = {
        "cpu": cpu,
        "logical_cpus": torch.multiprocessing.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    try:
        import snntorch

        info["snntorch"] = snntorch.__version__
    except ImportError:
        info["snntorch"] = None
    return info


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 1 repeat")
    parser.add_argument(
        "--sweep", action="store_true", help="also vary hidden size, T and B"
    )
    parser.add_argument("--hidden", type=int, default=256, help="hidden layer size")
    parser.add_argument("--steps", type=int, default=100, help="time steps T")
    parser.add_argument("--batch", type=int, default=128, help="batch size B")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats")
    parser.add_argument("--warmup", type=int, default=1, help="untimed repeats")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument(
        "--no-snntorch", action="store_true", help="skip the snnTorch reference"
    )
    parser.add_argument(
        "--plain", action="store_true", help="time the unfused per-step LIF loop"
    )
    parser.add_argument("--json", default=None, help="also write results to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[Result]:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.plain:
        set_fused_enabled(False)
    if args.quick:
        base = Config(n_in=20, hidden=16, n_out=4, steps=10, batch=4)
        args.repeats, args.warmup = 1, 0
    else:
        base = Config(700, args.hidden, 20, args.steps, args.batch)

    with_snntorch = not args.no_snntorch
    if with_snntorch:
        try:
            import snntorch  # noqa: F401
        except ImportError:
            print("snntorch is not installed; timing spiketune only")
            with_snntorch = False

    machine = describe_machine()
    print(", ".join(f"{key}={value}" for key, value in machine.items()))
    configs = [base]
    if args.sweep:
        configs = sweep_configs(base)
        if args.quick:
            configs = [
                Config(base.n_in, h, base.n_out, base.steps, base.batch)
                for h in (8, 16)
            ]
    results = []
    for config in configs:
        results.append(time_config(config, args.repeats, args.warmup, with_snntorch))
    print_results(results)

    if args.json:
        records = [
            asdict(r)
            | {
                "ratio": r.ratio,
                "hardware_ratio": r.hardware_ratio,
                "bound_fraction": r.bound_fraction,
            }
            for r in results
        ]
        with open(args.json, "w") as out:
            json.dump({"machine": machine, "results": records}, out, indent=2)
    return results


if __name__ == "__main__":
    main()
