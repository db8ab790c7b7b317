"""Run every benchmark and write its figures into ``benchmarks/README.md``.

Each benchmark runs in its own Python process and writes a JSON record. This
script then replaces the text between ``<!-- results:NAME -->`` and
``<!-- /results:NAME -->`` in the README with tables built from those records,
for NAME in ``run_all``, ``lif_throughput``, ``tuning_overhead`` and
``search_efficiency``.

Examples
--------
``python benchmarks/run_all.py --quick`` takes a few minutes on two cores.
``python benchmarks/run_all.py`` runs the full sizes (hours on two cores).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import search_efficiency  # noqa: E402
import tuning_overhead  # noqa: E402

HERE = common.BENCHMARK_DIR


def benchmark_commands(quick: bool) -> dict[str, list[str]]:
    """Return the script arguments of each benchmark, without ``--json``."""
    if quick:
        return {
            "lif_throughput": ["lif_throughput.py", "--quick", "--sweep"],
            "tuning_overhead": ["tuning_overhead.py", "--quick", "--profile"],
            "search_efficiency": ["search_efficiency.py", "--quick"],
        }
    return {
        "lif_throughput": ["lif_throughput.py", "--sweep"],
        # One round of the full sizes takes about 50 minutes on two cores;
        # run tuning_overhead.py alone for its default three rounds.
        "tuning_overhead": ["tuning_overhead.py", "--rounds", "1", "--profile"],
        "search_efficiency": ["search_efficiency.py"],
    }


def run_benchmark(arguments: list[str], json_path: Path) -> float:
    """Run one benchmark script, streaming its output, and return its seconds.

    Raises
    ------
    RuntimeError
        If the script exits with a non-zero status.
    """
    command = [sys.executable, str(HERE / arguments[0]), *arguments[1:]]
    command += ["--json", str(json_path)]
    print("$", " ".join(command), flush=True)
    started = time.perf_counter()
    completed = subprocess.run(command, check=False)
    if completed.returncode != 0:
        raise RuntimeError(
            f"{arguments[0]} failed with exit status {completed.returncode}; "
            "its output is above"
        )
    return time.perf_counter() - started


def lif_markdown(record: dict[str, Any]) -> str:
    """Return the lif_throughput figures as a Markdown table."""
    lines = [
        "| hidden | T | B | spiketune ms | hardware ms | snnTorch ms | ratio | bound |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in record["results"]:
        config = row["config"]
        snntorch = row["snntorch_s"]
        snntorch_ms = "n/a" if snntorch is None else f"{snntorch * 1e3:.2f}"
        ratio = "n/a" if row["ratio"] is None else f"{row['ratio']:.2f}x"
        lines.append(
            f"| {config['hidden']} | {config['steps']} | {config['batch']} "
            f"| {row['spiketune_s'] * 1e3:.2f} | {row['hardware_s'] * 1e3:.2f} "
            f"| {snntorch_ms} | {ratio} | {row['bound_fraction']:.0%} |"
        )
    return "\n".join(lines)


def overhead_markdown(record: dict[str, Any], command: str) -> str:
    """Return the tuning_overhead figures, ratios and breakdown as Markdown."""
    workload = record["workload"]
    rows = record["rows"]
    lines = [
        f"`{command}`: N = {', '.join(map(str, record['sizes']))}, "
        f"{record['rounds']} round(s), {workload['steps']} Adam steps per trial "
        f"(64 - {workload['hidden']} - 10 LIF network, batch "
        f"{workload['batch_size']}, T = {workload['n_steps']}). Median over "
        "rounds; the load column lists the load average before each sweep.",
        "",
        tuning_overhead.markdown_table(rows),
        "",
    ]
    largest = max(record["sizes"])
    by_name = {r["framework"]: r for r in rows if r["n_trials"] == largest}
    if "spiketune" in by_name and "pool" in by_name:
        spiketune, pool = by_name["spiketune"], by_name["pool"]
        lines.append(
            f"At N = {largest}, spiketune's wall time is "
            f"{spiketune['wall_s'] / pool['wall_s']:.2f}x the bare pool's, and its "
            f"utilisation {spiketune['utilisation']:.0%} against the pool's "
            f"{pool['utilisation']:.0%}."
        )
        for other in ("ray", "ray_reuse", "optuna"):
            if other in by_name:
                ratio = spiketune["wall_s"] / by_name[other]["wall_s"]
                lines.append(f"spiketune / {other} wall time: {ratio:.2f}x.")
        lines.append("")
    slopes = record["memory_growth_kib_per_trial"]
    if slopes:
        growth = ", ".join(f"{k} {v:.0f}" for k, v in slopes.items())
        lines.append(
            "Driver peak RSS growth per extra trial, largest against smallest N "
            f"(KiB): {growth}."
        )
        lines.append("")
    profile = record.get("profile")
    if profile:
        components = profile["components"]
        lines.append(
            "spiketune per-trial steps timed in one process (median s): "
            + ", ".join(
                f"{k.removesuffix('_s')} {v:.3f}"
                for k, v in components.items()
                if k.endswith("_s")
            )
            + f" (load_results and save_results for {components['n_results']} "
            "trials)."
        )
        buckets = profile["driver_buckets_s"]
        lines.append(
            "spiketune driver, cumulative seconds under cProfile: "
            + ", ".join(f"{k} {v:.2f}" for k, v in buckets.items())
            + "."
        )
    return "\n".join(lines)


def search_markdown(record: dict[str, Any], command: str) -> str:
    """Return the search_efficiency figures and the target verdict as Markdown."""
    budget = record["budget"]
    grid_shape = [len(budget[k]) for k in ("lr_grid", "tau_grid", "hidden_grid")]
    grid_size = grid_shape[0] * grid_shape[1] * grid_shape[2]
    return "\n".join(
        [
            f"`{command}`: seeds {', '.join(map(str, budget['seeds']))}; grid "
            f"{' x '.join(map(str, grid_shape))} = {grid_size} trials of "
            f"{budget['epochs']} epochs; random search the same count; the ASHA "
            f"methods {budget['asha_samples']} trials, grace period "
            f"{budget['grace_period']}, reduction factor "
            f"{budget['reduction_factor']}.",
            "",
            search_efficiency.markdown_table(record["summary"]),
            "",
            record["verdict"] + ".",
            "",
            "![best validation accuracy against cumulative epochs]"
            "(search_efficiency.png)",
        ]
    )


def run_all_markdown(
    command: str, machine: dict[str, Any], durations: dict[str, float]
) -> str:
    """Return the command, date, machine and durations of this run."""
    date = machine["date"]
    parts = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in durations.items())
    return "\n".join(
        [
            f"Last run: `{command}` on {date}, {sum(durations.values()) / 60:.1f} "
            f"min in total ({parts}).",
            "",
            f'Machine: nproc = {machine["nproc"]}, CPU "{machine["cpu"]}", '
            f"Python {machine['python']}, torch {machine['torch']}, ray "
            f"{machine['ray']}, optuna {machine['optuna']}, snnTorch "
            f"{machine['snntorch']}. Load average at the start: {machine['load']}.",
        ]
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, minutes")
    parser.add_argument(
        "--readme",
        default=str(HERE / "README.md"),
        help="README whose marked sections receive the figures",
    )
    parser.add_argument(
        "--keep-json", default=None, help="folder to keep each benchmark's JSON in"
    )
    parser.add_argument(
        "--from-json",
        default=None,
        help="run nothing; rewrite the README from a --keep-json folder",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    command = "python benchmarks/run_all.py" + (" --quick" if args.quick else "")
    machine = common.describe_machine()
    machine["date"] = dt.datetime.now().isoformat(timespec="minutes")
    records: dict[str, dict[str, Any]] = {}
    durations: dict[str, float] = {}
    commands = benchmark_commands(args.quick)
    if args.from_json:
        folder = Path(args.from_json)
        for name in commands:
            records[name] = json.loads((folder / f"{name}.json").read_text())
        durations = json.loads((folder / "durations.json").read_text())
        machine = json.loads((folder / "machine.json").read_text())
    else:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(args.keep_json) if args.keep_json else Path(tmp)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "machine.json").write_text(json.dumps(machine))
            for name, arguments in commands.items():
                json_path = folder / f"{name}.json"
                durations[name] = run_benchmark(arguments, json_path)
                records[name] = json.loads(json_path.read_text())
            (folder / "durations.json").write_text(json.dumps(durations))

    def shown(name: str) -> str:
        return "python benchmarks/" + " ".join(commands[name])

    blocks = {
        "run_all": run_all_markdown(command, machine, durations),
        "lif_throughput": f"`{shown('lif_throughput')}`:\n\n"
        + lif_markdown(records["lif_throughput"]),
        "tuning_overhead": overhead_markdown(
            records["tuning_overhead"], shown("tuning_overhead")
        ),
        "search_efficiency": search_markdown(
            records["search_efficiency"], shown("search_efficiency")
        ),
    }
    readme = Path(args.readme)
    text = readme.read_text()
    for name, body in blocks.items():
        text = common.replace_marked_section(text, name, body)
    readme.write_text(text)
    print(f"wrote figures to {readme}; total {sum(durations.values()) / 60:.1f} min")


if __name__ == "__main__":
    main()
