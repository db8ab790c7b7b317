"""The sweep driver: one object that validates, runs and ranks a Ray Tune sweep."""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import ray
from ray import tune
from ray.tune.search.sample import Categorical, Domain, Float, Integer

from spiketune.data import resolve_data_paths
from spiketune.tuning.builders import resolve_builder
from spiketune.tuning.context import TrialContext, TrialSettings
from spiketune.tuning.footprint import (
    ReleaseTrialStats,
    default_loggers_disabled,
    logger_callbacks,
)
from spiketune.tuning.progress import ProgressCallback, SweepProgress
from spiketune.tuning.results import (
    SWEEP_FILE,
    TEST_FILE,
    atomic_write,
    load_results,
    save_results,
)
from spiketune.tuning.search import build_scheduler, build_searcher
from spiketune.tuning.space import build_search_space, count_grid, flatten, nest
from spiketune.tuning.testing import score_on_test
from spiketune.tuning.trial import run_trial
from spiketune.tuning.validate import validate_space

__all__ = ["SpikeTuner", "SweepResult"]

logger = logging.getLogger(__name__)

FAILED = ("error", "diverged")
RUN_NAME = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass
class SweepResult:
    """Outcome of a sweep: its ranked table and where it lives on disk.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per trial, best first (see
        :func:`spiketune.tuning.results.load_results`).
    run_dir : Path
        The run directory with ``results.csv``, ``results.json`` and the
        trial folders.
    objective, mode : str
        The objective and its direction.
    """

    table: pd.DataFrame
    run_dir: Path
    objective: str
    mode: str

    @property
    def all_failed(self) -> bool:
        """True when no trial produced a finite objective."""
        if self.table.empty:
            return True
        return bool(self.table["status"].isin(FAILED).all())

    @property
    def best(self) -> pd.Series:
        """The best trial's row."""
        return self.table.iloc[0]

    def failure_summary(self) -> str:
        """Return one line per failed trial: id, status and first reason."""
        if self.table.empty:
            return "no trial folder with results or errors was found"
        failed = self.table[self.table["status"].isin(FAILED)]
        return "\n".join(
            f"{row.trial_id}: {row.status}: {row.reason}" for row in failed.itertuples()
        )


class SpikeTuner:
    """Tune an SNN's hyperparameters with Ray Tune.

    Parameters
    ----------
    space : mapping
        Bindings by namespace: dotted keys (``"optim.lr"``) or nested dicts,
        with fixed values, Ray Tune domains or plain specs
        (see :mod:`spiketune.tuning.space`).
    objective : str, default "val_accuracy"
        Reported metric to optimise.
    mode : str, default "max"
        ``"max"`` or ``"min"``.
    num_samples : int, default 8
        Samples of the space; with grid specs each sample covers the whole
        grid, so ``grid size * num_samples`` trials run.
    searcher : str, default "random"
        ``"random"``, ``"grid"`` or ``"tpe"``.
    scheduler : str, default "asha"
        ``"asha"``, ``"median"`` or ``"fifo"``.
    scheduler_params : mapping, optional
        ``grace_period``, ``reduction_factor`` or ``min_samples_required``.
    extra_objectives : sequence of (metric, mode), optional
        Further objectives for multi-objective TPE search.
    model_builder : callable or str, optional
        ``model_builder(model_cfg) -> nn.Module``, or its import path
        ``"package.module:function"``; the built-in networks when omitted.
        ``model_cfg`` contains every ``model.*`` value plus ``n_inputs``,
        ``n_outputs`` and ``dt`` from the data.
    train_fn : callable, optional
        ``train_fn(context)`` replacing the built-in loop; it must call
        ``context.report(metrics)`` once per epoch.
    cpus_per_trial : float, default 1
        CPU share of one trial; also its torch thread count (at least 1).
    gpus_per_trial : float, default 0
        GPU share of one trial; fractions let trials share a card.
    max_concurrent : int, optional
        Cap on trials running at once.
    address : str, optional
        Ray cluster to join (``"auto"`` or ``"host:port"``); a local Ray
        instance when omitted.
    storage_path : str or Path, default "spiketune_runs"
        Parent folder of run directories.
    name : str, optional
        Run directory name; a timestamp when omitted.
    seed : int, default 0
        Sweep seed for the searcher and the trials.
    keep_checkpoints : int, default 2
        Checkpoints kept per trial, best first.
    test_top_k : int, default 3
        Trials scored once on the test split after the sweep.
    tensorboard : bool, default False
        Also write TensorBoard event files for each trial. Off by default
        because Ray Tune's TensorBoard logger keeps a writer thread per trial.
    on_progress : callable, optional
        Called with a :class:`SweepProgress` whenever it changes.
    """

    def __init__(
        self,
        space: Mapping[str, Any],
        *,
        objective: str = "val_accuracy",
        mode: str = "max",
        num_samples: int = 8,
        searcher: str = "random",
        scheduler: str = "asha",
        scheduler_params: Mapping[str, Any] | None = None,
        extra_objectives: Sequence[tuple[str, str]] = (),
        model_builder: Callable[..., Any] | str | None = None,
        train_fn: Callable[[TrialContext], None] | None = None,
        cpus_per_trial: float = 1,
        gpus_per_trial: float = 0,
        max_concurrent: int | None = None,
        address: str | None = None,
        storage_path: str | Path = "spiketune_runs",
        name: str | None = None,
        seed: int = 0,
        keep_checkpoints: int = 2,
        test_top_k: int = 3,
        tensorboard: bool = False,
        on_progress: Callable[[SweepProgress], None] | None = None,
    ) -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"mode: {mode!r} must be 'max' or 'min'")
        _check_count("num_samples", num_samples)
        _check_count("keep_checkpoints", keep_checkpoints)
        _check_count("test_top_k", test_top_k, minimum=0)
        _check_count("seed", seed, minimum=0)
        if max_concurrent is not None:
            _check_count("max_concurrent", max_concurrent)
        _check_share("cpus_per_trial", cpus_per_trial, allow_zero=False)
        _check_share("gpus_per_trial", gpus_per_trial, allow_zero=True)
        if not isinstance(tensorboard, bool):
            raise TypeError(f"tensorboard: {tensorboard!r} is not True or False")
        if name is not None:
            _check_name(name)
        if isinstance(model_builder, str):
            resolve_builder(model_builder)
        self.space = build_search_space(_resolve_paths(space))
        self.objective = objective
        self.mode = mode
        self.num_samples = num_samples
        self.searcher_name = searcher
        self.scheduler_name = scheduler
        self.scheduler_params = dict(scheduler_params or {})
        self.extra_objectives = list(extra_objectives)
        self.model_builder = model_builder
        self.train_fn = train_fn
        self.cpus_per_trial = cpus_per_trial
        self.gpus_per_trial = gpus_per_trial
        self.max_concurrent = max_concurrent
        self.address = address
        self.storage_path = Path(storage_path).expanduser().resolve()
        self.name = name or dt.datetime.now().strftime("sweep-%Y%m%d-%H%M%S")
        self.seed = seed
        self.keep_checkpoints = keep_checkpoints
        self.test_top_k = test_top_k
        self.tensorboard = tensorboard
        self.on_progress = on_progress

        objectives = [objective, *(metric for metric, _ in self.extra_objectives)]
        validate_space(
            self.space,
            builtin_model=model_builder in (None, "builtin"),
            check_objectives=objectives if train_fn is None else [],
            data_copies=max_concurrent or max(1, int(os.cpu_count() or 1)),
        )
        self.max_epochs = self._max_epochs()
        # Build both once now so their errors surface before Ray starts.
        self._make_scheduler()
        self._make_searcher()

    @property
    def run_dir(self) -> Path:
        """Folder of this sweep's trials and results."""
        return self.storage_path / self.name

    @property
    def total_trials(self) -> int:
        """Trials the sweep runs: grid size times ``num_samples``."""
        return count_grid(self.space) * self.num_samples

    def _max_epochs(self) -> int:
        epochs = flatten(self.space).get("trainer.epochs", 10)
        if not isinstance(epochs, int):
            raise ValueError(
                "trainer.epochs must be fixed, not searched, because the "
                f"scheduler needs the full trial length; got {epochs!r}"
            )
        return epochs

    def _make_scheduler(self) -> Any:
        return build_scheduler(
            self.scheduler_name,
            self.scheduler_params,
            metric=self.objective,
            mode=self.mode,
            max_t=self.max_epochs,
        )

    def _make_searcher(self) -> Any:
        return build_searcher(
            self.searcher_name,
            self.space,
            metric=self.objective,
            mode=self.mode,
            seed=self.seed,
            max_concurrent=self.max_concurrent,
            extra_objectives=self.extra_objectives,
        )

    def _settings(self) -> TrialSettings:
        return TrialSettings(
            objective=self.objective,
            mode=self.mode,
            model_builder=self.model_builder,
            train_fn=self.train_fn,
            threads=max(1, int(self.cpus_per_trial)),
            base_seed=self.seed,
            use_gpu=self.gpus_per_trial > 0,
        )

    def _trainable(self) -> Any:
        trainable = tune.with_parameters(run_trial, settings=self._settings())
        resources = {"cpu": self.cpus_per_trial, "gpu": self.gpus_per_trial}
        return tune.with_resources(trainable, resources)

    def _run_config(self, callback: ProgressCallback) -> tune.RunConfig:
        return tune.RunConfig(
            name=self.name,
            storage_path=str(self.storage_path),
            verbose=0,
            callbacks=[
                callback,
                ReleaseTrialStats(),
                *logger_callbacks(self.tensorboard),
            ],
            failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=self.keep_checkpoints,
                checkpoint_score_attribute=self.objective,
                checkpoint_score_order=self.mode,
            ),
        )

    def _tune_config(self) -> tune.TuneConfig:
        # The scheduler and the searcher carry the metric and mode, and the
        # searcher caps concurrency, so TuneConfig sets neither.
        return tune.TuneConfig(
            num_samples=self.num_samples,
            search_alg=self._make_searcher(),
            scheduler=self._make_scheduler(),
            reuse_actors=True,
            trial_dirname_creator=lambda trial: trial.trial_id,
        )

    def connect(self) -> None:
        """Start a local Ray instance, or join the cluster at ``address``.

        Raises
        ------
        ConnectionError
            If a ``host:port`` address does not accept connections.
        """
        if ray.is_initialized():
            return
        _check_reachable(self.address)
        # Progress comes from ProgressCallback; keep Ray's own console
        # reporter and its snapshot-frequency warning quiet.
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        os.environ.setdefault(
            "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0"
        )
        kwargs: dict[str, Any] = {
            "include_dashboard": False,
            "configure_logging": False,
            "log_to_driver": False,
        }
        # Workers import builders given as "module:function" paths from the
        # driver's working folder, as the driver does.
        paths = [os.getcwd(), *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
        kwargs["runtime_env"] = {
            "env_vars": {"PYTHONPATH": os.pathsep.join(p for p in paths if p)}
        }
        if self.address:
            if self.address.startswith(("127.", "localhost")):
                kwargs["_node_ip_address"] = "127.0.0.1"
            ray.init(address=self.address, **kwargs)
        else:
            # "local" starts a private instance even when another Ray cluster
            # runs on this machine; it needs no address beyond loopback.
            ray.init(
                address="local",
                num_cpus=os.cpu_count(),
                _node_ip_address="127.0.0.1",
                **kwargs,
            )
        logger.info("Ray resources: %s", ray.cluster_resources())

    def fit(self, *, resume: bool = False, resume_errored: bool = False) -> SweepResult:
        """Run the sweep, or resume it from its run directory, and rank it.

        Parameters
        ----------
        resume : bool, default False
            Continue an interrupted sweep of the same ``name``: unfinished
            trials run on, finished ones are kept.
        resume_errored : bool, default False
            With ``resume``, also re-run trials that raised.

        Returns
        -------
        SweepResult
            The ranked table. Its ``all_failed`` is True unless some trial
            produced a result.
        """
        self.connect()
        for function in (self.model_builder, self.train_fn):
            _pickle_by_value(function)
        progress = SweepProgress(total=self.total_trials, mode=self.mode)
        if resume:
            progress.done = _count_ended(self.run_dir)
        callback = ProgressCallback(
            progress, self.objective, self.max_epochs, self.on_progress
        )
        tuner = self._make_tuner(callback, resume, resume_errored)
        self._write_meta(state="running")
        started = time.monotonic()
        logger.info("sweep %s started: %d trials", self.name, self.total_trials)
        ProgressCallback.current = callback
        sigint_handler = signal.getsignal(signal.SIGINT)
        try:
            with default_loggers_disabled():
                tuner.fit()
        except KeyboardInterrupt:
            self._write_meta(state="interrupted")
            raise
        finally:
            ProgressCallback.current = None
            # Ray Tune installs its own Ctrl-C handler and leaves it in place
            # after a normal finish; put the previous one back.
            signal.signal(signal.SIGINT, sigint_handler)
        if callback.unfinished:
            # Ray Tune handles Ctrl-C itself and returns early, leaving trials
            # pending or running; treat that as an interruption.
            self._write_meta(state="interrupted")
            logger.warning("sweep %s interrupted; resume it later", self.name)
            raise KeyboardInterrupt
        self._write_meta(state="finished", wall_time_s=time.monotonic() - started)
        return self._finish()

    def _make_tuner(
        self, callback: ProgressCallback, resume: bool, resume_errored: bool
    ) -> tune.Tuner:
        if resume:
            if not tune.Tuner.can_restore(str(self.run_dir)):
                raise FileNotFoundError(
                    f"cannot resume: Ray Tune state not found in {self.run_dir}; run "
                    "the sweep without --resume first"
                )
            logger.info("resuming sweep from %s", self.run_dir)
            return tune.Tuner.restore(
                str(self.run_dir),
                self._trainable(),
                resume_unfinished=True,
                resume_errored=resume_errored,
                param_space=self.space,
            )
        return tune.Tuner(
            self._trainable(),
            param_space=self.space,
            tune_config=self._tune_config(),
            run_config=self._run_config(callback),
        )

    def _write_meta(self, state: str, **extra: Any) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / SWEEP_FILE
        meta = json.loads(path.read_text()) if path.is_file() else {}
        meta.update(
            {
                "name": self.name,
                "objective": self.objective,
                "mode": self.mode,
                "max_epochs": self.max_epochs,
                "searcher": self.searcher_name,
                "scheduler": self.scheduler_name,
                "num_samples": self.num_samples,
                "total_trials": self.total_trials,
                "cpus_per_trial": self.cpus_per_trial,
                "gpus_per_trial": self.gpus_per_trial,
                "seed": self.seed,
                "space": {k: _describe(v) for k, v in flatten(self.space).items()},
                "state": state,
                "updated_at": dt.datetime.now().isoformat(timespec="seconds"),
                **extra,
            }
        )
        atomic_write(path, json.dumps(meta, indent=2, default=str))

    def _finish(self) -> SweepResult:
        table = load_results(self.run_dir)
        if not table.empty and self.test_top_k > 0:
            scores = score_on_test(table, self.test_top_k)
            atomic_write(self.run_dir / TEST_FILE, json.dumps(scores, indent=2))
            table = load_results(self.run_dir)
        save_results(table, self.run_dir)
        result = SweepResult(table, self.run_dir, self.objective, self.mode)
        if result.all_failed:
            logger.error("every trial failed:\n%s", result.failure_summary())
        else:
            logger.info(
                "best trial %s: %s = %s",
                result.best["trial_id"],
                self.objective,
                result.best[self.objective],
            )
        return result


def _count_ended(run_dir: Path) -> int:
    """Count trials of an earlier session that reported their final epoch."""
    try:
        table = load_results(run_dir)
    except (FileNotFoundError, ValueError):
        return 0
    if table.empty:
        return 0
    return int(table["status"].isin(("finished", "diverged")).sum())


def _check_reachable(address: str | None, timeout_s: float = 10.0) -> None:
    """Fail fast when a ``host:port`` cluster address refuses connections."""
    if not address or address in ("auto", "local") or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(
            f"address: {address!r} is not 'auto' or HOST:PORT of a Ray head"
        )
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as err:
        raise ConnectionError(
            f"address: cannot reach a Ray head at {address} ({err}); start it "
            "with 'ray start --head' or fix the address"
        ) from err


def _pickle_by_value(function: Any) -> None:
    """Ship a user function's module by value when workers cannot import it.

    Functions from scripts and test folders live in modules that are not
    installed, so Ray workers could not import them by name.
    """
    if not callable(function):
        return
    module = sys.modules.get(getattr(function, "__module__", ""), None)
    if module is None or module.__name__ == "__main__":
        return
    origin = getattr(module, "__file__", "") or ""
    if "site-packages" in origin or module.__name__.startswith("spiketune"):
        return
    ray.cloudpickle.register_pickle_by_value(module)


def _resolve_paths(space: Mapping[str, Any]) -> dict[str, Any]:
    nested = nest(space)
    if "data" in nested and isinstance(nested["data"], Mapping):
        nested["data"] = resolve_data_paths(nested["data"])
    return nested


def _check_count(key: str, value: Any, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{key}: {value!r} is not an integer >= {minimum}")


def _check_share(key: str, value: Any, *, allow_zero: bool) -> None:
    valid = isinstance(value, int | float) and not isinstance(value, bool)
    if valid and math.isfinite(value) and (value > 0 or (allow_zero and value == 0)):
        return
    bound = ">= 0" if allow_zero else "> 0"
    raise ValueError(f"{key}: {value!r} is not a finite number {bound}")


def _check_name(name: str) -> None:
    # The name becomes one folder under storage_path; it must not leave it.
    if not RUN_NAME.fullmatch(name) or set(name) == {"."}:
        raise ValueError(
            f"name: {name!r} is not a valid run name; use letters, digits, '_', "
            "'-' and '.', without path separators"
        )


def _describe(value: Any) -> Any:
    """Return a value of the space as plain data, domains as YAML-style specs."""
    if isinstance(value, Categorical):
        return {"choice": list(value.categories)}
    if isinstance(value, Float | Integer):
        return _describe_range(value)
    if isinstance(value, Domain):
        return {"sample_from": repr(value)}
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int | float | str | bool | type(None) | list | dict):
        return value
    return repr(value)


def _describe_range(domain: Float | Integer) -> dict[str, list[Any]]:
    sampler = domain.get_sampler()
    q = getattr(sampler, "q", None)
    inner = getattr(sampler, "sampler", sampler)
    name = type(inner).__name__
    if name == "_Normal":
        return {"randn": [inner.mean, inner.sd]}
    kind = "log" if name == "_LogUniform" else ""
    kind += "randint" if isinstance(domain, Integer) else "uniform"
    bounds = [domain.lower, domain.upper]
    if q is not None:
        return {f"q{kind}": [*bounds, q]}
    return {kind: bounds}
