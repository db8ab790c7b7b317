"""Trial checkpoints: weights plus what is needed to rebuild the model."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from spiketune.tuning.builders import resolve_builder

__all__ = ["load_checkpoint", "load_model", "save_checkpoint"]

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "model.pt"
SPEC_FILE = "spec.json"


def save_checkpoint(
    directory: str | Path, model: nn.Module, spec: dict[str, Any]
) -> Path:
    """Write ``model.pt`` (state dict) and ``spec.json`` into ``directory``.

    Parameters
    ----------
    directory : str or Path
        Target folder; created when missing.
    model : nn.Module
        The exported model: plain weights, no parametrisations.
    spec : dict
        JSON-serialisable description: ``builder`` (``"builtin"`` or an
        import path), ``model_cfg``, ``profile`` (dict or None), ``data_cfg``,
        ``epoch`` and ``metrics``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), directory / WEIGHTS_FILE)
    (directory / SPEC_FILE).write_text(json.dumps(spec, indent=2, default=str))
    return directory


def load_checkpoint(directory: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return ``(spec, state_dict)`` read from a checkpoint folder."""
    directory = Path(directory)
    spec_path = directory / SPEC_FILE
    if not spec_path.is_file():
        raise FileNotFoundError(
            f"{directory} is not a spiketune checkpoint: {SPEC_FILE} is missing"
        )
    try:
        spec = json.loads(spec_path.read_text())
    except ValueError as err:
        raise ValueError(f"{spec_path}: not valid JSON ({err})") from err
    weights = directory / WEIGHTS_FILE
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many kinds here
        raise ValueError(f"{weights}: cannot read the weights ({err})") from err
    return spec, state


def load_model(directory: str | Path) -> nn.Module:
    """Rebuild the model of a checkpoint and load its weights, in eval mode."""
    spec, state = load_checkpoint(directory)
    builder = resolve_builder(spec["builder"])
    model = builder(dict(spec["model_cfg"]))
    model.load_state_dict(state)
    model.eval()
    return model
