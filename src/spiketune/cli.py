"""The ``spiketune`` command: run sweeps, show results, export networks."""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import pandas as pd

from spiketune import __version__

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

logger = logging.getLogger("spiketune.cli")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # exit 2 with usage, like argparse
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every subcommand."""
    parser = _Parser(
        prog="spiketune",
        description="Train hardware-aware spiking networks and tune them on Ray Tune.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log debug detail to stderr"
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run a sweep from a YAML config")
    run.add_argument("config", help="path of the sweep YAML file")
    _add_run_options(run)
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted sweep in the config's run directory",
    )
    run.add_argument(
        "--resume-errored",
        action="store_true",
        help="with --resume, also re-run trials that raised",
    )

    demo = sub.add_parser(
        "demo",
        help="hardware-aware sweep on the built-in handwritten digits",
        description=(
            "Tune a chip-constrained LIF network (gen1 profile: clipped, "
            "quantised, sign-annealed weights with mismatch) on scikit-learn's "
            "8x8 digits with ASHA, then score the best trials on the test split."
        ),
    )
    _add_run_options(demo)

    results = sub.add_parser("results", help="print the ranked table of a run")
    results.add_argument(
        "run_dir", help="run directory of a finished or interrupted sweep"
    )
    results.add_argument(
        "--top", type=_positive_int, default=10, help="rows to show (default 10)"
    )
    results.add_argument(
        "--sort", help="metric column to rank by (default: the objective)"
    )
    results.add_argument(
        "--pareto", action="store_true", help="show only Pareto-front trials"
    )
    results.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        default="table",
        help="output format (default table)",
    )

    export = sub.add_parser(
        "export", help="write a trial's network as checkpoint, JSON and NIR"
    )
    export.add_argument("run_dir", help="run directory")
    export.add_argument("--trial", help="trial id (default: the best trial)")
    export.add_argument("--out", help="output folder (default RUN_DIR/export/TRIAL_ID)")

    report = sub.add_parser("report", help="write the HTML report of a run")
    report.add_argument("run_dir", help="run directory")
    report.add_argument("--out", help="output folder (default RUN_DIR/report)")
    report.add_argument(
        "--open", action="store_true", help="open the page in a web browser"
    )
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trials", type=int, help="samples of the space (num_samples)")
    parser.add_argument("--cpus-per-trial", type=float, help="CPU share of each trial")
    parser.add_argument("--gpus-per-trial", type=float, help="GPU share of each trial")
    parser.add_argument("--max-concurrent", type=int, help="trials running at once")
    parser.add_argument(
        "--address", help="Ray cluster to join: 'auto' or HOST:PORT (default: local)"
    )
    parser.add_argument("--output-dir", help="parent folder of run directories")
    parser.add_argument("--name", help="run directory name")
    parser.add_argument(
        "--no-report", action="store_true", help="skip the HTML report at the end"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # Progress and results come from spiketune itself; Ray's and Optuna's
        # own console messages only repeat them.
        for name in ("ray", "optuna"):
            logging.getLogger(name).setLevel(logging.ERROR)
    handlers = {
        "run": _cmd_run,
        "demo": _cmd_demo,
        "results": _cmd_results,
        "export": _cmd_export,
        "report": _cmd_report,
    }
    from spiketune.config import ConfigError

    try:
        return handlers[args.command](args)
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\ninterrupted; resume with --resume", file=sys.stderr)
        return 130


def _cmd_run(args: argparse.Namespace) -> int:
    from spiketune.config import load_config

    config = load_config(args.config)
    return _run_sweep(config, args, resume=args.resume, default_name=None)


def _cmd_demo(args: argparse.Namespace) -> int:
    from spiketune.config import load_config

    with resources.as_file(
        resources.files("spiketune") / "configs" / "demo.yaml"
    ) as path:
        config = load_config(path)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return _run_sweep(config, args, resume=False, default_name=f"demo-{stamp}")


def _run_sweep(config, args, *, resume: bool, default_name: str | None) -> int:
    from spiketune.config import ConfigError, save_resolved_config
    from spiketune.tuning import SpikeTuner

    overrides = {
        "cpus_per_trial": args.cpus_per_trial,
        "gpus_per_trial": args.gpus_per_trial,
        "max_concurrent": args.max_concurrent,
        "address": args.address,
    }
    resources_cfg = _validated_resources(config, overrides)
    num_samples = args.trials if args.trials is not None else config.budget.num_samples
    if num_samples < 1:
        raise ConfigError(f"--trials: {num_samples} is not a positive integer")
    if args.name is not None and not args.name:
        raise ConfigError("--name: the run name must not be empty")
    name = args.name or default_name or config.name
    output_dir = Path(args.output_dir or config.output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise ConfigError(f"output_dir: {output_dir} exists and is not a folder")
    run_dir = output_dir / name
    if run_dir.exists() and not resume:
        raise ConfigError(
            f"run directory {run_dir} exists; pass --resume to continue it or "
            "--name to start a new run"
        )

    printer = _ProgressPrinter()
    try:
        tuner = SpikeTuner(
            config.bindings(),
            objective=config.objective.metric,
            mode=config.objective.mode,
            num_samples=num_samples,
            searcher=config.searcher,
            scheduler=config.scheduler.name,
            scheduler_params=config.scheduler.params(),
            extra_objectives=[(o.metric, o.mode) for o in config.extra_objectives],
            model_builder=config.model_builder,
            cpus_per_trial=resources_cfg.cpus_per_trial,
            gpus_per_trial=resources_cfg.gpus_per_trial,
            max_concurrent=resources_cfg.max_concurrent,
            address=resources_cfg.address,
            storage_path=output_dir,
            name=name,
            seed=config.seed,
            keep_checkpoints=config.budget.keep_checkpoints,
            test_top_k=config.budget.test_top_k,
            tensorboard=config.tensorboard,
            on_progress=printer,
        )
    except (ValueError, TypeError, FileNotFoundError) as err:
        raise ConfigError(f"{getattr(args, 'config', 'demo')}: {err}") from err

    try:
        tuner.connect()
        save_resolved_config(config, tuner.run_dir)
        print(f"sweep {name}: {tuner.total_trials} trials -> {tuner.run_dir}")
        result = tuner.fit(
            resume=resume, resume_errored=getattr(args, "resume_errored", False)
        )
    except ConnectionError as err:
        raise ConfigError(str(err)) from err
    except KeyboardInterrupt:
        if not resume and not any(run_dir.glob("experiment_state-*.json")):
            # Nothing ran yet, so drop the folder; a rerun then starts clean.
            shutil.rmtree(run_dir, ignore_errors=True)
            print("\ninterrupted before any trial started", file=sys.stderr)
            return 130
        raise
    printer.finish()
    if result.all_failed:
        print("every trial failed:", file=sys.stderr)
        print(result.failure_summary() or "no trial reported", file=sys.stderr)
        return EXIT_FAILED

    print()
    print(_format_table(result.table, result.objective, top=5))
    _print_test_score(result.table)
    print(f"\nresults: {result.run_dir / 'results.csv'}")
    if not args.no_report:
        _write_report(result.run_dir, None)
    return EXIT_OK


def _validated_resources(config, overrides: dict):
    """Apply command-line overrides and validate them like the config file."""
    from pydantic import ValidationError

    from spiketune.config import ConfigError, ResourcesConfig

    merged = config.resources.model_dump()
    merged.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return ResourcesConfig.model_validate(merged)
    except ValidationError as err:
        first = err.errors()[0]
        option = "--" + str(first["loc"][0]).replace("_", "-")
        raise ConfigError(
            f"{option}: {first.get('input')!r} is invalid: {first['msg']}"
        ) from err


def _print_test_score(table: pd.DataFrame) -> None:
    if "test_accuracy" not in table:
        return
    best = table.iloc[0]
    if pd.notna(best.get("test_accuracy")):
        print(
            f"best trial {best['trial_id']}: test accuracy "
            f"{best['test_accuracy']:.4f} (scored once, after selection)"
        )


def _write_report(run_dir: Path, out: str | None) -> Path | None:
    try:
        from spiketune.report import write_report
    except ImportError:
        return None
    path = write_report(run_dir, out_dir=out)
    print(f"report: {path}")
    return path


class _ProgressPrinter:
    """Print progress on one updating line on a terminal, else every 10 s."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last_print = 0.0
        self.last_line = ""

    def __call__(self, progress) -> None:
        line = progress.line()
        now = time.monotonic()
        if self.tty:
            sys.stderr.write("\r" + line.ljust(len(self.last_line)))
            sys.stderr.flush()
        elif line != self.last_line and now - self.last_print >= 10:
            print(line, file=sys.stderr, flush=True)
            self.last_print = now
        self.last_line = line

    def finish(self) -> None:
        if self.last_line:
            end = "\n" if self.tty else ""
            sys.stderr.write(end + self.last_line + "\n")


def _summary_columns(table: pd.DataFrame, objective: str) -> list[str]:
    preferred = [
        "rank",
        "trial_id",
        "status",
        objective,
        "test_accuracy",
        "val_energy_per_sample_j",
        "val_spikes_per_sample",
        "epochs",
        "pareto_energy",
    ]
    columns = [c for c in preferred if c in table]
    tuned = [c for c in table.columns if c.startswith("config/")]
    varying = [c for c in tuned if table[c].astype(str).nunique() > 1]
    return columns + varying


def _format_table(table: pd.DataFrame, objective: str, top: int) -> str:
    shown = table[_summary_columns(table, objective)].head(top).copy()
    shown.columns = [c.removeprefix("config/") for c in shown.columns]
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        return shown.to_string(index=False, float_format=lambda v: f"{v:.4g}")


def _cmd_results(args: argparse.Namespace) -> int:
    from spiketune.tuning.results import load_results, read_sweep_meta

    try:
        meta = read_sweep_meta(args.run_dir)
        table = load_results(args.run_dir)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED
    if table.empty:
        print(f"error: {args.run_dir} has no trial results yet", file=sys.stderr)
        return EXIT_FAILED
    objective = meta["objective"]
    if args.sort:
        if args.sort not in table:
            valid = ", ".join(
                c for c in table.columns if c.startswith(("val_", "test_"))
            )
            print(
                f"error: --sort {args.sort!r} is not a column; try: {valid}",
                file=sys.stderr,
            )
            return EXIT_USAGE
        ascending = args.sort.endswith(("loss", "_j", "per_sample", "mse"))
        table = table.sort_values(args.sort, ascending=ascending, na_position="last")
    if args.pareto:
        table = table[table["pareto_energy"]]
    if args.format == "csv":
        print(table.head(args.top).to_csv(index=False), end="")
    elif args.format == "json":
        print(table.head(args.top).to_json(orient="records", indent=2))
    else:
        print(_format_table(table, args.sort or objective, top=args.top))
    return EXIT_OK


def _cmd_export(args: argparse.Namespace) -> int:
    from spiketune.export import export_checkpoint
    from spiketune.tuning.results import load_results

    try:
        table = load_results(args.run_dir)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED
    with_checkpoint = table[table["checkpoint"].notna()] if not table.empty else table
    if args.trial:
        row = with_checkpoint[with_checkpoint["trial_id"] == args.trial]
        if row.empty:
            valid = ", ".join(with_checkpoint["trial_id"].head(10))
            print(
                f"error: trial {args.trial!r} has no checkpoint in {args.run_dir}; "
                f"trials with one: {valid}",
                file=sys.stderr,
            )
            return EXIT_USAGE
    else:
        row = with_checkpoint.head(1)
        if row.empty:
            print(
                f"error: no trial in {args.run_dir} has a checkpoint", file=sys.stderr
            )
            return EXIT_FAILED
    trial = row.iloc[0]
    out = Path(args.out or Path(args.run_dir) / "export" / trial["trial_id"])
    for path in export_checkpoint(trial["checkpoint"], out):
        print(path)
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    from spiketune.tuning.results import read_sweep_meta

    try:
        read_sweep_meta(args.run_dir)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED
    path = _write_report(Path(args.run_dir), args.out)
    if path is None:
        print("error: the report module is not available", file=sys.stderr)
        return EXIT_FAILED
    if args.open:
        import webbrowser

        webbrowser.open(path.resolve().as_uri())
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
