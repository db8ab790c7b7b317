"""Namespaced keys: dotted paths, nesting and spec detection, without Ray.

Kept free of Ray imports so results can be read where Ray is not installed
or not wanted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "NAMESPACES",
    "SPEC_KINDS",
    "flatten",
    "get_path",
    "is_grid",
    "is_spec",
    "looks_like_spec",
    "nest",
]

NAMESPACES = (
    "model",
    "loss",
    "metric",
    "optim",
    "sched",
    "anneal",
    "trainer",
    "data",
    "early_stop",
)

_RANGE_KINDS = {
    "uniform": 2,
    "loguniform": 2,
    "quniform": 3,
    "qloguniform": 3,
    "randint": 2,
    "qrandint": 3,
    "lograndint": 2,
    "qlograndint": 3,
    "randn": 2,
}
SPEC_KINDS = (*_RANGE_KINDS, "choice", "grid", "sample_from")


def is_spec(value: Any) -> bool:
    """Return True if ``value`` is a one-key mapping naming a domain kind."""
    return (
        isinstance(value, Mapping)
        and len(value) == 1
        and next(iter(value)) in SPEC_KINDS
    )


def _is_leaf(value: Any) -> bool:
    # Specs, Ray grids and one-key mappings that look like a misspelt spec are
    # values, not namespaces to descend into.
    if not isinstance(value, Mapping) or not value:
        return True
    if is_spec(value) or is_grid(value):
        return True
    return len(value) == 1 and looks_like_spec(str(next(iter(value))))


def nest(bindings: Mapping[str, Any]) -> dict[str, Any]:
    """Turn dotted keys into nested dicts; nested input is merged as is."""
    nested: dict[str, Any] = {}
    for key, value in bindings.items():
        parts = str(key).split(".")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"{key}: {part!r} is both a value and a namespace")
        leaf = parts[-1]
        if not _is_leaf(value):
            existing = node.setdefault(leaf, {})
            for sub_key, sub_value in nest(value).items():
                existing[sub_key] = sub_value
        else:
            node[leaf] = value
    return nested


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Turn nested dicts into dotted keys; domains and specs stay leaves."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if not _is_leaf(value):
            flat.update(flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def get_path(tree: Mapping[str, Any], dotted: str) -> Any:
    """Return the value at a dotted key in nested dicts, or raise KeyError."""
    node: Any = tree
    for part in dotted.split("."):
        node = node[part]
    return node


def is_grid(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) == {"grid_search"}


def looks_like_spec(kind: str) -> bool:
    # A one-key mapping whose key resembles a domain name is probably a typo
    # of one, such as "log_uniform" or "choices".
    lowered = kind.lower().replace("_", "")
    hints = ("uniform", "randint", "choice", "grid", "randn", "samplefrom")
    return any(hint in lowered for hint in hints)
