"""Build train, validation and test datasets from a sweep's `data.` config.

`build_task` is the entry point of the tuning engine. It checks the config,
loads a dataset by name, splits it with a fixed seed, and spike-encodes it into
pre-computed `[n, T, N]` tensors, so an epoch only indexes tensors.
"""

from __future__ import annotations

import logging
import math
import numbers
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch.utils.data import TensorDataset

from spiketune.data.audio import TASK_LAYOUTS, load_audio_dataset
from spiketune.data.digits import DIGITS_CLASS_NAMES, load_digits_arrays
from spiketune.data.encoders import LATENCY_MODES, get_encoder
from spiketune.data.filterbank import FrontEndSettings

logger = logging.getLogger(__name__)

DATASET_NAMES = ("audio", "digits")
DEFAULT_DATASET = "digits"
PATH_KEYS = ("root", "cache_dir")


@dataclass
class TaskData:
    """Encoded splits of one dataset and the facts a model needs about them.

    The tensors of a digits task are shared between calls of `build_task` with
    the same config, so treat them as read-only.

    Attributes
    ----------
    train, val, test : torch.utils.data.TensorDataset
        `(x, y)` with x float32 `[n, T, N]`. y is int64 `[n]` for
        classification and float32 `[n, T, C]` for regression. The test split
        is for the final score only, never for model selection.
    n_inputs : int
        Input channels N.
    n_outputs : int
        Classes, or target channels C for regression.
    n_steps : int
        Time steps T.
    dt : float
        Seconds per step.
    task : str
        "classification" or "regression".
    class_names : list of str
        Class names in label order, or `target_<i>` names for regression.
    """

    train: TensorDataset
    val: TensorDataset
    test: TensorDataset
    n_inputs: int
    n_outputs: int
    n_steps: int
    dt: float
    task: str
    class_names: list[str]


@dataclass(frozen=True)
class _KeySpec:
    default: Any
    kind: str
    check: Callable[[Any], bool] | None = None
    requirement: str = ""


def _fraction(value: float) -> bool:
    return 0.0 < value < 1.0


def _positive(value: float) -> bool:
    return value > 0


def _at_least_one(value: int) -> bool:
    return value >= 1


_COMMON_KEYS: dict[str, _KeySpec] = {
    "name": _KeySpec(DEFAULT_DATASET, "str"),
    "seed": _KeySpec(0, "int"),
    "val_fraction": _KeySpec(0.15, "float", _fraction, "in (0, 1)"),
    "test_fraction": _KeySpec(0.2, "float", _fraction, "in (0, 1)"),
    "gain": _KeySpec(1.0, "float", _positive, "> 0"),
    "latency_mode": _KeySpec(
        "linear", "str", lambda v: v in LATENCY_MODES, f"one of {list(LATENCY_MODES)}"
    ),
    "latency_min_intensity": _KeySpec(0.01, "float", _fraction, "in (0, 1)"),
    "delta_threshold": _KeySpec(0.1, "float", _positive, "> 0"),
}

DIGITS_ENCODERS = ("rate", "latency", "direct")
AUDIO_ENCODERS = ("direct", "rate", "delta")

_DIGITS_KEYS: dict[str, _KeySpec] = {
    **_COMMON_KEYS,
    "encoder": _KeySpec(
        "rate", "str", lambda v: v in DIGITS_ENCODERS, f"one of {list(DIGITS_ENCODERS)}"
    ),
    "n_steps": _KeySpec(25, "int", _at_least_one, ">= 1"),
    "dt": _KeySpec(1e-3, "float", _positive, "> 0"),
}

_AUDIO_KEYS: dict[str, _KeySpec] = {
    **_COMMON_KEYS,
    "encoder": _KeySpec(
        "direct", "str", lambda v: v in AUDIO_ENCODERS, f"one of {list(AUDIO_ENCODERS)}"
    ),
    "root": _KeySpec(None, "path"),
    "task": _KeySpec(
        "auto", "str", lambda v: v in TASK_LAYOUTS, f"one of {list(TASK_LAYOUTS)}"
    ),
    "sample_rate": _KeySpec(16000, "int", _at_least_one, ">= 1"),
    "duration_s": _KeySpec(1.0, "float", _positive, "> 0"),
    "bin_s": _KeySpec(0.01, "float", _positive, "> 0"),
    "n_channels": _KeySpec(16, "int", _at_least_one, ">= 1"),
    "f_min": _KeySpec(100.0, "float", _positive, "> 0"),
    "f_max": _KeySpec(7000.0, "float", _positive, "> 0"),
    "order": _KeySpec(2, "int", _at_least_one, ">= 1"),
    "rectify": _KeySpec("full", "str"),
    "compress": _KeySpec("log", "str"),
    "log_floor": _KeySpec(1e-3, "float", _positive, "> 0"),
    "normalize": _KeySpec("max", "str"),
    "cache_dir": _KeySpec(None, "optional_path"),
    "skip_bad_files": _KeySpec(False, "bool"),
    "expect_sample_rate": _KeySpec(None, "optional_int", _at_least_one, ">= 1"),
    "expect_channels": _KeySpec(None, "optional_int", _at_least_one, ">= 1"),
    # Derived from duration_s and bin_s. A config may state them, but they
    # must then match the derived values.
    "n_steps": _KeySpec(None, "optional_int", _at_least_one, ">= 1"),
    "dt": _KeySpec(None, "optional_float", _positive, "> 0"),
}

_KEYS_BY_DATASET = {"digits": _DIGITS_KEYS, "audio": _AUDIO_KEYS}
_FRONT_END_KEYS = tuple(FrontEndSettings.__dataclass_fields__)


def _coerce(key: str, value: Any, kind: str) -> Any:
    """Convert a config value to the plain Python type of its key."""
    optional = kind.startswith("optional_")
    base = kind.removeprefix("optional_")
    if value is None and optional:
        return None
    is_bool = isinstance(value, bool | np.bool_)
    if base == "bool" and is_bool:
        return bool(value)
    if base == "int" and isinstance(value, numbers.Integral) and not is_bool:
        return int(value)
    if base == "float" and isinstance(value, numbers.Real) and not is_bool:
        return float(value)
    if base == "str" and isinstance(value, str):
        return value
    if base == "path" and isinstance(value, str | os.PathLike):
        return os.fspath(value)
    expected = {"path": "a path string", "str": "a string"}.get(base, f"a {base}")
    if optional:
        expected += " or None"
    raise TypeError(
        f"data.{key}={value!r} has type {type(value).__name__}; set it to {expected}"
    )


def _check_name_and_keys(data_cfg: Mapping[str, Any]) -> dict[str, _KeySpec]:
    """Check the dataset name and key names, and return the dataset's key specs."""
    if not isinstance(data_cfg, Mapping):
        raise TypeError(
            f"data config must be a mapping of data.<key> values, got "
            f"{type(data_cfg).__name__}"
        )
    name = data_cfg.get("name", DEFAULT_DATASET)
    if name not in _KEYS_BY_DATASET:
        raise ValueError(
            f"data.name={name!r} is not a known dataset; valid names are "
            f"{sorted(_KEYS_BY_DATASET)}"
        )
    specs = _KEYS_BY_DATASET[name]
    unknown = sorted(set(data_cfg) - set(specs))
    if unknown:
        listed = ", ".join(f"data.{key}" for key in unknown)
        raise ValueError(
            f"unknown key(s) {listed} for data.name={name!r}; valid keys are "
            f"{sorted(specs)}"
        )
    if name == "audio" and data_cfg.get("root") is None:
        raise ValueError(
            "data.root is missing; set it to the audio dataset folder for "
            "data.name='audio'"
        )
    return specs


def _normalize_config(data_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Check names, types and ranges of a `data.` config and fill in defaults."""
    specs = _check_name_and_keys(data_cfg)

    config: dict[str, Any] = {}
    for key, spec in specs.items():
        value = _coerce(key, data_cfg.get(key, spec.default), spec.kind)
        if value is not None and spec.check is not None and not spec.check(value):
            raise ValueError(
                f"data.{key}={value!r} is invalid; it must be {spec.requirement}"
            )
        config[key] = value

    if config["val_fraction"] + config["test_fraction"] >= 1.0:
        raise ValueError(
            f"data.val_fraction={config['val_fraction']} plus data.test_fraction="
            f"{config['test_fraction']} must be < 1 to leave training data; "
            "lower one of them"
        )
    if config["name"] == "audio":
        _check_audio_config(config)
    return config


def _front_end_settings(config: Mapping[str, Any]) -> FrontEndSettings:
    return FrontEndSettings(**{key: config[key] for key in _FRONT_END_KEYS})


def _check_audio_config(config: dict[str, Any]) -> None:
    root = Path(config["root"]).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"data.root={config['root']!r} is not an existing folder; set "
            "data.root to the audio dataset folder"
        )
    settings = _front_end_settings(config)
    settings.validate(prefix="data.")
    n_steps = config["n_steps"]
    if n_steps is not None and n_steps != settings.n_bins:
        raise ValueError(
            f"data.n_steps={n_steps} does not match the {settings.n_bins} bins "
            f"given by data.duration_s={settings.duration_s} and data.bin_s="
            f"{settings.bin_s}; remove data.n_steps or change the bin settings"
        )
    dt = config["dt"]
    if dt is not None and not math.isclose(dt, settings.bin_s, rel_tol=1e-9):
        raise ValueError(
            f"data.dt={dt} does not match data.bin_s={settings.bin_s}; the audio "
            "step is one bin, so remove data.dt or set it equal to data.bin_s"
        )


def validate_data_config(data_cfg: Mapping[str, Any]) -> None:
    """Check a `data.` config without loading any data.

    Checks the dataset name (default "digits"), key names, value types and
    ranges, and that the audio root folder exists.

    Parameters
    ----------
    data_cfg : Mapping
        Keys bound under `data.` in a sweep config.

    Raises
    ------
    ValueError
        If the name, a key or a value is invalid; the message names `data.<key>`.
    TypeError
        If a value has the wrong type.
    FileNotFoundError
        If the audio `data.root` folder does not exist.
    """
    _normalize_config(data_cfg)


def resolve_data_paths(data_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Make the `root` and `cache_dir` paths of a `data.` config absolute.

    Ray workers may run in another working folder, so the driver resolves
    relative paths against its own working folder before starting trials.

    Parameters
    ----------
    data_cfg : Mapping
        Keys bound under `data.` in a sweep config.

    Returns
    -------
    dict
        A copy with `root` and `cache_dir`, where set, made absolute with `~`
        expanded. Other keys are unchanged.
    """
    resolved = dict(data_cfg)
    for key in PATH_KEYS:
        value = resolved.get(key)
        if isinstance(value, str | os.PathLike):
            resolved[key] = str(Path(value).expanduser().resolve())
    return resolved


def split_indices(
    labels: np.ndarray,
    *,
    seed: int,
    val_fraction: float,
    test_fraction: float,
    stratify: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split row indices into train, validation and test sets.

    The split sizes are `round(fraction * n)`, at least 1 each, and training
    gets the rest.

    Parameters
    ----------
    labels : numpy.ndarray
        Class label per row, used for stratification. Its length sets n.
    seed : int
        Seed of the shuffle.
    val_fraction, test_fraction : float
        Fractions of all rows for validation and test.
    stratify : bool
        Keep class proportions equal across splits.

    Returns
    -------
    tuple of numpy.ndarray
        `(train, val, test)` int64 index arrays.

    Raises
    ------
    ValueError
        If the dataset is too small for the requested split.
    """
    n_rows = len(labels)
    n_test = max(1, round(test_fraction * n_rows))
    n_val = max(1, round(val_fraction * n_rows))
    if n_rows - n_test - n_val < 1:
        raise ValueError(
            f"{n_rows} rows are too few for data.val_fraction={val_fraction} and "
            f"data.test_fraction={test_fraction}; add data or lower the fractions"
        )
    indices = np.arange(n_rows)
    try:
        rest, test = train_test_split(
            indices,
            test_size=n_test,
            random_state=seed,
            stratify=labels if stratify else None,
        )
        train, val = train_test_split(
            rest,
            test_size=n_val,
            random_state=seed,
            stratify=labels[rest] if stratify else None,
        )
    except ValueError as exc:
        counts = dict(zip(*np.unique(labels, return_counts=True), strict=True))
        raise ValueError(
            f"cannot make a stratified split of {n_rows} rows with class counts "
            f"{counts}, data.val_fraction={val_fraction} and data.test_fraction="
            f"{test_fraction} ({exc}); add clips so each split gets every class, "
            "or raise the fractions"
        ) from exc
    return train, val, test


def _encode(x: torch.Tensor, n_steps: int, config: Mapping[str, Any]) -> torch.Tensor:
    name = config["encoder"]
    options: dict[str, Any] = {"seed": config["seed"]}
    if name in ("rate", "direct"):
        options["gain"] = config["gain"]
    elif name == "latency":
        options["mode"] = config["latency_mode"]
        options["min_intensity"] = config["latency_min_intensity"]
    elif name == "delta":
        options["threshold"] = config["delta_threshold"]
    return get_encoder(name)(x, n_steps, **options)


def _make_task_data(
    x: torch.Tensor,
    y: torch.Tensor,
    splits: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    n_outputs: int,
    dt: float,
    task: str,
    class_names: list[str],
) -> TaskData:
    train, val, test = (torch.from_numpy(index) for index in splits)
    return TaskData(
        train=TensorDataset(x[train], y[train]),
        val=TensorDataset(x[val], y[val]),
        test=TensorDataset(x[test], y[test]),
        n_inputs=int(x.shape[2]),
        n_outputs=n_outputs,
        n_steps=int(x.shape[1]),
        dt=dt,
        task=task,
        class_names=class_names,
    )


@lru_cache(maxsize=8)
def _build_digits_cached(frozen_config: tuple[tuple[str, Any], ...]) -> TaskData:
    config = dict(frozen_config)
    images, labels = load_digits_arrays()
    splits = split_indices(
        labels,
        seed=config["seed"],
        val_fraction=config["val_fraction"],
        test_fraction=config["test_fraction"],
        stratify=True,
    )
    # Encode every image once with one generator, so the spikes of an image do
    # not depend on which split it lands in.
    x = _encode(torch.from_numpy(images), config["n_steps"], config)
    logger.info(
        "built digits task: encoder=%s n_steps=%d splits=%s",
        config["encoder"],
        config["n_steps"],
        [len(index) for index in splits],
    )
    return _make_task_data(
        x,
        torch.from_numpy(labels),
        splits,
        n_outputs=len(DIGITS_CLASS_NAMES),
        dt=config["dt"],
        task="classification",
        class_names=list(DIGITS_CLASS_NAMES),
    )


def _build_audio(config: Mapping[str, Any]) -> TaskData:
    settings = _front_end_settings(config)
    cache_dir = config["cache_dir"]
    dataset = load_audio_dataset(
        Path(config["root"]).expanduser().resolve(),
        settings,
        task=config["task"],
        cache_dir=Path(cache_dir).expanduser().resolve() if cache_dir else None,
        skip_bad_files=config["skip_bad_files"],
        expect_sample_rate=config["expect_sample_rate"],
        expect_channels=config["expect_channels"],
    )
    classification = dataset.task == "classification"
    # Regression rows are not stratified, so any labels work here.
    split_labels = dataset.targets if classification else np.zeros(len(dataset.files))
    splits = split_indices(
        split_labels,
        seed=config["seed"],
        val_fraction=config["val_fraction"],
        test_fraction=config["test_fraction"],
        stratify=classification,
    )
    x = _encode(torch.from_numpy(dataset.features), settings.n_bins, config)
    return _make_task_data(
        x,
        torch.from_numpy(dataset.targets),
        splits,
        n_outputs=len(dataset.class_names),
        dt=settings.bin_samples / settings.sample_rate,
        task=dataset.task,
        class_names=list(dataset.class_names),
    )


def build_task(data_cfg: Mapping[str, Any]) -> TaskData:
    """Load, split and spike-encode the dataset that a `data.` config names.

    Digits results are cached in memory per config, so repeated calls in one
    process return the same `TaskData`. Audio features are cached on disk in
    `data.cache_dir`, and each call re-reads them.

    Parameters
    ----------
    data_cfg : Mapping
        Keys bound under `data.` in a sweep config, for example
        `{"name": "digits", "encoder": "rate", "n_steps": 30}`.

    Returns
    -------
    TaskData
        Encoded train, validation and test splits.

    Raises
    ------
    ValueError
        If the config is invalid (see `validate_data_config`) or the data
        cannot be loaded or split.
    TypeError
        If a config value has the wrong type.
    FileNotFoundError
        If the audio `data.root` folder does not exist.
    """
    config = _normalize_config(data_cfg)
    if config["name"] == "digits":
        return _build_digits_cached(tuple(sorted(config.items())))
    # TODO: memoise audio tasks in-process too; each call re-scans data.root and
    # re-reads every cached feature file.
    return _build_audio(config)
