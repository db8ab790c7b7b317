"""Tests of task metrics, activity metrics and their accumulation over batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score, precision_score, recall_score

from spiketune.hardware.profile import ChipProfile, get_profile
from spiketune.metrics import (
    MetricAccumulator,
    f1_macro,
    precision_macro,
    recall_macro,
)
from spiketune.network import NetworkOutput


def spikes_from_counts(counts: list[list[int]], n_steps: int) -> torch.Tensor:
    """Return spikes ``[B, T, N]``: neuron n of sample b fires counts[b][n] times."""
    spikes = torch.zeros(len(counts), n_steps, len(counts[0]))
    for b, row in enumerate(counts):
        for n, count in enumerate(row):
            spikes[b, :count, n] = 1.0
    return spikes


def make_output(
    spikes: torch.Tensor | None,
    mem: torch.Tensor | None = None,
    hidden: torch.Tensor | None = None,
    inputs: torch.Tensor | None = None,
    dt: float = 1e-3,
) -> NetworkOutput:
    """Wrap output spikes, an optional hidden layer and inputs in a NetworkOutput."""
    if mem is None:
        mem = torch.zeros_like(spikes)
    batch, n_steps, n_out = mem.shape
    layer_spikes = [] if hidden is None else [hidden]
    fan_out = [] if hidden is None else [n_out]
    if spikes is not None:
        layer_spikes.append(spikes)
        fan_out.append(0)
    if inputs is None:
        inputs = torch.zeros(batch, n_steps, 1)
    return NetworkOutput(
        spikes=spikes,
        mem=mem,
        layer_spikes=layer_spikes,
        fan_out=fan_out,
        input_fan_out=layer_spikes[0].shape[-1] if layer_spikes else n_out,
        inputs=inputs,
        dt=dt,
    )


def classification(n_classes: int | None = 3, **kwargs) -> MetricAccumulator:
    return MetricAccumulator(
        task="classification", n_classes=n_classes, profile=None, **kwargs
    )


def test_accuracy_tie_goes_to_lowest_class() -> None:
    # Sample 0 ties classes 0 and 1 (1 spike each) -> predicts 0, target 0.
    # Sample 1 ties classes 1 and 2 -> predicts 1, target 2 (wrong).
    # Sample 2 is silent: all tied at 0 -> predicts 0, target 0.
    spikes = spikes_from_counts([[1, 1, 0], [0, 2, 2], [0, 0, 0]], n_steps=3)
    metrics = classification()
    metrics.update(make_output(spikes), torch.tensor([0, 2, 0]))
    assert metrics.compute()["accuracy"] == pytest.approx(2 / 3)
    expected = np.array([[2, 0, 0], [0, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(metrics.confusion_matrix(), expected)


def test_accuracy_membrane_readout_uses_max_over_time() -> None:
    # Max over time: sample 0 [0.2, 0.9] -> class 1, sample 1 [0.5, 0.4] ->
    # class 0, both correct. The time mean of sample 1, [0.3, 0.4], would
    # pick class 1 instead.
    mem = torch.tensor(
        [
            [[0.2, 0.9], [0.2, 0.0]],
            [[0.5, 0.4], [0.1, 0.4]],
        ]
    )
    metrics = classification(n_classes=2)
    metrics.update(make_output(None, mem), torch.tensor([1, 0]))
    assert metrics.compute()["accuracy"] == 1.0


def test_population_accuracy_uses_group_sums() -> None:
    # 2 classes, 4 outputs in groups [0, 1] and [2, 3], target 0.
    # Counts [2, 2, 3, 0]: the most active neuron (2) is in group 1, so
    # accuracy is 0, but group sums [4, 3] pick group 0: population 1.
    spikes = spikes_from_counts([[2, 2, 3, 0]], n_steps=4)
    metrics = classification(n_classes=2, population=True)
    metrics.update(make_output(spikes), torch.tensor([0]))
    result = metrics.compute()
    assert result["accuracy"] == 0.0
    assert result["population_accuracy"] == 1.0
    np.testing.assert_array_equal(metrics.confusion_matrix(), [[1, 0], [0, 0]])


def test_population_needs_n_classes() -> None:
    with pytest.raises(ValueError, match=r"population metrics need n_classes"):
        MetricAccumulator(
            task="classification", n_classes=None, profile=None, population=True
        )


# Targets [0, 0, 1, 1], predictions [0, 1, 1, 1], class 2 never occurs.
# Confusion [[1, 1, 0], [0, 2, 0], [0, 0, 0]].
# Precision: c0 1/1, c1 2/3, c2 0 (never predicted) -> macro 5/9.
# Recall: c0 1/2, c1 2/2, c2 0 (no samples) -> macro 1/2.
# F1 = 2tp / (2tp + fp + fn): c0 2/3, c1 4/5, c2 0 -> macro 22/45.
EMPTY_CLASS_CONFUSION = np.array([[1, 1, 0], [0, 2, 0], [0, 0, 0]])


@pytest.mark.parametrize(
    ("metric", "expected"),
    [(precision_macro, 5 / 9), (recall_macro, 1 / 2), (f1_macro, 22 / 45)],
)
def test_macro_metrics_with_empty_class(metric, expected: float) -> None:
    assert metric(EMPTY_CLASS_CONFUSION) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("name", "sklearn_metric"),
    [
        ("precision_macro", precision_score),
        ("recall_macro", recall_score),
        ("f1_macro", f1_score),
    ],
)
def test_macro_metrics_match_sklearn(name: str, sklearn_metric) -> None:
    spikes = spikes_from_counts([[2, 0, 0], [0, 1, 0], [0, 3, 0], [0, 1, 0]], 3)
    target = torch.tensor([0, 0, 1, 1])
    metrics = classification()
    metrics.update(make_output(spikes), target)
    expected = sklearn_metric(
        [0, 0, 1, 1], [0, 1, 1, 1], labels=[0, 1, 2], average="macro", zero_division=0
    )
    assert metrics.compute()[name] == pytest.approx(expected)


def test_per_class_metrics() -> None:
    spikes = spikes_from_counts([[2, 0, 0], [0, 1, 0], [0, 3, 0], [0, 1, 0]], 3)
    metrics = classification()
    metrics.update(make_output(spikes), torch.tensor([0, 0, 1, 1]))
    result = metrics.compute()
    assert result["recall_c0"] == pytest.approx(0.5)
    assert result["precision_c1"] == pytest.approx(2 / 3)
    assert result["recall_c2"] == 0.0
    assert result["precision_c2"] == 0.0


def test_batches_are_summed_not_averaged() -> None:
    # Batch A: 3 samples, 1 correct. Batch B: 1 sample, correct.
    # Summed: 2 / 4 = 0.5. A mean of batch accuracies would give 2/3.
    metrics = classification(n_classes=2)
    spikes_a = spikes_from_counts([[1, 0], [1, 0], [1, 0]], 2)
    metrics.update(make_output(spikes_a), torch.tensor([0, 1, 1]))
    metrics.update(make_output(spikes_from_counts([[0, 1]], 2)), torch.tensor([1]))
    assert metrics.compute()["accuracy"] == 0.5
    assert metrics.confusion_matrix().sum() == 4


def test_n_classes_inferred_from_outputs() -> None:
    metrics = classification(n_classes=None)
    metrics.update(
        make_output(spikes_from_counts([[0, 0, 1, 0]], 2)), torch.tensor([2])
    )
    assert metrics.confusion_matrix().shape == (4, 4)


def test_mse_summed_over_batches() -> None:
    # Batch A: max-over-time mem [3, 2] vs target [1, 2]: squared errors 4, 0.
    # Batch B: [[1], ...] with 2 outputs: mem max [0, 0] vs [1, 1]: 1, 1.
    # Sum 6 over 4 elements: 1.5.
    metrics = MetricAccumulator(task="regression", n_classes=None, profile=None)
    mem_a = torch.tensor([[[1.0, 2.0], [3.0, 0.0]]])
    metrics.update(make_output(None, mem_a), torch.tensor([[1.0, 2.0]]))
    mem_b = torch.zeros(1, 2, 2)
    metrics.update(make_output(None, mem_b), torch.tensor([[1.0, 1.0]]))
    assert metrics.compute()["mse"] == pytest.approx(1.5)


def _activity_batch() -> NetworkOutput:
    # B=2, T=4, dt=1 ms. Hidden layer (3 neurons): neuron 0 fires 2 + 1 times,
    # neuron 1 fires 1 time, neuron 2 never. Output layer (2 neurons): sample
    # 0 neuron 1 fires once. Inputs: 5 non-zero entries.
    hidden = spikes_from_counts([[2, 1, 0], [1, 0, 0]], n_steps=4)
    output = spikes_from_counts([[0, 1], [0, 0]], n_steps=4)
    inputs = torch.zeros(2, 4, 2)
    inputs[0, :3, 0] = 1.0
    inputs[1, :2, 1] = 0.5
    return make_output(output, hidden=hidden, inputs=inputs)


def test_activity_metrics_exact() -> None:
    metrics = classification(n_classes=2)
    metrics.update(_activity_batch(), torch.tensor([1, 0]))
    result = metrics.compute()
    # 2 samples of 4 steps of 1 ms: 8 ms of samples in all.
    # Hidden: 4 spikes / (3 neurons * 0.008 s) = 166.67 Hz.
    assert result["spike_rate_hz_l0"] == pytest.approx(4 / (3 * 0.008))
    # Output: 1 spike / (2 neurons * 0.008 s) = 62.5 Hz.
    assert result["spike_rate_hz_l1"] == pytest.approx(62.5)
    # Hidden neuron 2 and output neuron 0 never fired.
    assert result["silent_fraction_l0"] == pytest.approx(1 / 3)
    assert result["silent_fraction_l1"] == pytest.approx(1 / 2)
    # (4 + 1) spikes over 2 samples.
    assert result["spikes_per_sample"] == pytest.approx(2.5)
    # Hidden spikes reach the 2 outputs: 4 * 2 = 8; output fan-out 0;
    # 5 input events reach the 3 hidden neurons: 15. (8 + 15) / 2 = 11.5.
    assert result["synops_per_sample"] == pytest.approx(11.5)
    # Default ChipProfile constants: 2.5 * 1e-11 + 11.5 * 5e-12 J.
    assert result["energy_per_sample_j"] == pytest.approx(2.5e-11 + 11.5 * 5e-12)


def test_energy_uses_profile_constants() -> None:
    profile = get_profile("gen1")
    metrics = MetricAccumulator(task="classification", n_classes=2, profile=profile)
    metrics.update(_activity_batch(), torch.tensor([1, 0]))
    expected = 2.5 * profile.energy_per_spike_j + 11.5 * profile.energy_per_synop_j
    assert metrics.compute()["energy_per_sample_j"] == pytest.approx(expected)


def test_default_energy_constants_match_chip_profile() -> None:
    defaults = ChipProfile(name="check", weight_limit=1.0)
    assert defaults.energy_per_spike_j == 1e-11
    assert defaults.energy_per_synop_j == 5e-12


def test_silent_fraction_counts_all_samples() -> None:
    # Hidden neuron 2 fires only in the second batch, so no hidden neuron is
    # silent over both batches.
    metrics = classification(n_classes=2)
    metrics.update(_activity_batch(), torch.tensor([1, 0]))
    batch = _activity_batch()
    batch.layer_spikes[0][0, 0, 2] = 1.0
    metrics.update(batch, torch.tensor([1, 0]))
    assert metrics.compute()["silent_fraction_l0"] == 0.0


def test_compute_before_update_raises() -> None:
    with pytest.raises(RuntimeError, match=r"call update\(\) before compute\(\)"):
        classification().compute()


def test_reset_forgets_batches() -> None:
    metrics = classification(n_classes=2)
    metrics.update(_activity_batch(), torch.tensor([1, 0]))
    metrics.reset()
    with pytest.raises(RuntimeError):
        metrics.confusion_matrix()


def test_target_outside_classes_raises() -> None:
    metrics = classification(n_classes=2)
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        metrics.update(make_output(spikes_from_counts([[1, 0]], 2)), torch.tensor([2]))


def test_unknown_task_raises() -> None:
    with pytest.raises(ValueError, match=r"task 'ranking' is not valid"):
        MetricAccumulator(task="ranking", n_classes=2, profile=None)


def test_outputs_must_match_classes() -> None:
    metrics = classification(n_classes=2)
    with pytest.raises(ValueError, match=r"n_classes is 2 but the network has 3"):
        metrics.update(
            make_output(spikes_from_counts([[1, 0, 0]], 2)), torch.tensor([0])
        )
