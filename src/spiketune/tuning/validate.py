"""Check a whole search space before Ray starts, on every value it can take.

Sampling alone cannot check a space, because a bad category may be drawn
rarely. So :func:`probe_configs` builds one config per extreme of each tuned
key: the bounds of a range, every category of a choice and every grid point.
Each probe goes through the same validators the trial uses.
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ray.tune.search.sample import Categorical, Domain, Float, Function, Integer, Normal

from spiketune.data import validate_data_config
from spiketune.hardware.profile import get_profile
from spiketune.losses import validate_loss_config
from spiketune.optim import (
    validate_anneal_config,
    validate_optim_config,
    validate_sched_config,
)
from spiketune.tuning.builders import (
    BUILTIN_MODEL_KEYS,
    INJECTED_KEYS,
    build_builtin_model,
)
from spiketune.tuning.defaults import check_trainer_keys, suggest, with_defaults
from spiketune.tuning.space import flatten, nest

__all__ = ["infer_task", "probe_configs", "validate_space"]


def _extremes(value: Any) -> list[Any]:
    if isinstance(value, Mapping) and set(value) == {"grid_search"}:
        return list(value["grid_search"])
    if isinstance(value, Categorical):
        return list(value.categories)
    if isinstance(value, Integer):
        return [value.lower, value.upper - 1]
    if isinstance(value, Normal):
        return [value.mean]
    if isinstance(value, Float):
        return [value.lower, value.upper]
    return []


def _first(value: Any) -> Any:
    options = _extremes(value)
    if options:
        return options[0]
    if isinstance(value, Function | Domain):
        return None
    return value


def probe_configs(space: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Yield concrete configs that together visit every extreme of the space.

    Conditional (``sample_from``) values are skipped: they depend on other
    values and are resolved by Ray at sampling time.
    """
    flat = flatten(space)
    base = {key: _first(value) for key, value in flat.items()}
    base = {key: value for key, value in base.items() if value is not None}
    yield nest(base)
    for key, value in flat.items():
        for option in _extremes(value)[1:]:
            probe = dict(base)
            probe[key] = copy.deepcopy(option)
            yield nest(probe)


# The digits task encodes 1,797 images of 64 pixels as float32 sequences.
_DIGITS_VALUES_PER_STEP = 1797 * 64 * 4


def _check_data_size(data_cfg: Mapping[str, Any], copies: int = 1) -> None:
    """Reject encodings whose concurrent copies could not fit in memory."""
    if data_cfg.get("name", "digits") != "digits":
        return
    n_steps = int(data_cfg.get("n_steps", 25))
    needed = n_steps * _DIGITS_VALUES_PER_STEP * copies
    try:
        available = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return
    if needed > available / 2:
        raise ValueError(
            f"data.n_steps: {n_steps} steps need about {needed / 2**30:.1f} GiB "
            f"for the encoded digits of {copies} concurrent trials, more than "
            f"half of this machine's {available / 2**30:.1f} GiB; use fewer time "
            "steps or fewer concurrent trials"
        )


def infer_task(data_cfg: Mapping[str, Any]) -> str:
    """Return ``"classification"`` or ``"regression"`` for a data config."""
    if data_cfg.get("name", "digits") != "audio":
        return "classification"
    layout = data_cfg.get("task", "auto")
    if layout != "auto":
        return layout
    from spiketune.data.audio import detect_layout

    return detect_layout(Path(data_cfg["root"]))


def validate_space(
    space: Mapping[str, Any],
    *,
    builtin_model: bool,
    check_objectives: list[str] | tuple[str, ...] = (),
    data_copies: int = 1,
) -> None:
    """Run every validator on every probe config of a space.

    ``data_copies`` is how many trials may hold their data at once, one
    copy per worker process.

    Raises
    ------
    ValueError
        The first problem found, naming the dotted key, the value and the
        accepted values.
    """
    for probe in probe_configs(space):
        cfg = with_defaults(probe)
        check_trainer_keys(probe)
        validate_data_config(cfg["data"])
        _check_data_size(cfg["data"], data_copies)
        task = infer_task(cfg["data"])
        validate_loss_config(cfg["loss"], task=task)
        validate_optim_config(cfg["optim"])
        validate_sched_config(cfg["sched"])
        validate_anneal_config(cfg["anneal"])
        if builtin_model:
            _check_model_keys(cfg["model"])
    for objective in check_objectives:
        _check_objective(objective)


def _check_model_keys(model_cfg: Mapping[str, Any]) -> None:
    valid = (*BUILTIN_MODEL_KEYS, "dt")
    for key in model_cfg:
        if key in INJECTED_KEYS and key != "dt":
            raise ValueError(
                f"model.{key}: set by the data, not by the config; remove it"
            )
        if key not in valid:
            raise ValueError(
                f"model.{key}: unknown key of the built-in networks; valid keys "
                f"are {', '.join(BUILTIN_MODEL_KEYS)}{suggest(key, valid)}"
            )
    hidden = model_cfg.get("hidden", [64])
    sizes = [hidden] if isinstance(hidden, int) else hidden
    if not isinstance(sizes, list | tuple) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in sizes
    ):
        raise ValueError(
            f"model.hidden: {hidden!r} is not a positive integer or a list of them"
        )
    population = model_cfg.get("population", 1)
    if (
        isinstance(population, bool)
        or not isinstance(population, int)
        or population < 1
    ):
        raise ValueError(f"model.population: {population!r} is not a positive integer")
    for flag in ("learn_tau", "mismatch", "quantize_weights"):
        if flag in model_cfg and not isinstance(model_cfg[flag], bool):
            raise ValueError(f"model.{flag}: {model_cfg[flag]!r} is not true or false")
    _try_build(model_cfg)
    _check_chip_capacity(model_cfg, sizes)


def _check_chip_capacity(model_cfg: Mapping[str, Any], sizes: list[int]) -> None:
    # Output neurons depend on the data, so only hidden layers are counted
    # here; check_fit reports the full network after training.
    if model_cfg.get("profile") is None:
        return
    profile = get_profile(model_cfg["profile"])
    if sum(sizes) > profile.n_neurons:
        raise ValueError(
            f"model.hidden: {sizes} has {sum(sizes)} neurons but chip profile "
            f"{profile.name!r} has {profile.n_neurons}; use fewer hidden neurons "
            "or a profile with more cores"
        )
    largest_core = max(profile.core_sizes)
    if model_cfg.get("arch") == "recurrent" and max(sizes) > largest_core:
        raise ValueError(
            f"model.hidden: a recurrent layer of {max(sizes)} neurons does not fit "
            f"one core of profile {profile.name!r} (largest core {largest_core}); "
            "recurrent links must stay inside one core"
        )


def _try_build(model_cfg: Mapping[str, Any]) -> None:
    # Building a tiny copy runs every parameter check of the layers, such as
    # tau > 0, a known surrogate and a known chip profile.
    probe = {**model_cfg, "n_inputs": 4, "n_outputs": 2}
    probe.setdefault("dt", 1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            build_builtin_model(probe)
        except (ValueError, TypeError) as err:
            message = str(err)
            if not message.startswith("model."):
                message = f"model: {message}"
            raise ValueError(message) from err


def _check_objective(objective: str) -> None:
    """Reject an objective the built-in loop never reports, naming valid ones."""
    import spiketune.activity  # noqa: F401 - registers the activity metrics
    import spiketune.metrics  # noqa: F401 - registers the task metrics
    from spiketune.registry import METRICS, REGULARISERS, metric_mode

    split, _, name = objective.partition("_")
    if name == "loss" and split in ("val", "train"):
        return
    valid = ["val_loss", "train_loss", "train_task"]
    valid += [f"val_{metric}" for metric in METRICS.names()]
    valid += [f"train_{term}" for term in REGULARISERS.names()]
    if split == "val" and name:
        try:
            metric_mode(name)
            return
        except ValueError:
            pass
    if split == "train" and (name == "task" or name in REGULARISERS.names()):
        return
    raise ValueError(
        f"objective: {objective!r} is not a reported metric{suggest(objective, valid)} "
        f"Valid objectives: {', '.join(valid)}"
    )
