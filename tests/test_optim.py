"""Tests of the optimizer, scheduler and annealing builders, and a training run."""

from __future__ import annotations

import math

import pytest
import torch
from torch.optim import lr_scheduler

from spiketune.hardware import check_fit
from spiketune.losses import build_loss, check_output_compatible
from spiketune.metrics import MetricAccumulator
from spiketune.network import build_network
from spiketune.optim import (
    build_anneal,
    build_lr_scheduler,
    build_optimizer,
    validate_anneal_config,
    validate_optim_config,
    validate_sched_config,
)
from spiketune.schedulers import SignAnnealing, SurrogateScheduler


def _net(profile: str | None = "gen1"):
    torch.manual_seed(0)
    return build_network(8, 4, hidden=(10,), profile=profile)


@pytest.mark.parametrize(
    ("cfg", "optimizer_type"),
    [
        ({"name": "adam", "lr": 0.01}, torch.optim.Adam),
        ({"name": "adamw", "lr": 0.01, "weight_decay": 0.1}, torch.optim.AdamW),
        (
            {"name": "sgd", "lr": 0.01, "momentum": 0.9, "nesterov": True},
            torch.optim.SGD,
        ),
        ({"name": "rmsprop", "lr": 0.01, "alpha": 0.9}, torch.optim.RMSprop),
    ],
)
def test_build_optimizer_types(cfg: dict, optimizer_type: type) -> None:
    optimizer = build_optimizer(_net(), cfg)
    assert isinstance(optimizer, optimizer_type)
    assert optimizer.param_groups[0]["lr"] == 0.01


def test_build_optimizer_defaults() -> None:
    optimizer = build_optimizer(_net(), {})
    assert isinstance(optimizer, torch.optim.Adam)
    assert optimizer.param_groups[0]["lr"] == 1e-3
    assert optimizer.param_groups[0]["weight_decay"] == 0.0


def test_optimizer_holds_latent_weights() -> None:
    net = _net()
    build_anneal(net, {}, None, 3)
    optimizer = build_optimizer(net, {})
    optimized_ids = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert id(net.synapses[0].parametrizations.weight.original) in optimized_ids


@pytest.mark.parametrize(
    ("cfg", "scheduler_type"),
    [
        ({"name": "cosine"}, lr_scheduler.CosineAnnealingLR),
        ({"name": "step", "params": {"step_size": 2}}, lr_scheduler.StepLR),
        ({"name": "exponential", "params": {"gamma": 0.5}}, lr_scheduler.ExponentialLR),
        ({"name": "onecycle", "params": {"pct_start": 0.5}}, lr_scheduler.OneCycleLR),
    ],
)
def test_build_lr_scheduler_steps_every_epoch(cfg: dict, scheduler_type: type) -> None:
    optimizer = build_optimizer(_net(), {"lr": 0.1})
    scheduler = build_lr_scheduler(optimizer, cfg, n_epochs=4)
    assert isinstance(scheduler, scheduler_type)
    for _ in range(4):
        optimizer.step()
        scheduler.step()
    assert math.isfinite(optimizer.param_groups[0]["lr"])


def test_cosine_scheduler_reaches_eta_min() -> None:
    optimizer = build_optimizer(_net(), {"lr": 0.1})
    cfg = {"name": "cosine", "params": {"eta_min": 0.001}}
    scheduler = build_lr_scheduler(optimizer, cfg, n_epochs=4)
    for _ in range(4):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.001)


def test_no_scheduler() -> None:
    optimizer = build_optimizer(_net(), {})
    assert build_lr_scheduler(optimizer, {"name": "none"}, n_epochs=3) is None
    assert build_lr_scheduler(optimizer, {}, n_epochs=3) is None


def test_build_anneal_defaults_follow_profile() -> None:
    sign, surrogate = build_anneal(_net("gen1"), {}, None, 3)
    assert isinstance(sign, SignAnnealing)
    assert surrogate is None
    sign, surrogate = build_anneal(_net(None), {}, None, 3)
    assert sign is None
    assert surrogate is None


def test_build_anneal_both_enabled() -> None:
    cfg = {
        "sign": {"enabled": True, "alpha_start": 1.0, "shape": "cosine"},
        "surrogate": {"enabled": True, "start": 3.0, "end": 30.0},
    }
    sign, surrogate = build_anneal(_net("gen1"), cfg, None, 5)
    assert sign.alpha == 1.0
    assert sign.shape == "cosine"
    assert isinstance(surrogate, SurrogateScheduler)
    assert surrogate.slope == 3.0
    assert surrogate.shape == "cosine"


def test_build_anneal_sign_needs_profile() -> None:
    with pytest.raises(ValueError, match=r"anneal\.sign\.enabled: true needs a chip"):
        build_anneal(_net(None), {"sign": {"enabled": True}}, None, 3)


def test_build_anneal_after_optimizer_raises() -> None:
    net = _net("gen1")
    build_optimizer(net, {})
    with pytest.raises(RuntimeError, match=r"optimizer"):
        build_anneal(net, {}, None, 3)


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (
            {"name": "lion"},
            r"optim\.name: unknown optimizer 'lion'; valid names are adam",
        ),
        ({"lr": 0}, r"optim\.lr: 0 is not > 0"),
        ({"lr": -1e-3}, r"optim\.lr: -0\.001 is not > 0"),
        (
            {"name": "sgd", "momentum": 1.5},
            r"optim\.momentum: 1\.5 is not <= 0\.999999",
        ),
        ({"name": "sgd", "beta1": 0.9}, r"optim: unknown key\(s\) beta1"),
        ({"weight_decay": -0.1}, r"optim\.weight_decay: -0\.1 is not >= 0"),
    ],
)
def test_validate_optim_config_names_key(cfg: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_optim_config(cfg)


def test_sgd_nesterov_needs_momentum() -> None:
    with pytest.raises(ValueError, match=r"optim\.nesterov"):
        build_optimizer(_net(), {"name": "sgd", "nesterov": True})


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"name": "plateau"}, r"sched\.name: unknown learning-rate scheduler"),
        ({"name": "step", "params": {"gamma": 2.0}}, r"sched\.params\.gamma: 2\.0"),
        ({"name": "step", "step_size": 3}, r"sched: unknown key\(s\) step_size"),
        ({"name": "cosine", "params": {"T_max": 3}}, r"sched\.params: unknown key"),
    ],
)
def test_validate_sched_config_names_key(cfg: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_sched_config(cfg)


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"sign": {"alpha_end": -1}}, r"anneal\.sign\.alpha_end: -1 is not > 0"),
        ({"surrogate": {"shape": "step"}}, r"anneal\.surrogate\.shape: 'step'"),
        ({"surrogate": {"enabled": "yes"}}, r"anneal\.surrogate\.enabled: 'yes'"),
        ({"lr": {}}, r"anneal: unknown key\(s\) lr; valid keys are sign, surrogate"),
    ],
)
def test_validate_anneal_config_names_key(cfg: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_anneal_config(cfg)


def _two_class_task(n_samples: int, n_steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Return Bernoulli spike inputs where class 0 drives channels 0-3, class 1 4-7."""
    generator = torch.Generator().manual_seed(0)
    target = torch.arange(n_samples) % 2
    rates = torch.full((n_samples, 8), 0.05)
    rates[target == 0, :4] = 0.6
    rates[target == 1, 4:] = 0.6
    inputs = torch.rand(n_samples, n_steps, 8, generator=generator) < rates[:, None]
    return inputs.float(), target


def test_training_run_end_to_end() -> None:
    torch.manual_seed(0)
    n_epochs = 4
    inputs, target = _two_class_task(n_samples=48, n_steps=20)
    net = build_network(
        8, 2, hidden=(10,), profile="gen1", weight_scale=3.0, recurrent=True
    )
    anneal_cfg = {"sign": {"enabled": True}, "surrogate": {"enabled": True}}
    sign, surrogate = build_anneal(net, anneal_cfg, net.profile, n_epochs)
    optimizer = build_optimizer(net, {"name": "adam", "lr": 0.02})
    scheduler = build_lr_scheduler(optimizer, {"name": "cosine"}, n_epochs)
    loss_cfg = {
        "task": "ce_count",
        "regularisers": {
            "firing_rate": {},
            "l1_spikes": {},
            "weight_magnitude": {},
            "topology": {},
        },
    }
    loss = build_loss(loss_cfg, profile=net.profile, n_outputs=2, task="classification")

    history = []
    for _ in range(n_epochs):
        sign.step()
        surrogate.step()
        metrics = MetricAccumulator(
            task="classification", n_classes=2, profile=net.profile
        )
        terms: dict[str, float] = {}
        for start in range(0, 48, 16):
            batch, batch_target = inputs[start : start + 16], target[start : start + 16]
            out = net(batch)
            check_output_compatible(loss, out, batch_target)
            result = loss(out, batch_target, net)
            optimizer.zero_grad()
            result.total.backward()
            optimizer.step()
            metrics.update(out, batch_target)
            terms = result.terms
        scheduler.step()
        history.append({**terms, **metrics.compute()})
    sign.harden()

    expected_keys = {
        "task",
        "firing_rate",
        "l1_spikes",
        "weight_magnitude",
        "topology",
        "accuracy",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "spike_rate_hz_l0",
        "spike_rate_hz_l1",
        "silent_fraction_l0",
        "silent_fraction_l1",
        "spikes_per_sample",
        "synops_per_sample",
        "energy_per_sample_j",
    }
    for epoch in history:
        assert expected_keys <= set(epoch)
        assert all(math.isfinite(value) for value in epoch.values())
    assert sign.alpha == 20.0
    assert surrogate.slope == 25.0
    assert history[-1]["task"] < history[0]["task"]
    assert check_fit(net, "gen1") == []
