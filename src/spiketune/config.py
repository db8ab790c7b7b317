"""Sweep configuration files: load, validate with pydantic, save resolved.

A sweep file is one YAML mapping. Its top-level keys set how the sweep runs
(objective, searcher, scheduler, resources, budget, output folder, seed) and
one key per namespace (``data``, ``model``, ``loss``, ...) binds values that
are fixed or searched. Every error raises :class:`ConfigError` naming the
file, the dotted key, the value and what is accepted.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from spiketune.tuning.defaults import with_defaults
from spiketune.tuning.keys import NAMESPACES

__all__ = ["ConfigError", "SweepConfig", "load_config", "save_resolved_config"]


class ConfigError(ValueError):
    """A sweep config is invalid; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SchedulerConfig(_Strict):
    """Trial scheduler and its parameters."""

    name: Literal["asha", "median", "fifo"] = "asha"
    grace_period: int = Field(default=1, ge=1)
    reduction_factor: float = Field(default=2, gt=1)
    min_samples_required: int = Field(default=3, ge=1)

    def params(self) -> dict[str, Any]:
        """Return the keys that apply to the chosen scheduler."""
        if self.name == "asha":
            return {
                "grace_period": self.grace_period,
                "reduction_factor": self.reduction_factor,
            }
        if self.name == "median":
            return {
                "grace_period": self.grace_period,
                "min_samples_required": self.min_samples_required,
            }
        return {}


class ResourcesConfig(_Strict):
    """Per-trial resources and where Ray runs."""

    cpus_per_trial: float = Field(default=1, gt=0)
    gpus_per_trial: float = Field(default=0, ge=0)
    max_concurrent: int | None = Field(default=None, ge=1)
    address: str | None = None


class BudgetConfig(_Strict):
    """How many trials run and what is kept of them."""

    num_samples: int = Field(default=8, ge=1)
    keep_checkpoints: int = Field(default=2, ge=1)
    test_top_k: int = Field(default=3, ge=0)


class ObjectiveConfig(_Strict):
    """A metric and its direction."""

    metric: str = "val_accuracy"
    mode: Literal["max", "min"] = "max"


class SweepConfig(_Strict):
    """A whole sweep: how it runs and the bindings of every namespace."""

    name: str = Field(default="sweep", pattern=r"^[A-Za-z0-9_.-]+$")
    output_dir: str = "spiketune_runs"
    seed: int = Field(default=0, ge=0)
    tensorboard: StrictBool = False
    objective: ObjectiveConfig = ObjectiveConfig()
    extra_objectives: list[ObjectiveConfig] = []
    searcher: Literal["random", "grid", "tpe"] = "random"
    scheduler: SchedulerConfig = SchedulerConfig()
    resources: ResourcesConfig = ResourcesConfig()
    budget: BudgetConfig = BudgetConfig()
    model_builder: str = "builtin"
    data: dict[str, Any] = {"name": "digits"}
    model: dict[str, Any] = {}
    loss: dict[str, Any] = {}
    metric: dict[str, Any] = {}
    optim: dict[str, Any] = {}
    sched: dict[str, Any] = {}
    anneal: dict[str, Any] = {}
    trainer: dict[str, Any] = {}
    early_stop: dict[str, Any] = {}

    def bindings(self) -> dict[str, dict[str, Any]]:
        """Return the namespaced bindings as one nested dict."""
        return {ns: copy.deepcopy(getattr(self, ns)) for ns in NAMESPACES}


def _format_error(err: dict[str, Any]) -> str:
    location = ".".join(str(part) for part in err["loc"])
    if err["type"] == "extra_forbidden":
        parent = err["loc"][:-1]
        valid = _fields_at(parent)
        close = difflib.get_close_matches(str(err["loc"][-1]), valid, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else "."
        return f"{location}: unknown key{hint} Valid keys: {', '.join(valid)}"
    return f"{location}: {err.get('input')!r} is invalid: {err['msg']}"


def _fields_at(path: tuple) -> list[str]:
    model: Any = SweepConfig
    for part in path:
        field = model.model_fields.get(part)
        if field is None or not hasattr(field.annotation, "model_fields"):
            return []
        model = field.annotation
    return sorted(model.model_fields)


def parse_config(data: Any, source: str = "<config>") -> SweepConfig:
    """Validate a config mapping; raise :class:`ConfigError` naming ``source``."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: a sweep config must be a YAML mapping")
    try:
        return SweepConfig.model_validate(dict(data))
    except ValidationError as err:
        lines = [_format_error(e) for e in err.errors()]
        raise ConfigError(f"{source}: " + "\n  ".join(lines)) from err


def load_config(path: str | Path) -> SweepConfig:
    """Read and validate a sweep YAML file.

    Raises
    ------
    ConfigError
        If the file is missing, is not YAML, or a key or value is invalid.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    return parse_config(data, str(path))


def save_resolved_config(config: SweepConfig, run_dir: str | Path) -> Path:
    """Write the config with namespace defaults filled in as ``config.yaml``."""
    resolved = config.model_dump(mode="json")
    resolved.update(with_defaults(config.bindings()))
    path = Path(run_dir) / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(resolved, sort_keys=False))
    return path
