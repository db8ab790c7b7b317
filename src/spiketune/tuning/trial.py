"""The Ray Tune trainable: build one trial's pieces, train, report each epoch."""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Mapping
from typing import Any

import torch
from ray import tune

from spiketune.data import TaskData, build_task
from spiketune.hardware.profile import get_profile
from spiketune.losses import build_loss, check_output_compatible
from spiketune.optim import build_anneal, build_lr_scheduler, build_optimizer
from spiketune.training import DivergenceError, evaluate, train_epoch
from spiketune.tuning.builders import builder_path, resolve_builder
from spiketune.tuning.context import TrialContext, TrialSettings
from spiketune.tuning.defaults import with_defaults

__all__ = ["build_trial", "run_builtin_loop", "run_trial", "trial_seed"]

logger = logging.getLogger(__name__)


def trial_seed(base_seed: int, trial_id: str) -> int:
    """Derive a trial's seed from the sweep seed and the trial id."""
    return (base_seed * 1_000_003 + zlib.crc32(trial_id.encode())) % 2**31


def run_trial(config: dict[str, Any], settings: TrialSettings) -> None:
    """Run one trial inside a Ray worker; the function handed to ``tune.Tuner``."""
    torch.set_num_threads(max(1, settings.threads))
    trial_id = tune.get_context().get_trial_id() or "local"
    context = build_trial(config, settings, trial_id=trial_id, reporter=_ray_report)

    # A resumed sweep hands back the trial's last checkpoint.
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            context.restore(directory)
    if settings.train_fn is not None:
        settings.train_fn(context)
    else:
        run_builtin_loop(context)


def _ray_report(metrics: dict[str, float], checkpoint_dir: str | None) -> None:
    checkpoint = None
    if checkpoint_dir is not None:
        checkpoint = tune.Checkpoint.from_directory(checkpoint_dir)
    tune.report(metrics, checkpoint=checkpoint)


def build_trial(
    config: Mapping[str, Any],
    settings: TrialSettings,
    *,
    trial_id: str = "local",
    reporter: Any = None,
) -> TrialContext:
    """Build data, model, losses, schedulers and optimizer for one trial.

    The order matters: sign annealing changes the weight parameters, so it
    is installed before the optimizer is built.

    Raises
    ------
    ValueError
        If the model output does not fit the loss or the metrics.
    """
    cfg = with_defaults(config)
    seed = int(cfg["trainer"].get("seed") or trial_seed(settings.base_seed, trial_id))
    torch.manual_seed(seed)
    device = _device(settings)

    data = build_task(cfg["data"])
    model_cfg = _model_cfg(cfg, data)
    builder = resolve_builder(settings.model_builder)
    model = builder(dict(model_cfg)).to(device)
    profile = _profile_of(model, model_cfg)

    loss_fn = build_loss(
        _loss_cfg(cfg["loss"], data),
        profile=profile,
        n_outputs=getattr(model, "n_outputs", data.n_outputs),
        task=data.task,
    )
    _check_output(model, loss_fn, data, device)

    epochs = int(cfg["trainer"]["epochs"])
    sign, surrogate = build_anneal(model, cfg["anneal"], profile, epochs)
    optimizer = build_optimizer(model, cfg["optim"])
    lr_scheduler = build_lr_scheduler(optimizer, cfg["sched"], epochs)

    spec = {
        "builder": builder_path(builder),
        "model_cfg": model_cfg,
        "profile": profile.to_dict() if profile is not None else None,
        "data_cfg": dict(cfg["data"]),
        "task": data.task,
        "population": int(cfg["model"].get("population", 1)) > 1,
        "seed": seed,
        "trial_id": trial_id,
    }
    return TrialContext(
        config=cfg,
        settings=settings,
        data=data,
        model=model,
        loss_fn=loss_fn,
        optimizer=optimizer,
        lr_scheduler=lr_scheduler,
        sign_annealing=sign,
        surrogate_scheduler=surrogate,
        profile=profile,
        spec=spec,
        seed=seed,
        device=device,
        reporter=reporter or (lambda metrics, checkpoint_dir: None),
        builder=builder,
        generator=torch.Generator().manual_seed(seed),
    )


def _device(settings: TrialSettings) -> torch.device:
    if settings.use_gpu and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def _model_cfg(cfg: Mapping[str, Any], data: TaskData) -> dict[str, Any]:
    model_cfg = dict(cfg["model"])
    model_cfg.setdefault("n_inputs", data.n_inputs)
    model_cfg.setdefault("n_outputs", data.n_outputs)
    model_cfg.setdefault("dt", data.dt)
    if not math.isclose(model_cfg["dt"], data.dt):
        raise ValueError(
            f"model.dt = {model_cfg['dt']} s differs from data.dt = {data.dt} s; "
            "bind the time step once, under data.dt"
        )
    return model_cfg


def _loss_cfg(loss_cfg: Mapping[str, Any], data: TaskData) -> dict[str, Any]:
    # A population loss needs the class count, which comes from the data.
    cfg = dict(loss_cfg)
    if cfg.get("task") == "population":
        population = dict(cfg.get("population_on") or {})
        population.setdefault("n_classes", data.n_outputs)
        cfg["population_on"] = population
    return cfg


def _profile_of(model: torch.nn.Module, model_cfg: Mapping[str, Any]):
    profile = getattr(model, "profile", None)
    if profile is None and model_cfg.get("profile") is not None:
        profile = get_profile(model_cfg["profile"])
    return profile


def _check_output(model, loss_fn, data: TaskData, device: torch.device) -> None:
    x, y = data.train.tensors[0][:2], data.train.tensors[1][:2]
    with torch.no_grad():
        out = model(x.to(device).float())
    check_output_compatible(loss_fn, out, y.to(device))


def run_builtin_loop(context: TrialContext) -> None:
    """Train with the bound ``trainer.*`` and ``early_stop.*`` settings.

    Each epoch steps the annealing schedulers first, trains, evaluates the
    exported model on the validation split, steps the learning-rate
    scheduler and reports. A NaN or infinite loss ends the trial as
    ``diverged``; no improvement for ``early_stop.patience`` epochs ends it
    as ``plateau``.
    """
    cfg = context.config
    trainer = cfg["trainer"]
    patience = cfg["early_stop"].get("patience")
    epochs = int(trainer["epochs"])

    for epoch in range(context.epoch, epochs):
        _step_annealing(context)
        try:
            train_terms = train_epoch(
                context.model,
                context.data.train,
                context.loss_fn,
                context.optimizer,
                batch_size=int(trainer["batch_size"]),
                generator=context.generator,
                grad_clip=trainer.get("grad_clip"),
                device=context.device,
            )
        except DivergenceError as err:
            logger.warning("trial %s diverged: %s", context.spec["trial_id"], err)
            _report_divergence(context, str(err))
            return

        metrics = _epoch_metrics(context, train_terms)
        if context.lr_scheduler is not None:
            context.lr_scheduler.step()

        last = epoch == epochs - 1
        improved = context.is_better(metrics.get(context.settings.objective, math.nan))
        context.since_best = 0 if improved else context.since_best + 1
        stop = patience is not None and context.since_best >= int(patience) and not last
        status = "running"
        if last:
            status = "finished"
        elif stop:
            status = "plateau"
        context.report(metrics, status=status)
        if stop:
            return


def _step_annealing(context: TrialContext) -> None:
    if context.sign_annealing is not None:
        context.sign_annealing.step()
    if context.surrogate_scheduler is not None:
        context.surrogate_scheduler.step()


def _epoch_metrics(context: TrialContext, train_terms: dict[str, float]) -> dict:
    exported = context.export_model()
    if context.config["metric"]["eval_mismatch"]:
        # Score the chip as built: keep sampling mismatch in eval mode.
        for module in exported.modules():
            if hasattr(module, "eval_mismatch"):
                module.eval_mismatch = True
    val = evaluate(
        exported,
        context.data.val,
        task=context.data.task,
        n_classes=context.data.n_outputs
        if context.data.task == "classification"
        else None,
        profile=context.profile,
        population=context.spec["population"],
        batch_size=int(context.config["trainer"].get("eval_batch_size", 512)),
        device=context.device,
    )
    metrics = {f"train_{key}": value for key, value in train_terms.items()}
    metrics.update({f"val_{key}": value for key, value in val.items()})
    metrics["lr"] = context.optimizer.param_groups[0]["lr"]
    if context.sign_annealing is not None:
        metrics["sign_alpha"] = float(context.sign_annealing.alpha)
    if context.surrogate_scheduler is not None:
        metrics["surrogate_slope"] = float(context.surrogate_scheduler.slope)
    return metrics


def _report_divergence(context: TrialContext, reason: str) -> None:
    # Ray needs the objective in every result; repeat the best value so far
    # so schedulers and searchers see this trial as no better than before.
    objective = context.settings.objective
    value = context.best if context.best is not None else math.nan
    context.report({objective: value, "diverged_reason": reason}, status="diverged")
