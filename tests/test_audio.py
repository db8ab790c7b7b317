"""Tests for the audio front end, feature cache and audio datasets."""

from __future__ import annotations

import multiprocessing
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.io import wavfile

import spiketune.data.audio as audio_module
from spiketune.data import build_task, validate_data_config
from spiketune.data.audio import (
    AudioFileError,
    extract_clip_features,
    load_audio_dataset,
    read_wav,
)
from spiketune.data.filterbank import (
    FrontEndSettings,
    band_centres,
    compute_features,
    tone_response,
)

SETTINGS = FrontEndSettings(sample_rate=8000, duration_s=0.25, bin_s=0.01, f_max=3500.0)
TONES_BY_CLASS = {"high": 2000.0, "low": 300.0, "mid": 900.0}


def write_tone(
    path: Path,
    frequency: float,
    *,
    sample_rate: int = 8000,
    duration_s: float = 0.2,
    channels: int = 1,
) -> Path:
    """Write a 16-bit sine tone wav file."""
    time = np.arange(int(sample_rate * duration_s)) / sample_rate
    tone = 0.3 * np.sin(2 * np.pi * frequency * time)
    pcm = np.round(tone * 32767).astype(np.int16)
    if channels > 1:
        pcm = np.repeat(pcm[:, np.newaxis], channels, axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    wavfile.write(path, sample_rate, pcm)
    return path


def make_tone_corpus(root: Path, clips_per_class: int = 3) -> Path:
    """Write a classification corpus with one tone frequency per class."""
    for name, frequency in TONES_BY_CLASS.items():
        for index in range(clips_per_class):
            write_tone(
                root / name / f"{name}_{index}.wav", frequency * (1 + 0.02 * index)
            )
    return root


def audio_config(root: Path, cache_dir: Path, **overrides: object) -> dict:
    config = {
        "name": "audio",
        "root": str(root),
        "cache_dir": str(cache_dir),
        "sample_rate": 8000,
        "duration_s": 0.25,
        "bin_s": 0.01,
        "f_max": 3500.0,
        "val_fraction": 0.25,
        "test_fraction": 0.25,
    }
    config.update(overrides)
    return config


def cache_files(cache_dir: Path) -> dict[str, int]:
    return {path.name: path.stat().st_mtime_ns for path in cache_dir.glob("*.npz")}


@pytest.mark.parametrize(
    ("sample_rate", "duration_s", "bin_s", "n_bins"),
    [
        (32000, 1.0, 0.001, 1000),
        (16000, 1.0, 0.01, 100),
        (16000, 0.5, 0.02, 25),
        (8000, 0.75, 0.01, 75),
        (16000, 1.0, 0.003, 333),
        (48000, 2.0, 0.025, 80),
    ],
)
def test_front_end_bin_count(
    sample_rate: int, duration_s: float, bin_s: float, n_bins: int
) -> None:
    settings = FrontEndSettings(
        sample_rate=sample_rate, duration_s=duration_s, bin_s=bin_s, f_max=3000.0
    )
    assert settings.n_bins == n_bins
    features = compute_features(np.zeros(settings.n_samples), settings)
    assert features.shape == (n_bins, 16)
    assert features.dtype == np.float32


@pytest.mark.parametrize("band", [0, 4, 9, 15])
def test_filterbank_tone_excites_its_band(band: int) -> None:
    settings = FrontEndSettings(
        sample_rate=16000, duration_s=0.3, compress="none", normalize="none"
    )
    centre = band_centres(settings.n_channels, settings.f_min, settings.f_max)[band]
    response = tone_response(centre, settings)
    assert int(np.argmax(response)) == band


@pytest.mark.parametrize("rectify", ["full", "half"])
def test_filterbank_features_normalised(rectify: str) -> None:
    settings = FrontEndSettings(
        sample_rate=8000, duration_s=0.2, f_max=3500.0, rectify=rectify
    )
    response = tone_response(440.0, settings)
    assert response.min() >= 0.0
    assert response.max() <= 1.0


def test_half_rectify_halves_mean_amplitude() -> None:
    full = FrontEndSettings(
        sample_rate=8000,
        duration_s=0.5,
        f_max=3500.0,
        compress="none",
        normalize="none",
    )
    half = FrontEndSettings(**{**full.to_dict(), "rectify": "half"})
    ratio = tone_response(1000.0, half).max() / tone_response(1000.0, full).max()
    assert ratio == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("f_max", 4000.0, "f_max=4000.0"),
        ("rectify", "square", "rectify='square'"),
        ("bin_s", 1.0, "bin_s=1.0"),
        ("bin_s", 1e-5, "bin_s=1e-05 is shorter than one sample"),
        ("normalize", "zscore", "normalize='zscore'"),
    ],
)
def test_front_end_validate_names_field(field: str, value: object, match: str) -> None:
    settings = FrontEndSettings(**{**SETTINGS.to_dict(), field: value})
    with pytest.raises(ValueError, match=f"data.{match}"):
        settings.validate(prefix="data.")


def test_stereo_file_mixed_to_mono(tmp_path: Path) -> None:
    mono = write_tone(tmp_path / "mono.wav", 700.0)
    stereo = write_tone(tmp_path / "stereo.wav", 700.0, channels=2)
    cache = tmp_path / "cache"
    mono_features = extract_clip_features(mono, SETTINGS, cache_dir=cache)
    stereo_features = extract_clip_features(stereo, SETTINGS, cache_dir=cache)
    np.testing.assert_allclose(stereo_features, mono_features, atol=1e-6)


def test_resampled_file_matches_native_rate(tmp_path: Path) -> None:
    native = write_tone(tmp_path / "native.wav", 700.0, sample_rate=8000)
    high = write_tone(tmp_path / "high.wav", 700.0, sample_rate=16000)
    cache = tmp_path / "cache"
    native_features = extract_clip_features(native, SETTINGS, cache_dir=cache)
    high_features = extract_clip_features(high, SETTINGS, cache_dir=cache)
    assert native_features.shape == high_features.shape == (25, 16)
    np.testing.assert_allclose(high_features, native_features, atol=0.05)


def test_short_clip_zero_padded(tmp_path: Path) -> None:
    clip = write_tone(tmp_path / "short.wav", 700.0, duration_s=0.1)
    features = extract_clip_features(clip, SETTINGS, cache_dir=tmp_path / "cache")
    assert features.shape == (25, 16)
    # The tone ends at 0.1 s. The narrow low bands ring on, but by the last
    # 50 ms they are below 1% of the peak, even after log compression.
    assert np.all(features[-5:] < 0.01)


def test_load_classification_layout(tmp_path: Path) -> None:
    root = make_tone_corpus(tmp_path / "corpus")
    dataset = load_audio_dataset(root, SETTINGS, cache_dir=tmp_path / "cache")
    assert dataset.task == "classification"
    assert dataset.class_names == ["high", "low", "mid"]
    assert dataset.features.shape == (9, 25, 16)
    assert dataset.targets.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert dataset.files[0].name == "high_0.wav"


def test_build_audio_task_splits_stratified(tmp_path: Path) -> None:
    root = make_tone_corpus(tmp_path / "corpus", clips_per_class=4)
    task = build_task(audio_config(root, tmp_path / "cache"))
    assert task.n_inputs == 16
    assert task.n_outputs == 3
    assert task.n_steps == 25
    assert task.dt == pytest.approx(0.01)
    assert [len(task.train), len(task.val), len(task.test)] == [6, 3, 3]
    for split in (task.train, task.val, task.test):
        x, y = split.tensors
        assert x.shape[1:] == (25, 16)
        counts = torch.bincount(y, minlength=3)
        assert counts.tolist() == [len(y) // 3] * 3


def test_build_audio_task_delta_doubles_channels(tmp_path: Path) -> None:
    root = make_tone_corpus(tmp_path / "corpus", clips_per_class=4)
    task = build_task(audio_config(root, tmp_path / "cache", encoder="delta"))
    assert task.n_inputs == 32
    assert task.train.tensors[0].shape[2] == 32


def test_cache_reused_on_second_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_tone_corpus(tmp_path / "corpus")
    cache = tmp_path / "cache"
    first = load_audio_dataset(root, SETTINGS, cache_dir=cache)
    entries = cache_files(cache)
    assert len(entries) == 9

    calls: list[FrontEndSettings] = []

    def counting_features(signal: np.ndarray, settings: FrontEndSettings) -> np.ndarray:
        calls.append(settings)
        return compute_features(signal, settings)

    monkeypatch.setattr(audio_module, "compute_features", counting_features)
    second = load_audio_dataset(root, SETTINGS, cache_dir=cache)
    assert calls == []
    assert cache_files(cache) == entries
    np.testing.assert_array_equal(second.features, first.features)


def test_cache_setting_change_recomputes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_tone_corpus(tmp_path / "corpus")
    cache = tmp_path / "cache"
    load_audio_dataset(root, SETTINGS, cache_dir=cache)
    before = cache_files(cache)

    calls: list[FrontEndSettings] = []

    def counting_features(signal: np.ndarray, settings: FrontEndSettings) -> np.ndarray:
        calls.append(settings)
        return compute_features(signal, settings)

    monkeypatch.setattr(audio_module, "compute_features", counting_features)
    changed = FrontEndSettings(**{**SETTINGS.to_dict(), "order": 3})
    load_audio_dataset(root, changed, cache_dir=cache)
    assert len(calls) == 9
    after = cache_files(cache)
    assert len(after) == 18
    assert {name: after[name] for name in before} == before


def test_cache_touched_file_recomputes_only_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_tone_corpus(tmp_path / "corpus")
    cache = tmp_path / "cache"
    load_audio_dataset(root, SETTINGS, cache_dir=cache)
    before = cache_files(cache)
    touched = root / "mid" / "mid_1.wav"
    stat = touched.stat()
    os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))

    calls: list[FrontEndSettings] = []

    def counting_features(signal: np.ndarray, settings: FrontEndSettings) -> np.ndarray:
        calls.append(settings)
        return compute_features(signal, settings)

    monkeypatch.setattr(audio_module, "compute_features", counting_features)
    load_audio_dataset(root, SETTINGS, cache_dir=cache)
    assert len(calls) == 1
    after = cache_files(cache)
    assert len(set(after) - set(before)) == 1
    assert {name: after[name] for name in before} == before


def test_cache_corrupt_entry_recomputed(tmp_path: Path) -> None:
    clip = write_tone(tmp_path / "a.wav", 500.0)
    cache = tmp_path / "cache"
    expected = extract_clip_features(clip, SETTINGS, cache_dir=cache)
    (entry,) = cache.glob("*.npz")
    entry.write_bytes(b"truncated")
    features = extract_clip_features(clip, SETTINGS, cache_dir=cache)
    np.testing.assert_array_equal(features, expected)
    assert np.load(entry)["features"].shape == (25, 16)


def fill_cache_worker(root: str, cache_dir: str, output: str, barrier: object) -> None:
    """Load the dataset in a child process once both children are ready."""
    barrier.wait(timeout=60)
    dataset = load_audio_dataset(root, SETTINGS, cache_dir=cache_dir)
    np.save(output, dataset.features)


def test_cache_concurrent_processes_agree(tmp_path: Path) -> None:
    root = make_tone_corpus(tmp_path / "corpus", clips_per_class=6)
    cache = tmp_path / "cache"
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    outputs = [tmp_path / f"features_{index}.npy" for index in range(2)]
    workers = [
        context.Process(
            target=fill_cache_worker, args=(str(root), str(cache), str(output), barrier)
        )
        for output in outputs
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0]

    first, second = (np.load(output) for output in outputs)
    np.testing.assert_array_equal(first, second)
    assert list(cache.glob("*.tmp")) == []
    assert len(list(cache.glob("*.npz"))) == 18
    fresh = load_audio_dataset(root, SETTINGS, cache_dir=tmp_path / "fresh_cache")
    np.testing.assert_array_equal(first, fresh.features)
    cached = load_audio_dataset(root, SETTINGS, cache_dir=cache)
    np.testing.assert_array_equal(cached.features, fresh.features)


def test_missing_root_raises(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_audio_dataset(missing, SETTINGS, cache_dir=tmp_path / "cache")
    with pytest.raises(FileNotFoundError, match="data.root"):
        validate_data_config(audio_config(missing, tmp_path / "cache"))


def test_missing_root_key_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="data.root is missing"):
        validate_data_config({"name": "audio"})


def test_empty_class_folder_raises(tmp_path: Path) -> None:
    root = make_tone_corpus(tmp_path / "corpus")
    (root / "silent").mkdir()
    with pytest.raises(AudioFileError, match="silent.*no .wav files"):
        load_audio_dataset(root, SETTINGS, cache_dir=tmp_path / "cache")


def test_empty_class_folder_skipped_with_warning(tmp_path: Path) -> None:
    root = make_tone_corpus(tmp_path / "corpus")
    (root / "silent").mkdir()
    with pytest.warns(UserWarning, match="silent"):
        dataset = load_audio_dataset(
            root, SETTINGS, cache_dir=tmp_path / "cache", skip_bad_files=True
        )
    assert dataset.class_names == ["high", "low", "mid"]


def test_single_class_raises(tmp_path: Path) -> None:
    write_tone(tmp_path / "corpus" / "only" / "a.wav", 440.0)
    with pytest.raises(ValueError, match=r"\['only'\].*at least 2"):
        load_audio_dataset(tmp_path / "corpus", SETTINGS, cache_dir=tmp_path / "cache")


def test_unreadable_wav_raises(tmp_path: Path) -> None:
    root = make_tone_corpus(tmp_path / "corpus")
    (root / "low" / "broken.wav").write_bytes(b"not a wav file at all")
    with pytest.raises(AudioFileError, match="broken.wav.*cannot read"):
        load_audio_dataset(root, SETTINGS, cache_dir=tmp_path / "cache")


def test_zero_length_wav_raises(tmp_path: Path) -> None:
    root = make_tone_corpus(tmp_path / "corpus")
    wavfile.write(root / "mid" / "empty.wav", 8000, np.zeros(0, dtype=np.int16))
    with pytest.raises(AudioFileError, match="empty.wav.*zero samples"):
        load_audio_dataset(root, SETTINGS, cache_dir=tmp_path / "cache")


def test_wrong_sample_rate_raises(tmp_path: Path) -> None:
    root = make_tone_corpus(tmp_path / "corpus")
    write_tone(root / "high" / "fast.wav", 2000.0, sample_rate=16000)
    with pytest.raises(AudioFileError, match="fast.wav.*expect_sample_rate=8000"):
        load_audio_dataset(
            root, SETTINGS, cache_dir=tmp_path / "cache", expect_sample_rate=8000
        )


def test_wrong_sample_rate_raises_on_cache_hit(tmp_path: Path) -> None:
    clip = write_tone(tmp_path / "fast.wav", 2000.0, sample_rate=16000)
    cache = tmp_path / "cache"
    extract_clip_features(clip, SETTINGS, cache_dir=cache)
    with pytest.raises(AudioFileError, match="fast.wav.*16000 Hz"):
        extract_clip_features(clip, SETTINGS, cache_dir=cache, expect_sample_rate=8000)


def test_wrong_channel_count_raises(tmp_path: Path) -> None:
    root = make_tone_corpus(tmp_path / "corpus")
    write_tone(root / "low" / "stereo.wav", 300.0, channels=2)
    with pytest.raises(AudioFileError, match="stereo.wav.*expect_channels=1"):
        load_audio_dataset(
            root, SETTINGS, cache_dir=tmp_path / "cache", expect_channels=1
        )


def test_read_wav_returns_channel_axis(tmp_path: Path) -> None:
    clip = write_tone(tmp_path / "stereo.wav", 300.0, channels=2)
    sample_rate, samples = read_wav(clip)
    assert sample_rate == 8000
    assert samples.shape == (1600, 2)
    assert samples.dtype == np.float32
    assert np.abs(samples).max() == pytest.approx(0.3, abs=1e-3)


def test_skip_bad_files_warns_every_file(tmp_path: Path) -> None:
    root = make_tone_corpus(tmp_path / "corpus")
    (root / "low" / "broken.wav").write_bytes(b"garbage")
    wavfile.write(root / "mid" / "empty.wav", 8000, np.zeros(0, dtype=np.int16))
    write_tone(root / "high" / "stereo.wav", 2000.0, channels=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = load_audio_dataset(
            root,
            SETTINGS,
            cache_dir=tmp_path / "cache",
            skip_bad_files=True,
            expect_channels=1,
        )
    messages = [str(warning.message) for warning in caught]
    assert len(messages) == 1
    assert "skipped 3 bad file(s)" in messages[0]
    for name in ("broken.wav", "empty.wav", "stereo.wav"):
        assert name in messages[0]
    assert len(dataset.files) == 9
    assert len(dataset.skipped) == 3


def write_regression_corpus(root: Path, n_bins: int, n_targets: int | None) -> Path:
    """Write three clips with targets of shape (n_bins,) or (n_bins, n_targets)."""
    for index in range(4):
        stem = f"clip_{index}"
        write_tone(root / "wavs" / f"{stem}.wav", 300.0 + 200.0 * index)
        shape = (n_bins,) if n_targets is None else (n_bins, n_targets)
        target = torch.full(shape, float(index))
        (root / "target").mkdir(parents=True, exist_ok=True)
        torch.save(target, root / "target" / f"{stem}.pt")
    return root


@pytest.mark.parametrize(("n_targets", "expected_channels"), [(None, 1), (3, 3)])
def test_load_regression_layout(
    tmp_path: Path, n_targets: int | None, expected_channels: int
) -> None:
    root = write_regression_corpus(tmp_path / "corpus", SETTINGS.n_bins, n_targets)
    dataset = load_audio_dataset(root, SETTINGS, cache_dir=tmp_path / "cache")
    assert dataset.task == "regression"
    assert dataset.features.shape == (4, 25, 16)
    assert dataset.targets.shape == (4, 25, expected_channels)
    assert dataset.targets.dtype == np.float32
    assert dataset.targets[2, 0, 0] == 2.0


def test_build_regression_task(tmp_path: Path) -> None:
    root = write_regression_corpus(tmp_path / "corpus", SETTINGS.n_bins, 2)
    task = build_task(audio_config(root, tmp_path / "cache"))
    assert task.task == "regression"
    assert task.n_outputs == 2
    assert task.class_names == ["target_0", "target_1"]
    assert [len(task.train), len(task.val), len(task.test)] == [2, 1, 1]
    x, y = task.train.tensors
    assert x.shape == (2, 25, 16)
    assert y.shape == (2, 25, 2)
    assert y.dtype == torch.float32


def test_regression_target_length_mismatch_raises(tmp_path: Path) -> None:
    root = write_regression_corpus(tmp_path / "corpus", SETTINGS.n_bins, None)
    torch.save(torch.zeros(30), root / "target" / "clip_2.pt")
    with pytest.raises(AudioFileError, match="clip_2.pt.*30 steps.*T=25"):
        load_audio_dataset(root, SETTINGS, cache_dir=tmp_path / "cache")


def test_regression_missing_target_raises(tmp_path: Path) -> None:
    root = write_regression_corpus(tmp_path / "corpus", SETTINGS.n_bins, None)
    (root / "target" / "clip_1.pt").unlink()
    with pytest.raises(AudioFileError, match="clip_1.pt.*not found"):
        load_audio_dataset(root, SETTINGS, cache_dir=tmp_path / "cache")


def test_regression_bad_target_skipped_with_warning(tmp_path: Path) -> None:
    root = write_regression_corpus(tmp_path / "corpus", SETTINGS.n_bins, None)
    torch.save(torch.zeros(30), root / "target" / "clip_2.pt")
    with pytest.warns(UserWarning, match="clip_2.pt"):
        dataset = load_audio_dataset(
            root, SETTINGS, cache_dir=tmp_path / "cache", skip_bad_files=True
        )
    assert [path.name for path in dataset.files] == [
        "clip_0.wav",
        "clip_1.wav",
        "clip_3.wav",
    ]


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"f_max": 5000.0}, "data.f_max=5000.0"),
        ({"n_steps": 30}, "data.n_steps=30"),
        ({"dt": 0.02}, "data.dt=0.02"),
        ({"encoder": "latency"}, "data.encoder='latency'"),
        ({"rectify": "square"}, "data.rectify='square'"),
        ({"expect_channels": 0}, "data.expect_channels=0"),
        ({"window": "hann"}, "data.window"),
    ],
)
def test_validate_audio_config_names_key(
    tmp_path: Path, overrides: dict, match: str
) -> None:
    config = audio_config(tmp_path, tmp_path / "cache", **overrides)
    with pytest.raises(ValueError, match=match):
        validate_data_config(config)


def test_validate_audio_config_accepts_matching_steps(tmp_path: Path) -> None:
    validate_data_config(
        audio_config(tmp_path, tmp_path / "cache", n_steps=25, dt=0.01)
    )
