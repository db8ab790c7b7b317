"""Tune a hand-built network with a custom training loop.

Run from the repository root::

    python examples/custom_model.py

``build_model`` receives every ``model.*`` value plus ``n_inputs``,
``n_outputs`` and ``dt`` from the data. ``train`` receives the trial's
context: the model, data, loss, optimizer and schedulers that spiketune built,
and ``context.report`` to send one epoch's metrics to Ray Tune.
"""

from __future__ import annotations

from spiketune.hardware import HardwareDense, HardwareLIF, get_profile
from spiketune.network import SNN
from spiketune.training import evaluate, train_epoch
from spiketune.tuning import SpikeTuner


def build_model(cfg: dict) -> SNN:
    """Build a two-layer chip network with a recurrent hidden layer."""
    profile = get_profile("gen1")
    hidden = cfg["hidden"]
    return SNN(
        [
            HardwareDense(cfg["n_inputs"], hidden, profile, weight_scale=cfg["scale"]),
            HardwareLIF(hidden, profile, tau=cfg["tau"], dt=cfg["dt"], recurrent=True),
            HardwareDense(hidden, cfg["n_outputs"], profile, weight_scale=cfg["scale"]),
            HardwareLIF(cfg["n_outputs"], profile, tau=cfg["tau"], dt=cfg["dt"]),
        ],
        profile=profile,
    )


def train(context) -> None:
    """Train with a learning-rate warm-up over the first two epochs."""
    epochs = context.config["trainer"]["epochs"]
    base_lr = context.optimizer.param_groups[0]["lr"]
    for epoch in range(epochs):
        for group in context.optimizer.param_groups:
            group["lr"] = base_lr * min(1.0, (epoch + 1) / 2)
        if context.sign_annealing is not None:
            context.sign_annealing.step()
        terms = train_epoch(
            context.model,
            context.data.train,
            context.loss_fn,
            context.optimizer,
            batch_size=64,
        )
        metrics = evaluate(
            context.export_model(),
            context.data.val,
            task="classification",
            n_classes=context.data.n_outputs,
            profile=context.profile,
        )
        context.report(
            {"train_loss": terms["loss"], **{f"val_{k}": v for k, v in metrics.items()}}
        )


def main() -> None:
    space = {
        "data.n_steps": 20,
        "model.hidden": {"choice": [30, 45]},
        "model.tau": {"choice": [0.016, 0.032]},
        "model.scale": {"uniform": [0.8, 2.0]},
        "optim.lr": {"loguniform": [0.003, 0.02]},
        "anneal.sign.enabled": True,
        "trainer.epochs": 12,
    }
    tuner = SpikeTuner(
        space,
        num_samples=6,
        model_builder=build_model,
        train_fn=train,
        max_concurrent=2,
        name="custom-model",
        scheduler_params={"grace_period": 3},
    )
    result = tuner.fit()
    print(result.table[["rank", "trial_id", "status", "val_accuracy"]].head())


if __name__ == "__main__":
    main()
