"""Synthetic keyword-spotting corpus spoken by the `espeak-ng` speech synthesiser.

`generate_corpus` writes a classification folder `root/<class_name>/*.wav` that
`spiketune.data.audio` loads directly. Keywords get one folder each. By default
all distractor words share one `_unknown` folder, the usual "unknown word"
class of keyword spotting. Pass `unknown_class=None` to give each distractor
its own folder instead.
"""

from __future__ import annotations

import itertools
import logging
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.io import wavfile

from spiketune.data.audio import pcm_to_float, resample

logger = logging.getLogger(__name__)

ESPEAK_BINARY = "espeak-ng"
ESPEAK_TIMEOUT_S = 30.0
# Speech is scaled to this peak before noise is added, which leaves headroom
# so that noisy clips rarely clip at full scale.
SPEECH_PEAK = 0.5
INT16_FULL_SCALE = 32767


def find_espeak() -> str:
    """Locate the `espeak-ng` executable.

    Returns
    -------
    str
        Path of the executable.

    Raises
    ------
    FileNotFoundError
        If `espeak-ng` is not on PATH.
    """
    executable = shutil.which(ESPEAK_BINARY)
    if executable is None:
        raise FileNotFoundError(
            f"{ESPEAK_BINARY} was not found on PATH; install it (for example "
            f"`apt-get install {ESPEAK_BINARY}`) to generate a speech corpus"
        )
    return executable


def synthesize(
    word: str, voice: str, pitch: int, speed: int, *, executable: str | None = None
) -> tuple[int, np.ndarray]:
    """Speak one word with espeak-ng.

    Parameters
    ----------
    word : str
        Text to speak.
    voice : str
        espeak-ng voice name, such as "en-us" or "en-us+f3".
    pitch : int
        Pitch, 0..99 (espeak-ng `-p`).
    speed : int
        Speed in words per minute (espeak-ng `-s`).
    executable : str, optional
        espeak-ng path. None looks it up on PATH.

    Returns
    -------
    sample_rate : int
        Sample rate of the synthesised audio in Hz (22050 for espeak-ng 1.51).
    samples : numpy.ndarray
        float32 mono samples, full scale 1.0.

    Raises
    ------
    RuntimeError
        If espeak-ng fails or writes no audio.
    """
    executable = executable or find_espeak()
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "speech.wav"
        command = [executable, "-v", voice, "-p", str(pitch), "-s", str(speed)]
        command += ["-w", str(output), word]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=ESPEAK_TIMEOUT_S
        )
        if result.returncode != 0 or not output.is_file():
            raise RuntimeError(
                f"espeak-ng failed for word={word!r} voice={voice!r} "
                f"(exit code {result.returncode}): {result.stderr.strip()}; "
                "check the voice name with `espeak-ng --voices`"
            )
        sample_rate, data = wavfile.read(output)
    samples = pcm_to_float(data)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    if samples.size == 0 or not np.any(samples):
        raise RuntimeError(f"espeak-ng produced silence for word={word!r}")
    return int(sample_rate), samples


def add_white_noise(
    signal: np.ndarray, snr_db: float, rng: np.random.Generator
) -> np.ndarray:
    """Add Gaussian white noise at a signal-to-noise ratio.

    The signal power is the mean square over the whole clip, including its
    silent parts.

    Parameters
    ----------
    signal : numpy.ndarray
        Mono samples.
    snr_db : float
        Signal-to-noise ratio in dB.
    rng : numpy.random.Generator
        Source of the noise.

    Returns
    -------
    numpy.ndarray
        Noisy float32 samples, clipped to [-1, 1].
    """
    signal_power = float(np.mean(np.square(signal, dtype=np.float64)))
    noise_power = signal_power / 10.0 ** (snr_db / 10.0)
    noise = rng.normal(0.0, np.sqrt(noise_power), size=signal.shape)
    return np.clip(signal + noise, -1.0, 1.0).astype(np.float32)


def _check_words(
    words: Sequence[str], distractors: Sequence[str], unknown_class: str | None
) -> None:
    if not words:
        raise ValueError("words is empty; pass at least one keyword")
    for word in [*words, *distractors]:
        if not isinstance(word, str) or not re.fullmatch(r"[A-Za-z][\w' ]*", word):
            raise ValueError(
                f"word {word!r} is invalid; use text that starts with a letter and "
                "contains only letters, digits, '_', apostrophes and spaces"
            )
    all_words = [*words, *distractors]
    repeated = sorted({word for word in all_words if all_words.count(word) > 1})
    if repeated:
        raise ValueError(f"words {repeated} are listed more than once; list each once")
    if unknown_class is not None and unknown_class in words:
        raise ValueError(
            f"unknown_class={unknown_class!r} is also a keyword; rename one of them"
        )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", str(text)).strip("-")


def generate_corpus(
    root: str | Path,
    words: Sequence[str] = ("yes", "no"),
    distractors: Sequence[str] = ("up", "down", "left", "right"),
    voices: Sequence[str] = ("en-us", "en-gb", "en-us+f3"),
    pitches: Sequence[int] = (35, 65),
    speeds: Sequence[int] = (140, 180),
    snr_db: Sequence[float | None] = (20, 10),
    seed: int = 0,
    sample_rate: int = 16000,
    unknown_class: str | None = "_unknown",
) -> Path:
    """Speak words with espeak-ng and write them as a noisy wav corpus.

    Every word is spoken once per voice, pitch and speed, and written once per
    entry of `snr_db`, so each word gets
    `len(voices) * len(pitches) * len(speeds) * len(snr_db)` clips.
    Files are named `<word>_<voice>_p<pitch>_s<speed>_snr<dB>.wav` and stored
    as 16-bit mono. Existing files with the same names are overwritten.

    Parameters
    ----------
    root : str or pathlib.Path
        Output folder, created if missing.
    words : sequence of str
        Keywords. Each gets its own class folder.
    distractors : sequence of str
        Other words, stored in `unknown_class`, or in their own folders when
        `unknown_class` is None.
    voices : sequence of str
        espeak-ng voice names.
    pitches : sequence of int
        espeak-ng pitches, 0..99.
    speeds : sequence of int
        espeak-ng speeds in words per minute.
    snr_db : sequence of float or None
        Signal-to-noise ratios in dB. None writes a clean copy.
    seed : int
        Seed of the noise, so the corpus is the same on every run.
    sample_rate : int
        Sample rate of the written files in Hz.
    unknown_class : str or None
        Folder name for all distractors, or None for one folder per distractor.

    Returns
    -------
    pathlib.Path
        The absolute corpus folder.

    Raises
    ------
    FileNotFoundError
        If espeak-ng is not installed.
    ValueError
        If a word is invalid or repeated, or a variation list is empty.
    RuntimeError
        If espeak-ng fails, for example on an unknown voice.
    """
    executable = find_espeak()
    _check_words(words, distractors, unknown_class)
    variations = {"voices": voices, "pitches": pitches, "speeds": speeds}
    for name, values in {**variations, "snr_db": snr_db}.items():
        if not values:
            raise ValueError(f"{name} is empty; pass at least one value")
    root = Path(root).expanduser().resolve()
    rng = np.random.default_rng(seed)
    folders = {word: word for word in words}
    for word in distractors:
        folders[word] = unknown_class if unknown_class is not None else word
    n_written = 0
    for word, folder_name in folders.items():
        folder = root / folder_name
        folder.mkdir(parents=True, exist_ok=True)
        for voice, pitch, speed in itertools.product(voices, pitches, speeds):
            source_rate, speech = synthesize(
                word, voice, pitch, speed, executable=executable
            )
            speech = resample(speech, source_rate, sample_rate)
            speech = speech * (SPEECH_PEAK / np.max(np.abs(speech)))
            stem = f"{_slug(word)}_{_slug(voice)}_p{pitch}_s{speed}"
            n_written += _write_noisy_copies(
                folder / stem, speech, snr_db, rng, sample_rate
            )
    logger.info("wrote %d clips for %d words to %s", n_written, len(folders), root)
    return root


def _write_noisy_copies(
    stem_path: Path,
    speech: np.ndarray,
    snr_db: Sequence[float | None],
    rng: np.random.Generator,
    sample_rate: int,
) -> int:
    for snr in snr_db:
        noisy = speech if snr is None else add_white_noise(speech, snr, rng)
        label = "clean" if snr is None else f"{snr:g}"
        pcm = np.round(noisy * INT16_FULL_SCALE).astype(np.int16)
        path = stem_path.with_name(f"{stem_path.name}_snr{label}.wav")
        wavfile.write(path, sample_rate, pcm)
    return len(snr_db)
