"""Tests for the spike encoders in spiketune.data.encoders."""

from __future__ import annotations

import math

import pytest
import torch

from spiketune.data.encoders import (
    encode_delta,
    encode_direct,
    encode_latency,
    encode_rate,
    get_encoder,
    latency_spike_steps,
)


@pytest.mark.parametrize("intensity", [0.0, 0.05, 0.3, 0.5, 0.9, 1.0])
def test_rate_mean_matches_intensity(intensity: float) -> None:
    n_steps = 20000
    x = torch.full((2, 3), intensity)
    spikes = encode_rate(x, n_steps, seed=1)
    rate = spikes.mean(dim=1)
    # Each rate is a mean of n_steps Bernoulli draws, so its standard deviation
    # is sqrt(p(1-p)/n_steps) <= 0.0036. Allow 5 standard deviations.
    bound = 5 * math.sqrt(intensity * (1 - intensity) / n_steps)
    assert torch.all((rate - intensity).abs() <= bound + 1e-12)


def test_rate_output_is_binary_float32() -> None:
    spikes = encode_rate(
        torch.rand(4, 7, generator=torch.Generator().manual_seed(0)), 9
    )
    assert spikes.shape == (4, 9, 7)
    assert spikes.dtype == torch.float32
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}


def test_rate_same_seed_same_spikes() -> None:
    x = torch.full((3, 5), 0.5)
    assert torch.equal(encode_rate(x, 50, seed=3), encode_rate(x, 50, seed=3))
    assert not torch.equal(encode_rate(x, 50, seed=3), encode_rate(x, 50, seed=4))


def test_rate_gain_clamps_probability() -> None:
    spikes = encode_rate(torch.tensor([[0.5, -1.0]]), 100, gain=2.0)
    assert torch.all(spikes[0, :, 0] == 1.0)
    assert torch.all(spikes[0, :, 1] == 0.0)


def test_rate_sequence_input_uses_per_step_probability() -> None:
    probability = torch.zeros(1, 4, 2)
    probability[0, 2, 1] = 1.0
    spikes = encode_rate(probability, 4)
    assert torch.equal(spikes, probability)


def test_rate_sequence_length_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="n_steps=5"):
        encode_rate(torch.zeros(1, 4, 2), 5)


def test_latency_linear_exact_steps() -> None:
    # With 11 steps, spike step = round((1 - x) * 10).
    x = torch.tensor([[1.0, 0.5, 0.1, 0.0, 0.75]])
    spikes = encode_latency(x, 11)
    assert spikes.shape == (1, 11, 5)
    assert spikes[0, 0, 0] == 1.0
    assert spikes[0, 5, 1] == 1.0
    assert spikes[0, 9, 2] == 1.0
    assert spikes[0, :, 3].sum() == 0.0
    assert spikes[0, 2, 4] == 1.0  # round(2.5) rounds half to even
    assert torch.equal(spikes.sum(dim=1), torch.tensor([[1.0, 1.0, 1.0, 0.0, 1.0]]))


def test_latency_log_exact_steps() -> None:
    # Log mode: step = round(10 * ln(x) / ln(0.01)), clamped to [0, 10].
    x = torch.tensor([[1.0, 0.1, 0.01, 0.001]])
    steps = latency_spike_steps(x, 11, mode="log", min_intensity=0.01)
    assert steps.tolist() == [[0, 5, 10, 10]]


@pytest.mark.parametrize("mode", ["linear", "log"])
def test_latency_order_follows_intensity(mode: str) -> None:
    x = torch.rand(1, 200, generator=torch.Generator().manual_seed(5)) + 1e-3
    steps = latency_spike_steps(x, 40, mode=mode)[0]
    order = torch.argsort(x[0], descending=True)
    sorted_steps = steps[order]
    assert torch.all(sorted_steps[1:] >= sorted_steps[:-1])


@pytest.mark.parametrize("mode", ["linear", "log"])
def test_latency_at_most_one_spike(mode: str) -> None:
    x = torch.tensor([[0.0, 0.2, 0.7, 1.0, 3.0, -0.5]])
    spikes = encode_latency(x, 20, mode=mode)
    counts = spikes.sum(dim=1)[0]
    assert counts.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0]


def test_latency_invalid_mode_raises() -> None:
    with pytest.raises(ValueError, match="'cubic'"):
        encode_latency(torch.ones(1, 2), 5, mode="cubic")


def test_latency_rejects_sequence_input() -> None:
    with pytest.raises(ValueError, match="2-D"):
        encode_latency(torch.ones(1, 5, 2), 5)


def test_delta_ramp_exact_spike_steps() -> None:
    ramp = torch.tensor([0.0, 0.125, 0.25, 0.375, 0.5, 0.5, 0.25, 0.0])
    x = ramp.reshape(1, 8, 1)
    spikes = encode_delta(x, 8, threshold=0.25)
    assert spikes.shape == (1, 8, 2)
    up_steps = torch.nonzero(spikes[0, :, 0]).flatten().tolist()
    down_steps = torch.nonzero(spikes[0, :, 1]).flatten().tolist()
    assert up_steps == [2, 4]
    assert down_steps == [6, 7]


def test_delta_jump_moves_reference_whole_levels() -> None:
    # A jump of 3 thresholds gives one spike and moves the reference to 0.75,
    # so a fall to 0.5 triggers a down spike.
    x = torch.tensor([0.0, 0.75, 0.75, 0.5]).reshape(1, 4, 1)
    spikes = encode_delta(x, 4, threshold=0.25)
    assert spikes[0, :, 0].tolist() == [0.0, 1.0, 0.0, 0.0]
    assert spikes[0, :, 1].tolist() == [0.0, 0.0, 0.0, 1.0]


def test_delta_channel_layout_up_then_down() -> None:
    x = torch.zeros(2, 3, 3)
    x[1, 1, 2] = 1.0
    spikes = encode_delta(x, 3, threshold=0.5)
    assert spikes.shape == (2, 3, 6)
    assert spikes[1, 1, 2] == 1.0  # up channel of input 2
    assert spikes[1, 2, 5] == 1.0  # down channel of input 2
    assert spikes.sum() == 2.0


@pytest.mark.parametrize("threshold", [0.0, -0.1])
def test_delta_invalid_threshold_raises(threshold: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        encode_delta(torch.zeros(1, 3, 1), 3, threshold=threshold)


def test_delta_rejects_static_input() -> None:
    with pytest.raises(ValueError, match="3-D"):
        encode_delta(torch.zeros(2, 3), 3)


def test_direct_repeats_value_times_gain() -> None:
    x = torch.tensor([[0.5, -1.0, 2.0]])
    current = encode_direct(x, 4, gain=3.0)
    assert current.shape == (1, 4, 3)
    for step in range(4):
        assert current[0, step].tolist() == [1.5, -3.0, 6.0]


def test_direct_passes_sequence_through() -> None:
    x = torch.arange(6, dtype=torch.float32).reshape(1, 3, 2)
    assert torch.equal(encode_direct(x, 3, gain=2.0), 2 * x)


@pytest.mark.parametrize(
    ("name", "function"),
    [
        ("rate", encode_rate),
        ("latency", encode_latency),
        ("delta", encode_delta),
        ("direct", encode_direct),
    ],
)
def test_get_encoder_returns_function(name: str, function: object) -> None:
    assert get_encoder(name) is function


def test_get_encoder_unknown_lists_names() -> None:
    with pytest.raises(ValueError, match=r"'poisson'.*\['delta', 'direct'"):
        get_encoder("poisson")


@pytest.mark.parametrize("n_steps", [0, -3])
def test_encoders_reject_nonpositive_steps(n_steps: int) -> None:
    with pytest.raises(ValueError, match="n_steps"):
        encode_rate(torch.ones(1, 2), n_steps)


def test_encoders_reject_float_steps() -> None:
    with pytest.raises(TypeError, match="n_steps"):
        encode_direct(torch.ones(1, 2), 2.5)
