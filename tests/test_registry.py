"""Tests of the registries and config parameter declarations."""

from __future__ import annotations

import numpy as np
import pytest

from spiketune.losses import CeCount
from spiketune.registry import (
    ConfigTypeError,
    Entry,
    Param,
    Registry,
    get_loss,
    get_metric,
    get_regulariser,
    get_scheduler,
    metric_mode,
)


@pytest.mark.parametrize(
    ("getter", "message"),
    [
        (
            get_loss,
            r"unknown loss 'nope'; valid names are ce_count, ce_mem, mse, population",
        ),
        (
            get_regulariser,
            r"unknown regulariser 'nope'; valid names are firing_rate, l1_spikes, "
            r"topology, weight_magnitude",
        ),
        (get_metric, r"unknown metric 'nope'; valid names are accuracy"),
        (
            get_scheduler,
            r"unknown learning-rate scheduler 'nope'; valid names are cosine, "
            r"exponential, none, onecycle, step",
        ),
    ],
)
def test_unknown_name_lists_valid_names(getter, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        getter("nope")


def test_get_loss_returns_class() -> None:
    assert get_loss("ce_count") is CeCount


def test_duplicate_registration_raises() -> None:
    registry = Registry("widget")
    registry.register("a")(object)
    with pytest.raises(ValueError, match=r"widget 'a' is already registered"):
        registry.register("a")(object)


@pytest.mark.parametrize(
    ("name", "mode"),
    [
        ("accuracy", "max"),
        ("f1_macro", "max"),
        ("recall_c3", "max"),
        ("mse", "min"),
        ("spike_rate_hz_l0", "min"),
        ("silent_fraction_l12", "min"),
        ("energy_per_sample_j", "min"),
    ],
)
def test_metric_mode(name: str, mode: str) -> None:
    assert metric_mode(name) == mode


def test_metric_template_needs_index() -> None:
    with pytest.raises(ValueError, match=r"unknown metric 'spike_rate_hz_lx'"):
        metric_mode("spike_rate_hz_lx")


RATE = Param("rate", "float", 0.5, low=0.0, high=1.0)


@pytest.mark.parametrize(
    ("param", "value", "expected"),
    [
        (RATE, 0.25, 0.25),
        (RATE, 1, 1.0),
        (RATE, np.float32(0.5), 0.5),
        (Param("n", "int", 1, low=1), 3.0, 3),
        (Param("n", "int", None, nullable=True), None, None),
        (Param("o", "float_or_list", 0.0, low=0.0), [0.1, 2], [0.1, 2.0]),
        (Param("s", "str", "a", choices=("a", "b")), "b", "b"),
        (Param("b", "bool", False), True, True),
    ],
)
def test_param_accepts(param: Param, value, expected) -> None:
    assert param.check(value, "section.key") == expected


@pytest.mark.parametrize(
    ("param", "value", "error", "message"),
    [
        (RATE, -0.1, ValueError, r"section\.key: -0\.1 is not >= 0; set a number >= 0"),
        (
            RATE,
            2,
            ValueError,
            r"section\.key: 2 is not <= 1; set a number >= 0 and <= 1",
        ),
        (RATE, float("nan"), ValueError, r"section\.key: nan is not finite"),
        (RATE, None, ValueError, r"section\.key: null is not allowed"),
        (RATE, "0.5", ConfigTypeError, r"section\.key: '0\.5' is not a number"),
        (RATE, True, ConfigTypeError, r"section\.key: True is not a number"),
        (
            Param("p", "float", 1.0, low=0.0, low_open=True),
            0.0,
            ValueError,
            r"section\.key: 0\.0 is not > 0",
        ),
        (
            Param("s", "str", "a", choices=("a", "b")),
            "c",
            ValueError,
            r"section\.key: 'c' is not valid; set one of a, b",
        ),
        (Param("b", "bool", False), 1, ConfigTypeError, r"is not a boolean"),
        (Param("o", "float_or_list", 0.0), [], ValueError, r"the list is empty"),
    ],
)
def test_param_rejects(param: Param, value, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        param.check(value, "section.key")


def test_entry_resolve_fills_defaults_and_rejects_unknown() -> None:
    entry = Entry("thing", object, (RATE, Param("n", "int", 2, low=1)))
    assert entry.resolve({"rate": 0.1}, "cfg.thing") == {"rate": 0.1, "n": 2}
    with pytest.raises(
        ValueError, match=r"cfg\.thing: unknown key\(s\) size; valid keys"
    ):
        entry.resolve({"size": 3}, "cfg.thing")
    with pytest.raises(ConfigTypeError, match=r"cfg\.thing: 3 is not a mapping"):
        entry.resolve(3, "cfg.thing")


def test_param_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match=r"kind must be one of"):
        Param("x", "complex")
