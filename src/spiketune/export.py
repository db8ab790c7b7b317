"""Export a trained network: a checkpoint, a JSON description and NIR."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from spiketune.hardware.fit import export_weight
from spiketune.tuning.checkpoint import load_checkpoint, load_model

__all__ = ["describe_network", "export_checkpoint", "to_nir"]

logger = logging.getLogger(__name__)


def describe_network(model: nn.Module) -> dict[str, Any]:
    """Return a JSON-ready description of an SNN's layers and weights.

    Weights are the effective ones a chip receives: clipped and quantised,
    without mismatch noise.
    """
    layers = []
    for i, (synapse, neuron) in enumerate(
        zip(model.synapses, model.neurons, strict=True)
    ):
        entry: dict[str, Any] = {
            "index": i,
            "synapse": type(synapse).__name__,
            "n_in": synapse.n_in,
            "n_out": synapse.n_out,
            "weight": _export_weight(synapse).tolist(),
            "neuron": type(neuron).__name__,
            "tau_s": neuron.tau.detach().cpu().tolist(),
            "dt_s": neuron.dt,
        }
        if hasattr(neuron, "threshold"):
            entry["threshold"] = neuron.threshold.detach().cpu().tolist()
            entry["reset_mechanism"] = neuron.reset_mechanism
        recurrent = getattr(neuron, "recurrent", None)
        if recurrent is not None:
            entry["recurrent_weight"] = _export_weight(recurrent).tolist()
        layers.append(entry)
    profile = getattr(model, "profile", None)
    return {
        "format": "spiketune-network",
        "version": 1,
        "dt_s": model.dt,
        "weight_layout": "[N_in, N_out]",
        "profile": profile.to_dict() if profile is not None else None,
        "layers": layers,
    }


def _export_weight(synapse: nn.Module) -> np.ndarray:
    with torch.no_grad():
        return export_weight(synapse).detach().cpu().numpy()


def to_nir(model: nn.Module) -> Any:
    """Convert an SNN to a NIR graph (requires the ``nir`` package).

    Each synapse becomes ``nir.Linear`` with weight ``[N_out, N_in]`` and each
    LIF layer ``nir.LIF`` with ``r = tau / dt`` so that one step of input
    ``I`` raises the membrane by ``I``, as in spiketune's discrete update.
    """
    import nir

    description = describe_network(model)
    nodes: dict[str, Any] = {"input": nir.Input(input_type=np.array([model.n_inputs]))}
    edges: list[tuple[str, str]] = []
    previous = "input"
    for layer in description["layers"]:
        i = layer["index"]
        weight = np.asarray(layer["weight"], dtype=np.float32).T
        tau = np.asarray(layer["tau_s"], dtype=np.float32)
        threshold = np.asarray(
            layer.get("threshold", [np.inf] * len(tau)), dtype=np.float32
        )
        nodes[f"linear{i}"] = nir.Linear(weight=weight)
        nodes[f"lif{i}"] = nir.LIF(
            tau=tau,
            r=tau / layer["dt_s"],
            v_leak=np.zeros_like(tau),
            v_threshold=threshold,
        )
        edges += [(previous, f"linear{i}"), (f"linear{i}", f"lif{i}")]
        if "recurrent_weight" in layer:
            rec = np.asarray(layer["recurrent_weight"], dtype=np.float32).T
            nodes[f"recurrent{i}"] = nir.Linear(weight=rec)
            edges += [(f"lif{i}", f"recurrent{i}"), (f"recurrent{i}", f"lif{i}")]
        previous = f"lif{i}"
    nodes["output"] = nir.Output(output_type=np.array([model.n_outputs]))
    edges.append((previous, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges)


def export_checkpoint(checkpoint: str | Path, out_dir: str | Path) -> list[Path]:
    """Write a checkpoint copy, ``network.json`` and, if possible, ``network.nir``.

    Returns
    -------
    list of Path
        The files written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    spec, _ = load_checkpoint(checkpoint)
    model = load_model(checkpoint)
    written = []
    for name in ("model.pt", "spec.json"):
        shutil.copy2(Path(checkpoint) / name, out_dir / name)
        written.append(out_dir / name)
    description = describe_network(model)
    description["trial_id"] = spec.get("trial_id")
    description["metrics"] = spec.get("metrics")
    json_path = out_dir / "network.json"
    json_path.write_text(json.dumps(description, indent=1))
    written.append(json_path)
    try:
        import nir
    except ImportError:
        logger.warning("package 'nir' is not installed; skipped the NIR export")
        return written
    nir_path = out_dir / "network.nir"
    nir.write(str(nir_path), to_nir(model))
    written.append(nir_path)
    return written
