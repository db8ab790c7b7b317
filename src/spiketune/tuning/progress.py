"""Live sweep progress from Ray Tune callbacks."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ray.tune import Callback

__all__ = ["ProgressCallback", "SweepProgress"]

logger = logging.getLogger(__name__)


@dataclass
class SweepProgress:
    """Counts and timings of a running sweep.

    Attributes
    ----------
    total : int
        Trials the sweep will run.
    done : int
        Trials that ended: finished, stopped early, diverged or failed.
    running : int
        Trials running now.
    stopped_early : int
        Trials ended before their last epoch by a scheduler or plateau.
    errors : int
        Trials that raised.
    best : float or None
        Best objective seen so far.
    started : float
        ``time.monotonic()`` when the sweep started.
    """

    total: int
    mode: str
    done: int = 0
    running: int = 0
    stopped_early: int = 0
    errors: int = 0
    best: float | None = None
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed_s(self) -> float:
        """Seconds since the sweep started."""
        return time.monotonic() - self.started

    @property
    def eta_s(self) -> float | None:
        """Estimated seconds left, from the mean time per ended trial."""
        if self.done == 0:
            return None
        return self.elapsed_s / self.done * max(self.total - self.done, 0)

    def offer(self, value: Any) -> None:
        """Update the best objective with a newly reported value."""
        if not isinstance(value, int | float) or not math.isfinite(value):
            return
        if self.best is None:
            self.best = value
        elif self.mode == "max":
            self.best = max(self.best, value)
        else:
            self.best = min(self.best, value)

    def line(self) -> str:
        """Return a one-line summary for a terminal."""
        best = "-" if self.best is None else f"{self.best:.4g}"
        eta = "-" if self.eta_s is None else f"{self.eta_s:.0f}s"
        return (
            f"trials {self.done}/{self.total} done, {self.running} running, "
            f"{self.stopped_early} stopped early, {self.errors} errors | "
            f"best {best} | elapsed {self.elapsed_s:.0f}s, eta {eta}"
        )


class ProgressCallback(Callback):
    """Ray Tune callback that keeps a :class:`SweepProgress` up to date.

    Parameters
    ----------
    progress : SweepProgress
        The counters to update.
    objective : str
        Reported metric name of the objective.
    max_epochs : int
        Epochs of a full trial, to tell early stops from finished trials.
    on_update : callable, optional
        Called with ``progress`` after every change; logs at INFO when
        omitted.
    """

    def __init__(
        self,
        progress: SweepProgress,
        objective: str,
        max_epochs: int,
        on_update: Callable[[SweepProgress], None] | None = None,
    ) -> None:
        self.progress = progress
        self.objective = objective
        self.max_epochs = max_epochs
        self.on_update = on_update
        self._last: dict[str, dict[str, Any]] = {}
        self.unfinished: list[str] = []

    # The callback of the sweep running in this process. Ray Tune restores
    # the callbacks of a resumed sweep from its saved state, so a restored
    # copy forwards every event here.
    current: ProgressCallback | None = None

    def _target(self) -> ProgressCallback:
        current = ProgressCallback.current
        return current if current is not None else self

    def _emit(self) -> None:
        if self.on_update is not None:
            self.on_update(self.progress)

    def _on_step_end(self, iteration, trials, **info) -> None:
        # Ray Tune catches Ctrl-C and leaves its loop after the current step,
        # so trials still pending or running after the last step mean the
        # sweep was interrupted.
        self.unfinished = [
            t.trial_id for t in trials if t.status not in ("TERMINATED", "ERROR")
        ]

    def _on_trial_start(self, iteration, trials, trial, **info) -> None:
        self.progress.running += 1
        self._emit()

    def _on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        self._last[trial.trial_id] = result
        self.progress.offer(result.get(self.objective))
        self._emit()

    def _on_trial_complete(self, iteration, trials, trial, **info) -> None:
        result = self._last.pop(trial.trial_id, {})
        self.progress.running = max(self.progress.running - 1, 0)
        self.progress.done += 1
        status = result.get("trial_status")
        if status == "plateau" or (
            status == "running" and result.get("epoch", 0) < self.max_epochs
        ):
            self.progress.stopped_early += 1
        logger.info(
            "trial %s ended (%s) after %s epochs, %s = %s",
            trial.trial_id,
            status,
            result.get("epoch"),
            self.objective,
            result.get(self.objective),
        )
        self._emit()

    def _on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._last.pop(trial.trial_id, None)
        self.progress.running = max(self.progress.running - 1, 0)
        self.progress.done += 1
        self.progress.errors += 1
        logger.error("trial %s failed; see its error.txt", trial.trial_id)
        self._emit()

    def on_step_end(self, iteration, trials, **info) -> None:
        self._target()._on_step_end(iteration, trials, **info)

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self._target()._on_trial_start(iteration, trials, trial, **info)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        self._target()._on_trial_result(iteration, trials, trial, result, **info)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._target()._on_trial_complete(iteration, trials, trial, **info)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._target()._on_trial_error(iteration, trials, trial, **info)
