"""Tests of the task losses, the composite loss and loss config validation."""

from __future__ import annotations

import math

import pytest
import torch

from spiketune.hardware.profile import get_profile
from spiketune.losses import (
    CeCount,
    CeMem,
    Mse,
    Population,
    build_loss,
    check_output_compatible,
    validate_loss_config,
)
from spiketune.network import NetworkOutput, build_network
from spiketune.registry import ConfigTypeError

ALL_REGULARISERS = {
    "firing_rate": {"weight": 0.1},
    "l1_spikes": {"weight": 1e-4},
    "weight_magnitude": {"weight": 1.0, "limit": 0.05},
    "topology": {"weight": 0.5},
}


def make_output(
    spikes: torch.Tensor | None, mem: torch.Tensor | None = None
) -> NetworkOutput:
    """Wrap output spikes ``[B, T, N]`` (or a membrane) in a NetworkOutput."""
    if mem is None:
        mem = torch.zeros_like(spikes)
    layer_spikes = [spikes] if spikes is not None else []
    batch, n_steps, _ = mem.shape
    return NetworkOutput(
        spikes=spikes,
        mem=mem,
        layer_spikes=layer_spikes,
        fan_out=[0] * len(layer_spikes),
        input_fan_out=1,
        inputs=torch.zeros(batch, n_steps, 1),
        dt=1e-3,
    )


def test_ce_count_exact() -> None:
    # Counts [2, 0], target 0: -log(e^2 / (e^2 + e^0)) = log(1 + e^-2).
    spikes = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 0.0]]])
    loss = CeCount()(make_output(spikes), torch.tensor([0]))
    assert float(loss) == pytest.approx(math.log(1 + math.exp(-2)))


def test_ce_count_tie_is_log_two() -> None:
    # Counts [1, 1]: both logits equal, so the loss is log 2 for either target.
    spikes = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    loss = CeCount()(make_output(spikes), torch.tensor([1]))
    assert float(loss) == pytest.approx(math.log(2))


@pytest.mark.parametrize(
    ("mem_reduce", "expected"),
    [
        # mem over T=2 is [[0, 1], [2, 0]]: max gives logits [2, 1], and
        # target 1 gives -log(e^1 / (e^2 + e^1)) = log(1 + e).
        ("max", math.log(1 + math.e)),
        # The mean gives logits [1, 0.5], so log(1 + e^0.5).
        ("mean", math.log(1 + math.exp(0.5))),
    ],
)
def test_ce_mem_exact(mem_reduce: str, expected: float) -> None:
    mem = torch.tensor([[[0.0, 1.0], [2.0, 0.0]]])
    loss = CeMem(mem_reduce=mem_reduce)(make_output(None, mem), torch.tensor([1]))
    assert float(loss) == pytest.approx(expected)


def test_population_exact() -> None:
    # N=4 outputs in 2 groups ([0, 1], [2, 3]), T=4, target class 0.
    # Counts [2, 4, 1, 0] give rates [0.5, 1.0, 0.25, 0.0].
    # On error: ((0.5-0.5)^2 + (1.0-0.5)^2) / 2 = 0.125.
    # Off error: ((0.25-0)^2 + (0-0)^2) / 2 = 0.03125. Sum 0.15625.
    counts = [2, 4, 1, 0]
    spikes = torch.zeros(1, 4, 4)
    for n, count in enumerate(counts):
        spikes[0, :count, n] = 1.0
    loss = Population(n_classes=2, on_rate=0.5, off_rate=0.0)(
        make_output(spikes), torch.tensor([0])
    )
    assert float(loss) == pytest.approx(0.15625)


def test_population_averages_batch() -> None:
    # Sample 0 (target 1) fires exactly on target: loss 0. Sample 1 (target
    # 0) is silent: on error (0.5^2 + 0.5^2) / 2 = 0.25, off error 0.
    # Batch mean (0 + 0.25) / 2 = 0.125.
    spikes = torch.zeros(2, 2, 4)
    spikes[0, 0, 2:] = 1.0
    loss = Population(n_classes=2, on_rate=0.5, off_rate=0.0)(
        make_output(spikes), torch.tensor([1, 0])
    )
    assert float(loss) == pytest.approx(0.125)


@pytest.mark.parametrize(
    ("target", "mem_reduce", "expected"),
    [
        # mem [[1, 2], [3, 0]] over T=2: max [3, 2] vs target [1, 2] gives
        # ((3-1)^2 + 0) / 2 = 2.
        (torch.tensor([[1.0, 2.0]]), "max", 2.0),
        # mean [2, 1] vs [1, 2]: (1 + 1) / 2 = 1.
        (torch.tensor([[1.0, 2.0]]), "mean", 1.0),
        # Per step against [[1, 2], [3, 2]]: errors 0, 0, 0, 4, mean 1.
        (torch.tensor([[[1.0, 2.0], [3.0, 2.0]]]), "max", 1.0),
    ],
)
def test_mse_exact(target: torch.Tensor, mem_reduce: str, expected: float) -> None:
    mem = torch.tensor([[[1.0, 2.0], [3.0, 0.0]]])
    loss = Mse(mem_reduce=mem_reduce)(make_output(None, mem), target)
    assert float(loss) == pytest.approx(expected)


def _trainable_net(readout: str = "spike", n_outputs: int = 4):
    torch.manual_seed(0)
    return build_network(
        6, n_outputs, hidden=(8,), readout=readout, weight_scale=4.0, recurrent=True
    )


def _dense_input() -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return (torch.rand(4, 15, 6, generator=generator) < 0.5).float()


@pytest.mark.parametrize(
    ("loss_cfg", "readout", "target"),
    [
        ({"task": "ce_count"}, "spike", torch.tensor([0, 1, 2, 3])),
        ({"task": "ce_mem"}, "membrane", torch.tensor([0, 1, 2, 3])),
        ({"task": "ce_mem", "mem_reduce": "mean"}, "spike", torch.tensor([0, 1, 2, 3])),
        (
            {"task": "population", "population_on": {"n_classes": 2}},
            "spike",
            torch.tensor([0, 1, 0, 1]),
        ),
        ({"task": "mse"}, "membrane", torch.ones(4, 4)),
    ],
)
def test_task_loss_gradient_reaches_weights(
    loss_cfg: dict, readout: str, target: torch.Tensor
) -> None:
    net = _trainable_net(readout)
    task = "regression" if loss_cfg["task"] == "mse" else "classification"
    loss = build_loss(loss_cfg, profile=None, n_outputs=4, task=task)
    out = net(_dense_input())
    check_output_compatible(loss, out, target)
    loss(out, target, net).total.backward()
    grad = net.synapses[0].weight.grad
    assert torch.isfinite(grad).all()
    assert grad.abs().sum() > 0


def test_composite_terms_are_weighted() -> None:
    net = _trainable_net()
    target = torch.tensor([0, 1, 2, 3])
    loss = build_loss(
        {"task": "ce_count", "regularisers": ALL_REGULARISERS},
        profile=None,
        n_outputs=4,
        task="classification",
    )
    out = net(_dense_input())
    result = loss(out, target, net)

    assert set(result.terms) == {"task", *ALL_REGULARISERS}
    assert result.terms["task"] == pytest.approx(float(CeCount()(out, target).detach()))
    for name, (weight, regulariser) in loss.regularisers.items():
        expected = weight * float(regulariser(out, net).detach())
        assert result.terms[name] == pytest.approx(expected, rel=1e-6)
    assert float(result.total.detach()) == pytest.approx(
        sum(result.terms.values()), rel=1e-6
    )


def test_zero_weight_term_is_skipped() -> None:
    net = _trainable_net()
    loss = build_loss(
        {"task": "ce_count", "regularisers": {"topology": {"weight": 0}}},
        profile=None,
        n_outputs=4,
        task="classification",
    )
    result = loss(net(_dense_input()), torch.tensor([0, 1, 2, 3]), net)
    assert result.terms["topology"] == 0.0


def test_build_loss_uses_profile_defaults() -> None:
    profile = get_profile("gen2")
    loss = build_loss(
        {"regularisers": {"weight_magnitude": {}, "topology": {}}},
        profile=profile,
        n_outputs=4,
        task="classification",
    )
    weight, magnitude = loss.regularisers["weight_magnitude"]
    assert weight == 1.0
    assert magnitude.limit == profile.weight_limit
    assert loss.regularisers["topology"][0] == 0.5
    assert loss.regularisers["topology"][1].block_size == profile.block_size


def test_weight_magnitude_needs_limit_or_profile() -> None:
    with pytest.raises(
        ValueError, match=r"loss\.regularisers\.weight_magnitude\.limit"
    ):
        build_loss(
            {"regularisers": {"weight_magnitude": {}}},
            profile=None,
            n_outputs=2,
            task="classification",
        )


def test_population_outputs_must_divide() -> None:
    cfg = {"task": "population", "population_on": {"n_classes": 2}}
    with pytest.raises(ValueError, match=r"5 output neurons do not split into 2"):
        build_loss(cfg, profile=None, n_outputs=5, task="classification")


@pytest.mark.parametrize(
    ("loss_cfg", "message"),
    [
        (
            {"regularisers": {"topology": {"weight": -1}}},
            r"loss\.regularisers\.topology\.weight: -1 is not >= 0",
        ),
        (
            {"task": "hinge"},
            r"loss\.task: unknown loss 'hinge'; valid names are ce_count",
        ),
        (
            {"regularisers": {"l2": {}}},
            r"loss\.regularisers: unknown regulariser 'l2'; valid names are "
            r"firing_rate",
        ),
        (
            {"mem_reduce": "min"},
            r"loss\.mem_reduce: 'min' is not valid; set one of max",
        ),
        ({"temperature": 2}, r"loss: unknown key\(s\) temperature; valid keys are"),
        (
            {"regularisers": {"topology": {"blocks": 5}}},
            r"loss\.regularisers\.topology: unknown key\(s\) blocks",
        ),
        ({"task": "mse"}, r"loss\.task: 'mse' does not fit a classification dataset"),
        ({"task": "population"}, r"loss\.population_on\.n_classes: null"),
        (
            {"population_on": {"on_rate": 1.5}},
            r"loss\.population_on\.on_rate: 1\.5 is not <= 1",
        ),
        (
            {"regularisers": {"firing_rate": {"offsets": [0.1, -0.2]}}},
            r"loss\.regularisers\.firing_rate\.offsets\[1\]: -0\.2 is not >= 0",
        ),
        (
            {"regularisers": {"topology": {"block_size": 2.5}}},
            r"loss\.regularisers\.topology\.block_size: 2\.5 is not a whole number",
        ),
    ],
)
def test_validate_loss_config_names_key(loss_cfg: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_loss_config(loss_cfg, task="classification")


def test_validate_wrong_type_is_type_error() -> None:
    cfg = {"regularisers": {"topology": {"weight": "high"}}}
    with pytest.raises(TypeError, match=r"loss\.regularisers\.topology\.weight"):
        validate_loss_config(cfg, task="classification")
    with pytest.raises(ConfigTypeError):
        validate_loss_config(cfg, task="classification")


def test_validate_accepts_numpy_scalars() -> None:
    np = pytest.importorskip("numpy")
    cfg = {"regularisers": {"topology": {"weight": np.float32(0.3)}}}
    validate_loss_config(cfg, task="classification")


def test_validate_rejects_unknown_dataset_task() -> None:
    with pytest.raises(ValueError, match=r"dataset task 'ranking'"):
        validate_loss_config({}, task="ranking")


def test_spike_loss_rejects_membrane_readout() -> None:
    net = _trainable_net("membrane")
    loss = build_loss(
        {"task": "ce_count"}, profile=None, n_outputs=4, task="classification"
    )
    out = net(_dense_input())
    with pytest.raises(ValueError, match=r"membrane read-out"):
        check_output_compatible(loss, out, torch.tensor([0, 1, 2, 3]))


def test_regression_target_shape_mismatch() -> None:
    net = _trainable_net("membrane")
    loss = build_loss({"task": "mse"}, profile=None, n_outputs=4, task="regression")
    out = net(_dense_input())
    with pytest.raises(ValueError, match=r"regression target has shape \(4, 3\)"):
        check_output_compatible(loss, out, torch.ones(4, 3))


def test_class_target_out_of_range() -> None:
    net = _trainable_net()
    loss = build_loss(
        {"task": "ce_count"}, profile=None, n_outputs=4, task="classification"
    )
    out = net(_dense_input())
    with pytest.raises(ValueError, match=r"contains class 4, outside \[0, 3\]"):
        check_output_compatible(loss, out, torch.tensor([0, 1, 2, 4]))


def test_firing_rate_list_length_mismatch() -> None:
    net = _trainable_net()
    cfg = {"regularisers": {"firing_rate": {"offsets": [0.1, 0.1, 0.1]}}}
    loss = build_loss(cfg, profile=None, n_outputs=4, task="classification")
    out = net(_dense_input())
    with pytest.raises(
        ValueError, match=r"offsets: got 3 values but the network has 2"
    ):
        check_output_compatible(loss, out, torch.tensor([0, 1, 2, 3]))


def test_output_size_mismatch() -> None:
    net = _trainable_net()
    loss = build_loss({}, profile=None, n_outputs=3, task="classification")
    out = net(_dense_input())
    with pytest.raises(ValueError, match=r"4 outputs but the loss was built for 3"):
        check_output_compatible(loss, out, torch.tensor([0, 1, 2, 0]))


def test_null_sections_mean_defaults() -> None:
    cfg = {"population_on": None, "regularisers": {"l1_spikes": None}}
    loss = build_loss(cfg, profile=None, n_outputs=2, task="classification")
    assert loss.regularisers["l1_spikes"][0] == 1e-4
    loss = build_loss(
        {"regularisers": None}, profile=None, n_outputs=2, task="classification"
    )
    assert loss.regularisers == {}
