"""Tests for the espeak-ng corpus generator in spiketune.data.corpus."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.io import wavfile
from torch.utils.data import DataLoader

import spiketune.data.corpus as corpus_module
from spiketune.data import build_task, generate_corpus
from spiketune.data.corpus import add_white_noise

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng is not installed; install it with `apt-get install espeak-ng`",
)

TINY_CORPUS = {
    "words": ("yes", "no"),
    "distractors": ("up",),
    "voices": ("en-us",),
    "pitches": (40, 70),
    "speeds": (150, 200),
    "snr_db": (20, 10),
}
CLIPS_PER_WORD = 8


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    return generate_corpus(root, seed=0, **TINY_CORPUS)


@needs_espeak
def test_corpus_folders_and_counts(tiny_corpus: Path) -> None:
    folders = sorted(path.name for path in tiny_corpus.iterdir())
    assert folders == ["_unknown", "no", "yes"]
    for folder in folders:
        assert len(list((tiny_corpus / folder).glob("*.wav"))) == CLIPS_PER_WORD


@needs_espeak
def test_corpus_files_are_16bit_mono(tiny_corpus: Path) -> None:
    sample_rate, data = wavfile.read(
        tiny_corpus / "yes" / "yes_en-us_p40_s150_snr20.wav"
    )
    assert sample_rate == 16000
    assert data.dtype == np.int16
    assert data.ndim == 1
    assert 0.2 * 16000 < data.shape[0] < 2 * 16000


@needs_espeak
def test_corpus_same_seed_same_bytes(tiny_corpus: Path, tmp_path: Path) -> None:
    again = generate_corpus(tmp_path / "again", seed=0, **TINY_CORPUS)
    for path in sorted(tiny_corpus.rglob("*.wav")):
        copy = again / path.relative_to(tiny_corpus)
        assert copy.read_bytes() == path.read_bytes(), path.name


@needs_espeak
def test_corpus_loads_into_batches(tiny_corpus: Path, tmp_path: Path) -> None:
    task = build_task(
        {
            "name": "audio",
            "root": str(tiny_corpus),
            "cache_dir": str(tmp_path / "cache"),
            "val_fraction": 0.25,
            "test_fraction": 0.25,
        }
    )
    assert task.class_names == ["_unknown", "no", "yes"]
    assert task.n_inputs == 16
    assert task.n_outputs == 3
    assert task.n_steps == 100
    assert [len(task.train), len(task.val), len(task.test)] == [12, 6, 6]
    x, y = next(iter(DataLoader(task.train, batch_size=4, shuffle=True)))
    assert x.shape == (4, 100, 16)
    assert x.dtype == torch.float32
    assert y.dtype == torch.int64
    assert x.min() >= 0.0
    assert x.max() <= 1.0


@needs_espeak
def test_corpus_distractors_in_own_folders(tmp_path: Path) -> None:
    root = generate_corpus(
        tmp_path,
        words=("yes",),
        distractors=("up", "down"),
        voices=("en-us",),
        pitches=(50,),
        speeds=(160,),
        snr_db=(None,),
        unknown_class=None,
    )
    assert sorted(path.name for path in root.iterdir()) == ["down", "up", "yes"]
    assert (root / "up" / "up_en-us_p50_s160_snrclean.wav").is_file()


@needs_espeak
def test_corpus_unknown_voice_raises(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="voice='xx-nosuch'"):
        generate_corpus(tmp_path, voices=("xx-nosuch",), distractors=())


def test_corpus_missing_espeak_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(corpus_module.shutil, "which", lambda name: None)
    with pytest.raises(FileNotFoundError, match="espeak-ng was not found"):
        generate_corpus(tmp_path)


@pytest.mark.parametrize(
    ("words", "distractors", "match"),
    [
        (("yes", "yes"), (), r"\['yes'\] are listed more than once"),
        (("-v",), (), "word '-v' is invalid"),
        (("a/b",), (), "word 'a/b' is invalid"),
        ((), ("up",), "words is empty"),
    ],
)
def test_corpus_invalid_words_raise(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    words: tuple[str, ...],
    distractors: tuple[str, ...],
    match: str,
) -> None:
    monkeypatch.setattr(corpus_module.shutil, "which", lambda name: "/bin/true")
    with pytest.raises(ValueError, match=match):
        generate_corpus(tmp_path, words=words, distractors=distractors)


def test_corpus_unknown_class_clash_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(corpus_module.shutil, "which", lambda name: "/bin/true")
    with pytest.raises(ValueError, match="unknown_class='yes'"):
        generate_corpus(tmp_path, unknown_class="yes")


@pytest.mark.parametrize("snr_db", [20.0, 10.0, 0.0])
def test_white_noise_reaches_snr(snr_db: float) -> None:
    time = np.arange(160000) / 16000
    signal = 0.1 * np.sin(2 * np.pi * 440 * time)
    noisy = add_white_noise(signal, snr_db, np.random.default_rng(0))
    noise = noisy - signal
    measured = 10 * np.log10(np.mean(signal**2) / np.mean(noise**2))
    # 160,000 noise samples estimate the noise power to about 0.4%, or 0.02 dB.
    assert measured == pytest.approx(snr_db, abs=0.1)
