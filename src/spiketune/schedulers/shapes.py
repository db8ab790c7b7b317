"""Per-epoch annealing curves shared by the sign and surrogate schedulers."""

from __future__ import annotations

import logging
import math

logger = logging.getLogger(__name__)

__all__ = ["SHAPES", "anneal_value", "check_anneal_range"]

SHAPES = ("linear", "exponential", "cosine")


def check_anneal_range(
    start: float,
    end: float,
    n_epochs: int,
    shape: str,
    key: str,
    names: tuple[str, str] = ("start", "end"),
) -> None:
    """Raise ValueError naming config key ``key`` if a schedule is invalid.

    ``start`` and ``end`` must be finite and > 0, ``n_epochs`` a positive
    integer and ``shape`` one of :data:`SHAPES`. ``names`` are the config keys
    of ``start`` and ``end`` inside section ``key``.
    """
    for name, value in zip(names, (start, end), strict=True):
        if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            raise ValueError(
                f"{key}.{name}: {value!r} is not > 0; set a finite positive number"
            )
    if isinstance(n_epochs, bool) or not isinstance(n_epochs, int) or n_epochs < 1:
        raise ValueError(
            f"n_epochs: {n_epochs!r} is not an integer >= 1; pass the number of "
            "training epochs"
        )
    if shape not in SHAPES:
        raise ValueError(
            f"{key}.shape: {shape!r} is not valid; set one of {', '.join(SHAPES)}"
        )


def anneal_value(
    start: float, end: float, epoch: int, n_epochs: int, shape: str
) -> float:
    """Return the annealed value at ``epoch`` (0-based) of ``n_epochs``.

    Epoch 0 gets ``start`` and epoch ``n_epochs - 1`` gets ``end``; later
    epochs stay at ``end``. With a single epoch that epoch gets ``end``.

    Notes
    -----
    With progress :math:`p = e / (n - 1)` clipped to ``[0, 1]``:

    .. math::

        \\text{linear}: s + (e_v - s) p \\qquad
        \\text{exponential}: s (e_v / s)^p \\qquad
        \\text{cosine}: e_v + (s - e_v) \\frac{1 + \\cos(\\pi p)}{2}

    where :math:`s` is ``start`` and :math:`e_v` is ``end``.
    """
    if n_epochs <= 1:
        progress = 1.0
    else:
        progress = min(max(epoch, 0), n_epochs - 1) / (n_epochs - 1)
    if shape not in SHAPES:
        raise ValueError(
            f"shape {shape!r} is not valid; use one of {', '.join(SHAPES)}"
        )
    if progress >= 1.0:
        # Exact end value, free of rounding in the formulas below.
        return end
    if shape == "linear":
        return start + (end - start) * progress
    if shape == "exponential":
        return start * (end / start) ** progress
    return end + (start - end) * (1.0 + math.cos(math.pi * progress)) / 2.0
