"""Band-pass filter bank front end that turns audio into `[T, channels]` features.

The front end imitates the analog filter banks of neuromorphic audio chips: a set
of Butterworth band-pass filters with log-spaced band edges, a rectifier, and a
per-bin mean of the rectified amplitude. The mean is then optionally
log-compressed and normalised per clip.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.signal import butter, sosfilt

logger = logging.getLogger(__name__)

RECTIFY_MODES = ("full", "half")
COMPRESS_MODES = ("none", "log")
NORMALIZE_MODES = ("none", "max")


@dataclass(frozen=True)
class FrontEndSettings:
    """Front-end parameters that define the audio features.

    Every field is part of the feature cache key, so changing any of them
    recomputes the features.

    Attributes
    ----------
    sample_rate : int
        Rate in Hz that clips are resampled to before filtering.
    duration_s : float
        Clip length in seconds after zero-padding or trimming.
    bin_s : float
        Time bin in seconds, rounded to a whole number of samples.
    n_channels : int
        Number of band-pass channels.
    f_min, f_max : float
        Lower edge of the first band and upper edge of the last band, in Hz.
    order : int
        Butterworth order of each band's low-pass prototype. The band-pass
        filter has twice this order.
    rectify : str
        "full" (absolute value) or "half" (negative values set to zero).
    compress : str
        "log" applies `log1p(x / log_floor)` to each bin, "none" keeps the mean.
    log_floor : float
        Amplitude scale of the log compression, relative to full scale 1.0.
    normalize : str
        "max" divides each clip by its maximum so features lie in [0, 1],
        "none" keeps the scale.
    """

    sample_rate: int = 16000
    duration_s: float = 1.0
    bin_s: float = 0.01
    n_channels: int = 16
    f_min: float = 100.0
    f_max: float = 7000.0
    order: int = 2
    rectify: str = "full"
    compress: str = "log"
    log_floor: float = 1e-3
    normalize: str = "max"

    @property
    def n_samples(self) -> int:
        """Number of samples in a clip after padding or trimming."""
        return int(round(self.duration_s * self.sample_rate))

    @property
    def bin_samples(self) -> int:
        """Number of samples per time bin."""
        return int(round(self.bin_s * self.sample_rate))

    @property
    def n_bins(self) -> int:
        """Number of time bins T. A trailing partial bin is dropped."""
        return self.n_samples // max(self.bin_samples, 1)

    def to_dict(self) -> dict[str, object]:
        """Convert the settings to a plain dict, in field order."""
        return dataclasses.asdict(self)

    def validate(self, prefix: str = "") -> None:
        """Check ranges and cross-field constraints of the settings.

        Parameters
        ----------
        prefix : str
            Text put before each field name in messages, such as "data.".

        Raises
        ------
        ValueError
            If a value is out of range, naming the field, the value and the fix.
        """
        _check_choice(prefix + "rectify", self.rectify, RECTIFY_MODES)
        _check_choice(prefix + "compress", self.compress, COMPRESS_MODES)
        _check_choice(prefix + "normalize", self.normalize, NORMALIZE_MODES)
        _check_positive(prefix + "sample_rate", self.sample_rate)
        _check_positive(prefix + "duration_s", self.duration_s)
        _check_positive(prefix + "bin_s", self.bin_s)
        _check_positive(prefix + "n_channels", self.n_channels)
        _check_positive(prefix + "f_min", self.f_min)
        _check_positive(prefix + "order", self.order)
        _check_positive(prefix + "log_floor", self.log_floor)
        nyquist = self.sample_rate / 2
        if not self.f_min < self.f_max < nyquist:
            raise ValueError(
                f"{prefix}f_min={self.f_min} and {prefix}f_max={self.f_max} must "
                f"satisfy f_min < f_max < {nyquist:g} Hz (half of sample_rate="
                f"{self.sample_rate}); lower f_max or raise sample_rate"
            )
        if self.bin_samples < 1:
            raise ValueError(
                f"{prefix}bin_s={self.bin_s} is shorter than one sample at "
                f"sample_rate={self.sample_rate}; use bin_s >= {1 / self.sample_rate:g}"
            )
        if self.n_bins < 1:
            raise ValueError(
                f"{prefix}bin_s={self.bin_s} is longer than {prefix}duration_s="
                f"{self.duration_s}; use a bin no longer than the clip"
            )


def _check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{key}={value!r} is invalid; use one of {list(choices)}")


def _check_positive(key: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{key}={value!r} is invalid; it must be > 0")


def band_edges(n_channels: int, f_min: float, f_max: float) -> np.ndarray:
    """Compute log-spaced band edges in Hz.

    Parameters
    ----------
    n_channels : int
        Number of bands.
    f_min, f_max : float
        Lowest and highest edge in Hz.

    Returns
    -------
    numpy.ndarray
        `n_channels + 1` edges. Band i spans `edges[i]` to `edges[i + 1]`.
    """
    return np.geomspace(f_min, f_max, n_channels + 1)


def band_centres(n_channels: int, f_min: float, f_max: float) -> np.ndarray:
    """Compute the geometric centre frequency of each band in Hz.

    Parameters
    ----------
    n_channels : int
        Number of bands.
    f_min, f_max : float
        Lowest and highest edge in Hz.

    Returns
    -------
    numpy.ndarray
        `n_channels` centre frequencies, `sqrt(low * high)` per band.
    """
    edges = band_edges(n_channels, f_min, f_max)
    return np.sqrt(edges[:-1] * edges[1:])


@lru_cache(maxsize=32)
def design_filterbank(
    sample_rate: int, n_channels: int, f_min: float, f_max: float, order: int
) -> tuple[np.ndarray, ...]:
    """Design one Butterworth band-pass filter per band.

    Parameters
    ----------
    sample_rate : int
        Sample rate in Hz.
    n_channels : int
        Number of bands.
    f_min, f_max : float
        Lowest and highest band edge in Hz, with `f_max < sample_rate / 2`.
    order : int
        Order of the low-pass prototype of each filter.

    Returns
    -------
    tuple of numpy.ndarray
        Second-order sections `[n_sections, 6]` per band. The arrays are shared
        by every caller through the cache, so do not modify them.
    """
    edges = band_edges(n_channels, f_min, f_max)
    return tuple(
        butter(order, [low, high], btype="bandpass", output="sos", fs=sample_rate)
        for low, high in zip(edges[:-1], edges[1:], strict=True)
    )


def rectify_signal(signal: np.ndarray, mode: str) -> np.ndarray:
    """Rectify a filtered signal.

    Parameters
    ----------
    signal : numpy.ndarray
        Filter output.
    mode : str
        "full" takes the absolute value and "half" sets negative values to 0.

    Returns
    -------
    numpy.ndarray
        Rectified signal of the same shape.
    """
    if mode == "full":
        return np.abs(signal)
    return np.maximum(signal, 0.0)


def bin_mean(signal: np.ndarray, bin_samples: int, n_bins: int) -> np.ndarray:
    """Average a `[n_samples, C]` signal over consecutive time bins.

    Parameters
    ----------
    signal : numpy.ndarray
        Signal `[n_samples, C]` with at least `n_bins * bin_samples` samples.
    bin_samples : int
        Samples per bin.
    n_bins : int
        Number of bins. Samples after the last full bin are ignored.

    Returns
    -------
    numpy.ndarray
        Bin means `[n_bins, C]`.
    """
    used = signal[: n_bins * bin_samples]
    return used.reshape(n_bins, bin_samples, signal.shape[1]).mean(axis=1)


def compute_features(signal: np.ndarray, settings: FrontEndSettings) -> np.ndarray:
    """Run a mono clip through the filter bank and bin its rectified output.

    Parameters
    ----------
    signal : numpy.ndarray
        Mono samples at `settings.sample_rate`, full scale 1.0, with exactly
        `settings.n_samples` samples.
    settings : FrontEndSettings
        Front-end parameters.

    Returns
    -------
    numpy.ndarray
        float32 features `[settings.n_bins, settings.n_channels]`.

    Raises
    ------
    ValueError
        If `signal` is not 1-D with `settings.n_samples` samples.
    """
    if signal.ndim != 1 or signal.shape[0] != settings.n_samples:
        raise ValueError(
            f"signal must be 1-D with {settings.n_samples} samples, got shape "
            f"{signal.shape}; pad or trim the clip to duration_s first"
        )
    filters = design_filterbank(
        settings.sample_rate,
        settings.n_channels,
        float(settings.f_min),
        float(settings.f_max),
        settings.order,
    )
    samples = signal.astype(np.float64)
    bands = np.stack([sosfilt(sos, samples) for sos in filters], axis=1)
    rectified = rectify_signal(bands, settings.rectify)
    features = bin_mean(rectified, settings.bin_samples, settings.n_bins)
    if settings.compress == "log":
        features = np.log1p(features / settings.log_floor)
    if settings.normalize == "max":
        peak = features.max()
        if peak > 0:
            features = features / peak
    return features.astype(np.float32)


def tone_response(
    frequency: float, settings: FrontEndSettings, amplitude: float = 0.5
) -> np.ndarray:
    """Compute the mean feature per channel for a pure tone.

    Useful to check which channel a frequency excites.

    Parameters
    ----------
    frequency : float
        Tone frequency in Hz.
    settings : FrontEndSettings
        Front-end parameters.
    amplitude : float
        Tone amplitude relative to full scale.

    Returns
    -------
    numpy.ndarray
        Mean feature `[n_channels]` over all bins.
    """
    time = np.arange(settings.n_samples) / settings.sample_rate
    tone = amplitude * np.sin(2 * math.pi * frequency * time)
    return compute_features(tone, settings).mean(axis=0)
