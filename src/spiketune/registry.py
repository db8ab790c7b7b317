"""Named registries of losses, regularisers, metrics and schedulers.

Every entry declares the parameters it reads from a config, with their type,
default and valid range, so one validation routine can report a bad value by
its full config key (``loss.regularisers.topology.weight: -1 is not >= 0``)
before any model is built.
"""

from __future__ import annotations

import logging
import math
import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

__all__ = [
    "ConfigTypeError",
    "Entry",
    "Param",
    "Registry",
    "LOSSES",
    "METRICS",
    "REGULARISERS",
    "SCHEDULERS",
    "get_loss",
    "get_metric",
    "get_regulariser",
    "get_scheduler",
    "load_builtins",
    "metric_mode",
    "register_loss",
    "register_metric",
    "register_regulariser",
    "register_scheduler",
]

T = TypeVar("T")

_KINDS = ("float", "int", "str", "bool", "float_or_list", "mapping")


class ConfigTypeError(TypeError, ValueError):
    """Config value of the wrong type; catchable as TypeError or ValueError."""


@dataclass(frozen=True)
class Param:
    """Declaration of one config parameter of a registry entry.

    Parameters
    ----------
    name : str
        Key inside the entry's config section.
    kind : str
        ``"float"``, ``"int"``, ``"str"``, ``"bool"``, ``"float_or_list"``
        (one number, or a list with one number per layer) or ``"mapping"``.
    default : Any
        Value used when the key is missing.
    low, high : float, optional
        Inclusive bounds of numeric values.
    low_open : bool, default False
        Make ``low`` exclusive (``> low`` instead of ``>= low``).
    choices : tuple of str, optional
        Accepted values of a ``"str"`` parameter.
    nullable : bool, default False
        Accept ``None`` (YAML ``null``).
    doc : str, default ""
        One line on what the parameter sets, with its unit.
    """

    name: str
    kind: str
    default: Any = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple[str, ...] | None = None
    nullable: bool = False
    doc: str = ""

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(
                f"Param {self.name!r}: kind must be one of {', '.join(_KINDS)}, "
                f"got {self.kind!r}"
            )

    def check(self, value: Any, key: str) -> Any:
        """Validate ``value`` for config key ``key`` and return it normalised.

        Numbers come back as ``float`` or ``int`` (numpy scalars from a tuner
        are accepted) and lists as lists of ``float``.

        Raises
        ------
        ConfigTypeError
            If the value has the wrong type.
        ValueError
            If the value is out of range or not one of the choices.
        """
        if value is None:
            if self.nullable:
                return None
            raise ValueError(f"{key}: null is not allowed; {self._accepted()}")
        if self.kind == "float":
            return self._check_number(
                _as_float(value, key, self._accepted()), key, value
            )
        if self.kind == "int":
            return self._check_number(_as_int(value, key, self._accepted()), key, value)
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ConfigTypeError(
                    f"{key}: {value!r} is not a boolean; set true or false"
                )
            return value
        if self.kind == "str":
            return self._check_choice(value, key)
        if self.kind == "mapping":
            if not isinstance(value, Mapping):
                raise ConfigTypeError(
                    f"{key}: {value!r} is not a mapping; set a nested section"
                )
            return value
        return self._check_float_or_list(value, key)

    def _check_number(self, value: float, key: str, raw: Any) -> float:
        # Messages quote the value as written in the config (``raw``).
        if self.low is not None:
            below = value <= self.low if self.low_open else value < self.low
            if below:
                op = ">" if self.low_open else ">="
                raise ValueError(
                    f"{key}: {raw!r} is not {op} {self.low:g}; {self._accepted()}"
                )
        if self.high is not None and value > self.high:
            raise ValueError(
                f"{key}: {raw!r} is not <= {self.high:g}; {self._accepted()}"
            )
        return value

    def _check_choice(self, value: Any, key: str) -> str:
        if not isinstance(value, str):
            raise ConfigTypeError(
                f"{key}: {value!r} is not a string; {self._accepted()}"
            )
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{key}: {value!r} is not valid; {self._accepted()}")
        return value

    def _check_float_or_list(self, value: Any, key: str) -> float | list[float]:
        if isinstance(value, Sequence) and not isinstance(value, str):
            if not value:
                raise ValueError(f"{key}: the list is empty; {self._accepted()}")
            return [
                self._check_number(
                    _as_float(v, f"{key}[{i}]", self._accepted()), f"{key}[{i}]", v
                )
                for i, v in enumerate(value)
            ]
        return self._check_number(_as_float(value, key, self._accepted()), key, value)

    def _accepted(self) -> str:
        if self.choices is not None:
            text = f"set one of {', '.join(self.choices)}"
        else:
            text = f"set {_describe_kind(self.kind)}"
            if self.low is not None:
                text += f" {'>' if self.low_open else '>='} {self.low:g}"
            if self.high is not None:
                joiner = " and" if self.low is not None else ""
                text += f"{joiner} <= {self.high:g}"
        if self.nullable:
            text += " or null"
        return text


def _describe_kind(kind: str) -> str:
    return {
        "float": "a number",
        "int": "an integer",
        "str": "a string",
        "bool": "true or false",
        "float_or_list": "a number or a list of numbers, one per layer,",
        "mapping": "a mapping",
    }[kind]


def _as_float(value: Any, key: str, accepted: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigTypeError(f"{key}: {value!r} is not a number; {accepted}")
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"{key}: {value!r} is not finite; {accepted}")
    return result


def _as_int(value: Any, key: str, accepted: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigTypeError(f"{key}: {value!r} is not an integer; {accepted}")
    if not float(value).is_integer():
        raise ConfigTypeError(f"{key}: {value!r} is not a whole number; {accepted}")
    return int(value)


@dataclass(frozen=True)
class Entry:
    """One registered object with its declared config parameters.

    Attributes
    ----------
    name : str
        Registered name, as written in configs.
    obj : Callable
        The registered class or function.
    params : tuple of Param
        Parameters the entry reads from its config section.
    meta : dict
        Free-form facts about the entry, such as a metric's optimisation mode.
    """

    name: str
    obj: Callable[..., Any]
    params: tuple[Param, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)

    def resolve(self, cfg: Mapping[str, Any], prefix: str) -> dict[str, Any]:
        """Validate a config section and fill in defaults.

        Parameters
        ----------
        cfg : mapping
            The entry's config section.
        prefix : str
            Full config key of the section, used in error messages.

        Returns
        -------
        dict
            Every declared parameter, with defaults for missing keys.

        Raises
        ------
        ValueError
            If a key is unknown (the message lists the valid keys) or a value
            is out of range.
        """
        if not isinstance(cfg, Mapping):
            raise ConfigTypeError(
                f"{prefix}: {cfg!r} is not a mapping; set a section with keys "
                f"{', '.join(p.name for p in self.params) or '(none)'}"
            )
        known = {p.name for p in self.params}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ValueError(
                f"{prefix}: unknown key(s) {', '.join(map(str, unknown))}; valid keys "
                f"are {', '.join(sorted(known)) or '(none)'}"
            )
        return {
            p.name: p.check(cfg.get(p.name, p.default), f"{prefix}.{p.name}")
            for p in self.params
        }


class Registry:
    """Mapping from config names to entries of one kind.

    Parameters
    ----------
    kind : str
        What the entries are (``"loss"``, ``"metric"``), used in messages.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(
        self, name: str, params: Sequence[Param] = (), **meta: Any
    ) -> Callable[[T], T]:
        """Return a decorator that registers a class or function as ``name``.

        Raises
        ------
        ValueError
            If ``name`` is already registered.
        """

        def decorator(obj: T) -> T:
            if name in self._entries:
                raise ValueError(
                    f"{self.kind} {name!r} is already registered; pick another name"
                )
            self._entries[name] = Entry(name, obj, tuple(params), dict(meta))
            logger.debug("registered %s %r", self.kind, name)
            return obj

        return decorator

    def names(self) -> list[str]:
        """Return the registered names in sorted order."""
        return sorted(self._entries)

    def entry(self, name: str, key: str | None = None) -> Entry:
        """Return the entry for ``name``.

        Parameters
        ----------
        name : str
            Registered name.
        key : str, optional
            Config key that held the name, quoted in the error.

        Raises
        ------
        ValueError
            If the name is unknown; the message lists the valid names.
        """
        if isinstance(name, str) and name in self._entries:
            return self._entries[name]
        where = f"{key}: " if key else ""
        raise ValueError(
            f"{where}unknown {self.kind} {name!r}; valid names are "
            f"{', '.join(self.names())}"
        )

    def get(self, name: str) -> Callable[..., Any]:
        """Return the class or function registered as ``name``."""
        return self.entry(name).obj

    def __contains__(self, name: object) -> bool:
        return name in self._entries


LOSSES = Registry("loss")
REGULARISERS = Registry("regulariser")
METRICS = Registry("metric")
SCHEDULERS = Registry("learning-rate scheduler")


def register_loss(name: str, params: Sequence[Param] = (), **meta: Any):
    """Register a task loss class; ``meta["tasks"]`` lists the dataset tasks."""
    return LOSSES.register(name, params, **meta)


def register_regulariser(name: str, params: Sequence[Param] = (), **meta: Any):
    """Register a regulariser class taking its parameters as keywords."""
    return REGULARISERS.register(name, params, **meta)


def register_metric(name: str, *, mode: str, **meta: Any):
    """Register a metric function under ``name``.

    Parameters
    ----------
    name : str
        Metric name. A ``{i}`` or ``{k}`` placeholder stands for a layer or
        class index, so ``"spike_rate_hz_l{i}"`` covers ``spike_rate_hz_l0``.
    mode : str
        ``"max"`` when larger is better, ``"min"`` when smaller is better.
    """
    if mode not in ("max", "min"):
        raise ValueError(f"metric {name!r}: mode must be 'max' or 'min', got {mode!r}")
    return METRICS.register(name, (), mode=mode, **meta)


def register_scheduler(name: str, params: Sequence[Param] = (), **meta: Any):
    """Register a learning-rate scheduler factory ``(optimizer, n_epochs, **p)``."""
    return SCHEDULERS.register(name, params, **meta)


def load_builtins() -> None:
    """Import the modules that register the built-in entries.

    The getters below call it, so a lookup never misses a built-in name
    because its module was not imported yet.
    """
    import spiketune.losses  # noqa: F401
    import spiketune.metrics  # noqa: F401
    import spiketune.optim  # noqa: F401


def get_loss(name: str) -> Callable[..., Any]:
    """Return the task loss class registered as ``name``."""
    load_builtins()
    return LOSSES.get(name)


def get_regulariser(name: str) -> Callable[..., Any]:
    """Return the regulariser class registered as ``name``."""
    load_builtins()
    return REGULARISERS.get(name)


def get_scheduler(name: str) -> Callable[..., Any]:
    """Return the learning-rate scheduler factory registered as ``name``."""
    load_builtins()
    return SCHEDULERS.get(name)


def _metric_entry(name: str) -> Entry:
    load_builtins()
    if name in METRICS:
        return METRICS.entry(name)
    for template in METRICS.names():
        pattern = (
            re.escape(template).replace(r"\{i\}", r"\d+").replace(r"\{k\}", r"\d+")
        )
        if pattern != re.escape(template) and re.fullmatch(pattern, name):
            return METRICS.entry(template)
    return METRICS.entry(name)


def get_metric(name: str) -> Callable[..., Any]:
    """Return the function of a metric, resolving indexed names by template."""
    return _metric_entry(name).obj


def metric_mode(name: str) -> str:
    """Return ``"max"`` or ``"min"``: the direction in which ``name`` improves.

    Raises
    ------
    ValueError
        If the metric is unknown; the message lists the valid names.
    """
    return _metric_entry(name).meta["mode"]
