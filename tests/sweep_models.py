"""Model builders and training loops that tuner tests send to Ray workers."""

import math

import torch

from spiketune.tuning.builders import build_builtin_model


def flaky_builder(model_cfg):
    """Build the standard network, broken on purpose by ``model_cfg["fault"]``.

    ``"raise"`` fails while building; ``"nan"`` fills the weights with NaN so
    the first loss is NaN; anything else builds a working network.
    """
    cfg = dict(model_cfg)
    fault = cfg.pop("fault", "none")
    if fault == "raise":
        raise RuntimeError("builder failed on purpose")
    model = build_builtin_model(cfg)
    if fault == "nan":
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.fill_(math.nan)
    return model


def slow_train_fn(context):
    """Report one epoch per second with a constant objective."""
    import time

    for _ in range(int(context.config["trainer"]["epochs"])):
        time.sleep(1.0)
        context.report({"val_accuracy": 0.5})
