"""Audio datasets for keyword spotting and sequence regression.

Two folder layouts are supported:

* classification: `root/<class_name>/*.wav`. The label is the folder name and
  classes are sorted by name. Folders whose names start with "." are ignored.
* regression: `root/wavs/<stem>.wav` with a target tensor `root/target/<stem>.pt`
  of shape `(T,)` or `(T, C)`, where T is the number of feature bins.

Each clip is read with `scipy.io.wavfile`, mixed to mono, resampled with
`scipy.signal.resample_poly`, zero-padded or trimmed, and passed through the
filter bank in `spiketune.data.filterbank`. Features are cached on disk by
`spiketune.data.cache`.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from math import gcd
from pathlib import Path

import numpy as np
import torch
from scipy.io import wavfile
from scipy.signal import resample_poly

from spiketune.data.cache import FeatureCache, default_cache_dir, feature_cache_key
from spiketune.data.filterbank import FrontEndSettings, compute_features

logger = logging.getLogger(__name__)

TASK_LAYOUTS = ("auto", "classification", "regression")
REGRESSION_AUDIO_DIR = "wavs"
REGRESSION_TARGET_DIR = "target"


class AudioFileError(ValueError):
    """Invalid audio or target file; `path` names the file.

    `load_audio_dataset(..., skip_bad_files=True)` skips the file with a warning
    instead of raising.
    """

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


@dataclass
class AudioDataset:
    """Features and targets of every loaded clip, before splitting.

    Attributes
    ----------
    features : numpy.ndarray
        float32 `[n, T, n_channels]`.
    targets : numpy.ndarray
        int64 labels `[n]` for classification, float32 `[n, T, C]` for
        regression.
    task : str
        "classification" or "regression".
    class_names : list of str
        Class folder names for classification, `target_<i>` per target channel
        for regression.
    files : list of pathlib.Path
        Source file of each row.
    skipped : list of str
        One message per skipped file, empty unless files were skipped.
    """

    features: np.ndarray
    targets: np.ndarray
    task: str
    class_names: list[str]
    files: list[Path]
    skipped: list[str] = field(default_factory=list)


def pcm_to_float(data: np.ndarray) -> np.ndarray:
    """Convert wav samples of any scipy-supported dtype to float32, full scale 1.0.

    Parameters
    ----------
    data : numpy.ndarray
        Samples as returned by `scipy.io.wavfile.read`.

    Returns
    -------
    numpy.ndarray
        float32 samples of the same shape.
    """
    if data.dtype == np.uint8:
        return (data.astype(np.float32) - 128.0) / 128.0
    if np.issubdtype(data.dtype, np.integer):
        full_scale = float(2 ** (8 * data.dtype.itemsize - 1))
        return (data.astype(np.float64) / full_scale).astype(np.float32)
    return data.astype(np.float32)


def read_wav(
    path: Path,
    *,
    expect_sample_rate: int | None = None,
    expect_channels: int | None = None,
) -> tuple[int, np.ndarray]:
    """Read a wav file as float32 samples with a channel axis.

    Parameters
    ----------
    path : pathlib.Path
        Wav file.
    expect_sample_rate : int, optional
        Sample rate in Hz that the file must have.
    expect_channels : int, optional
        Channel count that the file must have.

    Returns
    -------
    sample_rate : int
        The file's sample rate in Hz.
    samples : numpy.ndarray
        float32 samples `[n_samples, channels]`, full scale 1.0.

    Raises
    ------
    AudioFileError
        If the file cannot be parsed, has no samples, or differs from a pinned
        sample rate or channel count.
    """
    try:
        sample_rate, data = wavfile.read(path)
    except (ValueError, OSError, EOFError) as exc:
        raise AudioFileError(
            path, f"cannot read wav file ({exc}); replace or delete the file"
        ) from exc
    if data.ndim == 1:
        data = data[:, np.newaxis]
    check_wav_format(
        path, int(sample_rate), data.shape[1], expect_sample_rate, expect_channels
    )
    if data.shape[0] == 0:
        raise AudioFileError(
            path, "wav file has zero samples; replace or delete the file"
        )
    return int(sample_rate), pcm_to_float(data)


def check_wav_format(
    path: Path,
    sample_rate: int,
    n_channels: int,
    expect_sample_rate: int | None,
    expect_channels: int | None,
) -> None:
    """Raise `AudioFileError` if a file differs from a pinned rate or channel count.

    Parameters
    ----------
    path : pathlib.Path
        File named in the message.
    sample_rate, n_channels : int
        The file's format.
    expect_sample_rate, expect_channels : int, optional
        Pinned values. None accepts any value.
    """
    if expect_sample_rate is not None and sample_rate != expect_sample_rate:
        raise AudioFileError(
            path,
            f"sample rate is {sample_rate} Hz but data.expect_sample_rate="
            f"{expect_sample_rate}; convert the file or unset expect_sample_rate",
        )
    if expect_channels is not None and n_channels != expect_channels:
        raise AudioFileError(
            path,
            f"file has {n_channels} channels but data.expect_channels="
            f"{expect_channels}; convert the file or unset expect_channels",
        )


def resample(samples: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Resample a mono signal with a polyphase filter.

    Parameters
    ----------
    samples : numpy.ndarray
        Mono samples.
    source_rate, target_rate : int
        Sample rates in Hz.

    Returns
    -------
    numpy.ndarray
        Samples at `target_rate`.
    """
    if source_rate == target_rate:
        return samples
    divisor = gcd(int(source_rate), int(target_rate))
    up = int(target_rate) // divisor
    down = int(source_rate) // divisor
    return resample_poly(samples, up, down).astype(np.float32)


def fit_length(samples: np.ndarray, n_samples: int) -> np.ndarray:
    """Zero-pad the end of a signal or trim it to `n_samples`.

    Parameters
    ----------
    samples : numpy.ndarray
        Mono samples.
    n_samples : int
        Output length.

    Returns
    -------
    numpy.ndarray
        Samples of length `n_samples`.
    """
    if samples.shape[0] >= n_samples:
        return samples[:n_samples]
    return np.pad(samples, (0, n_samples - samples.shape[0]))


def extract_clip_features(
    path: str | Path,
    settings: FrontEndSettings,
    *,
    cache_dir: str | Path | None = None,
    expect_sample_rate: int | None = None,
    expect_channels: int | None = None,
    cache: FeatureCache | None = None,
) -> np.ndarray:
    """Compute one clip's features, reading them from the disk cache when present.

    The pinned format checks also run on cache hits, because the cache stores
    each file's original sample rate and channel count.

    Parameters
    ----------
    path : str or pathlib.Path
        Wav file.
    settings : FrontEndSettings
        Front-end parameters.
    cache_dir : str or pathlib.Path, optional
        Cache folder, used when `cache` is None. None uses `default_cache_dir()`.
    expect_sample_rate, expect_channels : int, optional
        Pinned source format. None accepts any value.
    cache : FeatureCache, optional
        Cache to use, so a caller can read its hit and miss counters.

    Returns
    -------
    numpy.ndarray
        float32 features `[T, n_channels]`.

    Raises
    ------
    AudioFileError
        If the file is unreadable, empty, or differs from the pinned format.
    """
    path = Path(path)
    if cache is None:
        cache = FeatureCache(
            cache_dir if cache_dir is not None else default_cache_dir()
        )
    key = feature_cache_key(path, settings.to_dict())
    stored = cache.get(key)
    if stored is not None:
        check_wav_format(
            path,
            int(stored["source_rate"]),
            int(stored["source_channels"]),
            expect_sample_rate,
            expect_channels,
        )
        return stored["features"]
    source_rate, samples = read_wav(
        path, expect_sample_rate=expect_sample_rate, expect_channels=expect_channels
    )
    source_channels = samples.shape[1]
    mono = samples.mean(axis=1)
    signal = fit_length(
        resample(mono, source_rate, settings.sample_rate), settings.n_samples
    )
    features = compute_features(signal, settings)
    cache.put(
        key,
        {
            "features": features,
            "source_rate": np.array(source_rate),
            "source_channels": np.array(source_channels),
        },
    )
    return features


class _BadFileLog:
    """Raise bad-file errors, or record them when skipping is enabled."""

    def __init__(self, skip: bool) -> None:
        self.skip = skip
        self.messages: list[str] = []

    def handle(self, error: AudioFileError) -> None:
        if not self.skip:
            raise error
        logger.warning("skipping %s", error)
        self.messages.append(str(error))


def detect_layout(root: Path) -> str:
    """Detect whether `root` contains a classification or a regression dataset.

    Parameters
    ----------
    root : pathlib.Path
        Dataset folder.

    Returns
    -------
    str
        "regression" when `root/wavs` and `root/target` are folders, otherwise
        "classification".
    """
    has_audio = (root / REGRESSION_AUDIO_DIR).is_dir()
    has_targets = (root / REGRESSION_TARGET_DIR).is_dir()
    return "regression" if has_audio and has_targets else "classification"


def list_wav_files(folder: Path) -> list[Path]:
    """List the `.wav` files of a folder, sorted by name.

    Parameters
    ----------
    folder : pathlib.Path
        Folder to list. Hidden files and the suffix case are handled: names
        starting with "." are skipped and ".WAV" counts as a wav file.

    Returns
    -------
    list of pathlib.Path
        Wav files.
    """
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file()
        and path.suffix.lower() == ".wav"
        and not path.name.startswith(".")
    )


def list_class_folders(root: Path, exclude: Path | None = None) -> list[Path]:
    """List the class folders of a classification dataset, sorted by name.

    Parameters
    ----------
    root : pathlib.Path
        Dataset folder.
    exclude : pathlib.Path, optional
        Folder to leave out, such as a feature cache placed inside `root`.

    Returns
    -------
    list of pathlib.Path
        Sub-folders whose names do not start with ".".
    """
    excluded = exclude.resolve() if exclude is not None else None
    return sorted(
        path
        for path in root.iterdir()
        if path.is_dir()
        and not path.name.startswith(".")
        and path.resolve() != excluded
    )


def load_audio_dataset(
    root: str | Path,
    settings: FrontEndSettings,
    *,
    task: str = "auto",
    cache_dir: str | Path | None = None,
    skip_bad_files: bool = False,
    expect_sample_rate: int | None = None,
    expect_channels: int | None = None,
) -> AudioDataset:
    """Load every clip of a dataset folder as filter-bank features.

    Parameters
    ----------
    root : str or pathlib.Path
        Dataset folder in the classification or regression layout.
    settings : FrontEndSettings
        Front-end parameters.
    task : str
        "classification", "regression", or "auto" to detect the layout.
    cache_dir : str or pathlib.Path, optional
        Feature cache folder. None uses `default_cache_dir()`.
    skip_bad_files : bool
        Skip invalid files and empty class folders, listing them all in one
        `warnings.warn`, instead of raising on the first one.
    expect_sample_rate, expect_channels : int, optional
        Pinned source format. None accepts any value.

    Returns
    -------
    AudioDataset
        Features and targets of every usable clip.

    Raises
    ------
    FileNotFoundError
        If `root` or a regression sub-folder does not exist.
    AudioFileError
        If a file or class folder is invalid and `skip_bad_files` is False.
    ValueError
        If `task` is unknown, no clip is usable, or fewer than two classes
        remain.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"audio dataset folder data.root={str(root)!r} does not exist; set "
            "data.root to a folder of <class_name>/*.wav or wavs/ + target/"
        )
    if task not in TASK_LAYOUTS:
        raise ValueError(f"data.task={task!r} is invalid; use one of {TASK_LAYOUTS}")
    layout = detect_layout(root) if task == "auto" else task
    cache_path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache = FeatureCache(cache_path)
    bad_files = _BadFileLog(skip_bad_files)
    options = {
        "cache": cache,
        "expect_sample_rate": expect_sample_rate,
        "expect_channels": expect_channels,
    }
    if layout == "classification":
        dataset = _load_classification(root, settings, bad_files, cache_path, options)
    else:
        dataset = _load_regression(root, settings, bad_files, options)
    logger.info(
        "loaded %d clips from %s (cache hits=%d, misses=%d, skipped=%d)",
        len(dataset.files),
        root,
        cache.hits,
        cache.misses,
        len(bad_files.messages),
    )
    if bad_files.messages:
        listing = "\n  ".join(bad_files.messages)
        warnings.warn(
            f"skipped {len(bad_files.messages)} bad file(s) under {root}:\n  {listing}",
            UserWarning,
            stacklevel=2,
        )
    dataset.skipped = list(bad_files.messages)
    return dataset


def _load_classification(
    root: Path,
    settings: FrontEndSettings,
    bad_files: _BadFileLog,
    cache_path: Path,
    options: dict,
) -> AudioDataset:
    features_by_class: dict[str, list[np.ndarray]] = {}
    files_by_class: dict[str, list[Path]] = {}
    for folder in list_class_folders(root, exclude=cache_path):
        wavs = list_wav_files(folder)
        if not wavs:
            bad_files.handle(
                AudioFileError(
                    folder,
                    "class folder contains no .wav files; add clips or remove "
                    "the folder",
                )
            )
            continue
        clips, used = _extract_many(wavs, settings, bad_files, options)
        if clips:
            features_by_class[folder.name] = clips
            files_by_class[folder.name] = used
    class_names = sorted(features_by_class)
    if len(class_names) < 2:
        raise ValueError(
            f"{root}: found {len(class_names)} class folder(s) with usable clips "
            f"({class_names}); classification needs at least 2 folders of .wav "
            "files, or use the regression layout wavs/ + target/"
        )
    features: list[np.ndarray] = []
    labels: list[int] = []
    files: list[Path] = []
    for label, name in enumerate(class_names):
        features.extend(features_by_class[name])
        labels.extend([label] * len(features_by_class[name]))
        files.extend(files_by_class[name])
    return AudioDataset(
        features=np.stack(features),
        targets=np.asarray(labels, dtype=np.int64),
        task="classification",
        class_names=class_names,
        files=files,
    )


def _extract_many(
    wavs: list[Path], settings: FrontEndSettings, bad_files: _BadFileLog, options: dict
) -> tuple[list[np.ndarray], list[Path]]:
    clips: list[np.ndarray] = []
    used: list[Path] = []
    for wav in wavs:
        try:
            clips.append(extract_clip_features(wav, settings, **options))
        except AudioFileError as error:
            bad_files.handle(error)
            continue
        used.append(wav)
    return clips, used


def _load_regression(
    root: Path, settings: FrontEndSettings, bad_files: _BadFileLog, options: dict
) -> AudioDataset:
    audio_dir = root / REGRESSION_AUDIO_DIR
    target_dir = root / REGRESSION_TARGET_DIR
    for folder in (audio_dir, target_dir):
        if not folder.is_dir():
            raise FileNotFoundError(
                f"regression folder {folder} does not exist; the regression layout "
                f"needs {REGRESSION_AUDIO_DIR}/<stem>.wav and "
                f"{REGRESSION_TARGET_DIR}/<stem>.pt under data.root"
            )

    wavs = list_wav_files(audio_dir)
    if not wavs:
        raise ValueError(f"{audio_dir} contains no .wav files; add clips to it")

    features: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    files: list[Path] = []
    for wav in wavs:
        expected_channels = targets[0].shape[1] if targets else None
        target_path = target_dir / f"{wav.stem}.pt"
        try:
            target = load_target(target_path, settings, expected_channels)
            clip = extract_clip_features(wav, settings, **options)
        except AudioFileError as error:
            bad_files.handle(error)
            continue
        features.append(clip)
        targets.append(target)
        files.append(wav)
    if not files:
        raise ValueError(f"{root}: no usable clips left after skipping bad files")

    n_targets = targets[0].shape[1]
    return AudioDataset(
        features=np.stack(features),
        targets=np.stack(targets),
        task="regression",
        class_names=[f"target_{index}" for index in range(n_targets)],
        files=files,
    )


def load_target(
    path: Path, settings: FrontEndSettings, expected_channels: int | None = None
) -> np.ndarray:
    """Load one regression target and check it against the feature length.

    Parameters
    ----------
    path : pathlib.Path
        `.pt` file containing a tensor `(T,)` or `(T, C)`.
    settings : FrontEndSettings
        Front-end parameters, which fix T.
    expected_channels : int, optional
        C that every target must share. None accepts any C.

    Returns
    -------
    numpy.ndarray
        float32 target `[T, C]`.

    Raises
    ------
    AudioFileError
        If the file is missing or unreadable, or its shape does not fit.
    """
    if not path.is_file():
        raise AudioFileError(
            path, "target file not found; add it or remove the matching wav file"
        )
    try:
        target = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many unrelated exception types
        raise AudioFileError(
            path, f"cannot load target ({exc}); save it with torch.save(tensor)"
        ) from exc
    if not isinstance(target, torch.Tensor) or target.dim() not in (1, 2):
        raise AudioFileError(
            path, "target must be a tensor of shape (T,) or (T, C); re-save it"
        )
    if target.dim() == 1:
        target = target.unsqueeze(1)
    n_bins = settings.n_bins
    if target.shape[0] != n_bins:
        raise AudioFileError(
            path,
            f"target has {target.shape[0]} steps but the features have T={n_bins} "
            f"(duration_s={settings.duration_s}, bin_s={settings.bin_s}); resample "
            "the target to T steps or change duration_s or bin_s",
        )
    if expected_channels is not None and target.shape[1] != expected_channels:
        raise AudioFileError(
            path,
            f"target has {target.shape[1]} channels but earlier targets have "
            f"{expected_channels}; give every target the same shape",
        )
    return target.to(torch.float32).numpy()
