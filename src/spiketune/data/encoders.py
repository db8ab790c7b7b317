"""Spike encoders that turn intensities or analog signals into `[n, T, N]` tensors.

Static inputs are `[n, N]` intensities, normally in [0, 1]. Time series are
`[n, T, C]` analog signals. Every encoder returns a float32 tensor laid out
batch-first as `[n, T, N]` and gives the same output for the same seed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import torch

logger = logging.getLogger(__name__)

Encoder = Callable[..., torch.Tensor]

LATENCY_MODES = ("linear", "log")


def _check_n_steps(n_steps: int) -> None:
    if isinstance(n_steps, bool) or not isinstance(n_steps, int):
        raise TypeError(
            f"n_steps must be an int, got {type(n_steps).__name__} {n_steps!r}; "
            "pass a positive whole number of time steps"
        )
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}; pass a positive count")


def _as_float_tensor(
    x: torch.Tensor, ndims: tuple[int, ...], name: str
) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"{name} input must be a torch.Tensor, got {type(x).__name__}; "
            "convert it with torch.as_tensor"
        )
    if x.dim() not in ndims:
        shapes = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(
            f"{name} input must be {shapes}, got shape {tuple(x.shape)}; "
            "pass [n, N] intensities or an [n, T, N] sequence as documented"
        )
    return x.to(torch.float32)


def _make_generator(seed: int) -> torch.Generator:
    generator = torch.Generator(device="cpu")
    generator.manual_seed(int(seed))
    return generator


def _repeat_over_time(x: torch.Tensor, n_steps: int) -> torch.Tensor:
    return x.unsqueeze(1).expand(-1, n_steps, -1)


def _match_sequence_length(x: torch.Tensor, n_steps: int, name: str) -> None:
    if x.shape[1] != n_steps:
        raise ValueError(
            f"{name} input has {x.shape[1]} time steps but n_steps={n_steps}; "
            "pass n_steps equal to x.shape[1]"
        )


def encode_rate(
    x: torch.Tensor, n_steps: int, *, seed: int = 0, gain: float = 1.0
) -> torch.Tensor:
    """Encode intensities as Bernoulli spike trains.

    At every step each feature spikes with probability `clamp(gain * x, 0, 1)`,
    independently of other steps, so the mean firing rate equals that probability.

    Parameters
    ----------
    x : torch.Tensor
        Intensities `[n, N]` (the same probability at every step) or per-step
        probabilities `[n, T, N]` with `T == n_steps`.
    n_steps : int
        Number of time steps T.
    seed : int
        Seed of the `torch.Generator` that draws the spikes.
    gain : float
        Factor applied to `x` before clamping to [0, 1].

    Returns
    -------
    torch.Tensor
        Binary float32 spikes `[n, T, N]`.

    Raises
    ------
    ValueError
        If `x` is not 2-D or 3-D, or a 3-D `x` does not have `n_steps` steps.
    """
    _check_n_steps(n_steps)
    x = _as_float_tensor(x, (2, 3), "rate encoder")
    if x.dim() == 2:
        x = _repeat_over_time(x, n_steps)
    else:
        _match_sequence_length(x, n_steps, "rate encoder")
    probability = (x * gain).clamp(0.0, 1.0)
    return torch.bernoulli(probability, generator=_make_generator(seed))


def latency_spike_steps(
    x: torch.Tensor,
    n_steps: int,
    *,
    mode: str = "linear",
    min_intensity: float = 0.01,
) -> torch.Tensor:
    """Compute the spike step of each intensity for latency coding.

    Linear mode maps intensity 1 to step 0 and intensities near 0 to step
    `n_steps - 1`, by `round((1 - x) * (n_steps - 1))`. Log mode uses
    `round((n_steps - 1) * ln(x) / ln(min_intensity))`, so `min_intensity` and
    anything below it spike at the last step. Intensities above 1 spike at step 0.

    Parameters
    ----------
    x : torch.Tensor
        Intensities `[n, N]`.
    n_steps : int
        Number of time steps T.
    mode : str
        "linear" or "log".
    min_intensity : float
        Intensity mapped to the last step in log mode, in (0, 1).

    Returns
    -------
    torch.Tensor
        int64 steps `[n, N]`, with -1 where the intensity is <= 0 (no spike).

    Raises
    ------
    ValueError
        If `mode` is unknown or `min_intensity` is outside (0, 1).
    """
    if mode not in LATENCY_MODES:
        raise ValueError(
            f"latency mode must be one of {list(LATENCY_MODES)}, got {mode!r}"
        )
    if not 0.0 < min_intensity < 1.0:
        raise ValueError(
            f"latency min_intensity must be in (0, 1), got {min_intensity!r}"
        )
    x = x.to(torch.float64)
    last_step = n_steps - 1
    if mode == "linear":
        steps = torch.round((1.0 - x.clamp(max=1.0)) * last_step)
    else:
        clipped = x.clamp(min=min_intensity, max=1.0)
        steps = torch.round(last_step * torch.log(clipped) / math.log(min_intensity))
    steps = steps.clamp(0, last_step).to(torch.int64)
    return torch.where(x > 0, steps, torch.full_like(steps, -1))


def encode_latency(
    x: torch.Tensor,
    n_steps: int,
    *,
    seed: int = 0,
    mode: str = "linear",
    min_intensity: float = 0.01,
) -> torch.Tensor:
    """Encode intensities as the time of a single spike per feature.

    Brighter features spike earlier. A feature with intensity <= 0 never spikes.
    See `latency_spike_steps` for the step formulas.

    Parameters
    ----------
    x : torch.Tensor
        Intensities `[n, N]`.
    n_steps : int
        Number of time steps T.
    seed : int
        Ignored because the code is deterministic. It keeps the signature the
        same as the other encoders.
    mode : str
        "linear" or "log".
    min_intensity : float
        Intensity mapped to the last step in log mode.

    Returns
    -------
    torch.Tensor
        Binary float32 spikes `[n, T, N]` with at most one spike per feature.

    Raises
    ------
    ValueError
        If `x` is not 2-D, `mode` is unknown or `min_intensity` is outside (0, 1).
    """
    del seed
    _check_n_steps(n_steps)
    x = _as_float_tensor(x, (2,), "latency encoder")
    steps = latency_spike_steps(x, n_steps, mode=mode, min_intensity=min_intensity)
    spikes = torch.zeros(x.shape[0], n_steps + 1, x.shape[1], dtype=torch.float32)
    # Features without a spike (step -1) write into the extra slot at index
    # n_steps, which is then cut off.
    index = torch.where(steps < 0, torch.full_like(steps, n_steps), steps)
    spikes.scatter_(1, index.unsqueeze(1), 1.0)
    return spikes[:, :n_steps].contiguous()


def encode_delta(
    x: torch.Tensor, n_steps: int, *, seed: int = 0, threshold: float = 0.1
) -> torch.Tensor:
    """Encode analog signals by threshold crossings on up and down channels.

    Each channel keeps a reference level that starts at the value of step 0.
    At step t, when `x[t] - ref >= threshold` the up channel spikes and the
    reference rises by `k * threshold`, where k is the whole number of thresholds
    crossed. A fall of at least `threshold` does the same on the down channel.
    A channel emits at most one spike per step, and step 0 never spikes.

    Parameters
    ----------
    x : torch.Tensor
        Analog signals `[n, T, C]` with `T == n_steps`.
    n_steps : int
        Number of time steps T.
    seed : int
        Ignored because the code is deterministic. It keeps the signature the
        same as the other encoders.
    threshold : float
        Level step that triggers a spike, > 0.

    Returns
    -------
    torch.Tensor
        Binary float32 spikes `[n, T, 2C]`: up channels `0..C-1`, then down
        channels `C..2C-1`.

    Raises
    ------
    ValueError
        If `x` is not 3-D, its length differs from `n_steps`, or `threshold <= 0`.
    """
    del seed
    _check_n_steps(n_steps)
    x = _as_float_tensor(x, (3,), "delta encoder")
    _match_sequence_length(x, n_steps, "delta encoder")
    if not threshold > 0:
        raise ValueError(
            f"delta threshold must be > 0, got {threshold!r}; pass a positive level"
        )
    signal = x.to(torch.float64)
    reference = signal[:, 0].clone()
    up = torch.zeros_like(signal)
    down = torch.zeros_like(signal)
    for t in range(1, n_steps):
        levels = torch.trunc((signal[:, t] - reference) / threshold)
        up[:, t] = (levels >= 1).to(signal.dtype)
        down[:, t] = (levels <= -1).to(signal.dtype)
        reference = reference + levels * threshold
    return torch.cat([up, down], dim=2).to(torch.float32)


def encode_direct(
    x: torch.Tensor, n_steps: int, *, seed: int = 0, gain: float = 1.0
) -> torch.Tensor:
    """Encode values as an input current injected at every step.

    Parameters
    ----------
    x : torch.Tensor
        Values `[n, N]`, repeated over time, or a sequence `[n, T, N]` with
        `T == n_steps`, passed through.
    n_steps : int
        Number of time steps T.
    seed : int
        Ignored because the code is deterministic. It keeps the signature the
        same as the other encoders.
    gain : float
        Factor applied to the current.

    Returns
    -------
    torch.Tensor
        float32 current `[n, T, N]`.

    Raises
    ------
    ValueError
        If `x` is not 2-D or 3-D, or a 3-D `x` does not have `n_steps` steps.
    """
    del seed
    _check_n_steps(n_steps)
    x = _as_float_tensor(x, (2, 3), "direct encoder")
    if x.dim() == 2:
        x = _repeat_over_time(x, n_steps)
    else:
        _match_sequence_length(x, n_steps, "direct encoder")
    return (x * gain).contiguous()


ENCODERS: dict[str, Encoder] = {
    "rate": encode_rate,
    "latency": encode_latency,
    "delta": encode_delta,
    "direct": encode_direct,
}


def get_encoder(name: str) -> Encoder:
    """Look up an encoder function by name.

    Parameters
    ----------
    name : str
        One of "rate", "latency", "delta", "direct".

    Returns
    -------
    Callable
        The `encode_<name>` function.

    Raises
    ------
    ValueError
        If `name` is not a known encoder.
    """
    try:
        return ENCODERS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown encoder {name!r}; valid encoders are {sorted(ENCODERS)}"
        ) from None
