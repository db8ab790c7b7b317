"""Tests for the digits task and the data config checks in spiketune.data.task."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from spiketune.data import (
    TaskData,
    build_task,
    resolve_data_paths,
    validate_data_config,
)
from spiketune.data.digits import load_digits_arrays
from spiketune.data.task import split_indices

N_DIGITS = 1797


def test_digits_arrays_scaled_to_unit_range() -> None:
    images, labels = load_digits_arrays()
    assert images.shape == (N_DIGITS, 64)
    assert images.dtype == np.float32
    assert images.min() == 0.0
    assert images.max() == 1.0
    assert sorted(np.unique(labels).tolist()) == list(range(10))


def test_split_indices_cover_all_without_overlap() -> None:
    _, labels = load_digits_arrays()
    train, val, test = split_indices(
        labels, seed=0, val_fraction=0.15, test_fraction=0.2, stratify=True
    )
    assert len(train) + len(val) + len(test) == N_DIGITS
    assert len(test) == round(0.2 * N_DIGITS)
    assert len(val) == round(0.15 * N_DIGITS)
    combined = np.concatenate([train, val, test])
    assert len(np.unique(combined)) == N_DIGITS


@pytest.mark.parametrize("seed", [0, 7])
def test_split_indices_stratified(seed: int) -> None:
    _, labels = load_digits_arrays()
    splits = split_indices(
        labels, seed=seed, val_fraction=0.15, test_fraction=0.2, stratify=True
    )
    totals = np.bincount(labels, minlength=10)
    for index in splits:
        counts = np.bincount(labels[index], minlength=10)
        expected = totals * len(index) / N_DIGITS
        # Stratified splitting rounds each class count, so it is off by < 2.
        assert np.all(np.abs(counts - expected) < 2)


def test_split_indices_same_seed_same_split() -> None:
    _, labels = load_digits_arrays()
    first = split_indices(
        labels, seed=3, val_fraction=0.1, test_fraction=0.1, stratify=True
    )
    second = split_indices(
        labels, seed=3, val_fraction=0.1, test_fraction=0.1, stratify=True
    )
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(a, b)


def test_split_indices_too_few_rows_raises() -> None:
    with pytest.raises(ValueError, match="data.val_fraction"):
        split_indices(
            np.array([0, 1]),
            seed=0,
            val_fraction=0.4,
            test_fraction=0.4,
            stratify=False,
        )


@pytest.mark.parametrize("encoder", ["rate", "latency", "direct"])
def test_build_digits_shapes_and_ranges(encoder: str) -> None:
    task = build_task({"name": "digits", "encoder": encoder, "n_steps": 12})
    assert isinstance(task, TaskData)
    sizes = [len(task.train), len(task.val), len(task.test)]
    assert sum(sizes) == N_DIGITS
    for split in (task.train, task.val, task.test):
        x, y = split.tensors
        assert x.shape[1:] == (12, 64)
        assert x.dtype == torch.float32
        assert y.dtype == torch.int64
        assert x.min() >= 0.0
        assert x.max() <= 1.0
    assert task.n_inputs == 64
    assert task.n_outputs == 10
    assert task.n_steps == 12
    assert task.task == "classification"
    assert task.class_names == [str(digit) for digit in range(10)]


def test_build_digits_defaults() -> None:
    task = build_task({"name": "digits"})
    assert task.n_steps == 25
    assert task.dt == 1e-3
    assert set(task.train.tensors[0].unique().tolist()) <= {0.0, 1.0}


def test_digits_rows_match_dataset_images() -> None:
    task = build_task({"name": "digits", "encoder": "direct", "n_steps": 2})
    images, _ = load_digits_arrays()
    rows = torch.cat(
        [split.tensors[0][:, 0] for split in (task.train, task.val, task.test)]
    )
    assert rows.shape == (N_DIGITS, 64)
    # Every split row is one of the dataset's images.
    assert sorted(map(tuple, rows.numpy().tolist())) == sorted(
        map(tuple, images.tolist())
    )


def test_build_digits_labels_stratified() -> None:
    task = build_task({"name": "digits", "n_steps": 5, "seed": 1})
    for split in (task.train, task.val, task.test):
        counts = torch.bincount(split.tensors[1], minlength=10)
        assert counts.min() > 0


def test_build_digits_memoised_per_config() -> None:
    first = build_task({"name": "digits", "n_steps": 7})
    again = build_task({"name": "digits", "n_steps": 7, "seed": 0})
    other = build_task({"name": "digits", "n_steps": 8})
    assert again is first
    assert other is not first


def test_digits_spikes_survive_cache_clear() -> None:
    from spiketune.data.task import _build_digits_cached

    config = {"name": "digits", "n_steps": 6, "seed": 11}
    first = build_task(config).train.tensors[0].clone()
    _build_digits_cached.cache_clear()
    second = build_task(config).train.tensors[0]
    assert torch.equal(first, second)


def test_validate_unknown_name_lists_valid() -> None:
    with pytest.raises(ValueError, match=r"data.name='mnist'.*\['audio', 'digits'\]"):
        validate_data_config({"name": "mnist"})


def test_missing_name_defaults_to_digits() -> None:
    task = build_task({"n_steps": 5})
    assert task.n_inputs == 64
    assert task is build_task({"name": "digits", "n_steps": 5})


def test_validate_none_name_raises() -> None:
    with pytest.raises(ValueError, match="data.name=None"):
        validate_data_config({"name": None})


def test_validate_unknown_key_named() -> None:
    with pytest.raises(ValueError, match="data.n_step"):
        validate_data_config({"name": "digits", "n_step": 5})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("n_steps", 0),
        ("dt", 0.0),
        ("val_fraction", 1.5),
        ("test_fraction", 0.0),
        ("encoder", "delta"),
        ("encoder", "poisson"),
        ("latency_mode", "cubic"),
        ("latency_min_intensity", 1.0),
    ],
)
def test_validate_invalid_value_named(key: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"data.{key}="):
        validate_data_config({"name": "digits", key: value})


@pytest.mark.parametrize(
    ("key", "value"),
    [("n_steps", 2.5), ("n_steps", True), ("seed", "0"), ("dt", "fast")],
)
def test_validate_wrong_type_named(key: str, value: object) -> None:
    with pytest.raises(TypeError, match=f"data.{key}="):
        validate_data_config({"name": "digits", key: value})


def test_validate_fractions_must_leave_training_data() -> None:
    with pytest.raises(
        ValueError, match="data.val_fraction=0.5 plus data.test_fraction"
    ):
        validate_data_config(
            {"name": "digits", "val_fraction": 0.5, "test_fraction": 0.5}
        )


def test_validate_accepts_numpy_scalars() -> None:
    validate_data_config(
        {"name": "digits", "n_steps": np.int64(10), "dt": np.float32(1e-3)}
    )


def test_resolve_paths_makes_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = {"name": "audio", "root": "corpus", "cache_dir": "cache", "bin_s": 0.01}
    resolved = resolve_data_paths(config)
    assert resolved["root"] == str(tmp_path.resolve() / "corpus")
    assert resolved["cache_dir"] == str(tmp_path.resolve() / "cache")
    assert resolved["bin_s"] == 0.01
    assert config["root"] == "corpus"


def test_resolve_paths_leaves_missing_keys() -> None:
    assert resolve_data_paths({"name": "digits"}) == {"name": "digits"}
