"""Network container, its output object and the built-in network builders."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from spiketune.hardware.layers import HardwareDense, HardwareLIF
from spiketune.hardware.profile import ChipProfile, get_profile
from spiketune.neurons.lif import LIF
from spiketune.neurons.readout import LeakyReadout
from spiketune.neurons.synapse import Dense

__all__ = ["SNN", "NetworkOutput", "build_network", "prepare_net"]


@dataclass
class NetworkOutput:
    """Everything a batch produces, read by losses and metrics.

    Attributes
    ----------
    spikes : torch.Tensor or None
        Output-layer spikes ``[B, T, N_out]``; ``None`` for a non-spiking
        read-out.
    mem : torch.Tensor
        Output-layer membrane after reset ``[B, T, N_out]``.
    layer_spikes : list of torch.Tensor
        Spikes ``[B, T, N_i]`` of every spiking layer, input side first; the
        output layer is last when it spikes.
    fan_out : list of int
        Synapses driven by each spike of the matching entry in
        ``layer_spikes`` (next layer's size plus recurrent targets).
    input_fan_out : int
        Synapses driven by each input event.
    inputs : torch.Tensor
        The input batch ``[B, T, N_in]``.
    dt : float
        Time step in seconds.
    """

    spikes: torch.Tensor | None
    mem: torch.Tensor
    layer_spikes: list[torch.Tensor]
    fan_out: list[int]
    input_fan_out: int
    inputs: torch.Tensor
    dt: float

    @property
    def n_steps(self) -> int:
        """Number of time steps ``T``."""
        return self.mem.shape[1]


def prepare_net(model: nn.Module) -> None:
    """Reset every neuron's state and rebuild per-batch derived tensors.

    Calls ``reset_state()`` and then ``prepare()`` on every submodule that
    has them, so the next batch starts at rest with fresh mismatch noise and a
    state sized for its batch.
    """
    for module in model.modules():
        if hasattr(module, "reset_state"):
            module.reset_state()
    for module in model.modules():
        if hasattr(module, "prepare"):
            module.prepare()


class SNN(nn.Module):
    """Chain of ``(synapse, neuron layer)`` pairs run on whole batches.

    Parameters
    ----------
    layers : sequence of nn.Module
        Alternating synapses and neuron layers: ``[Dense, LIF, Dense, LIF,
        ...]``. The last neuron layer may be a :class:`LeakyReadout`.
    profile : ChipProfile, optional
        The chip profile the network targets, kept for checks and export.

    Raises
    ------
    ValueError
        If layers do not alternate or sizes do not chain.
    """

    def __init__(
        self, layers: Sequence[nn.Module], profile: ChipProfile | None = None
    ) -> None:
        super().__init__()
        _check_layers(layers)
        self.synapses = nn.ModuleList(layers[0::2])
        self.neurons = nn.ModuleList(layers[1::2])
        self.profile = profile
        self.dt = float(self.neurons[0].dt)

    @property
    def n_inputs(self) -> int:
        """Input features per time step."""
        return self.synapses[0].n_in

    @property
    def n_outputs(self) -> int:
        """Output units."""
        return self.neurons[-1].n

    def forward(self, x: torch.Tensor) -> NetworkOutput:
        """Run a batch ``[B, T, N_in]`` from rest and return its output."""
        self._check_input(x)
        prepare_net(self)
        hidden = x
        layer_spikes = []
        mem = x
        for synapse, neuron in zip(self.synapses, self.neurons, strict=True):
            spk, mem = neuron.forward_sequence(synapse(hidden))
            if spk is not None:
                layer_spikes.append(spk)
            hidden = spk
        return self._output(x, layer_spikes, mem)

    def forward_steps(self, x: torch.Tensor) -> NetworkOutput:
        """Run a batch one time step at a time; same result as :meth:`forward`."""
        self._check_input(x)
        prepare_net(self)
        steps = [[] for _ in self.neurons]
        mems = []
        for x_t in x.unbind(dim=1):
            hidden = x_t
            for i, (synapse, neuron) in enumerate(
                zip(self.synapses, self.neurons, strict=True)
            ):
                hidden, mem = neuron(synapse(hidden))
                steps[i].append(hidden)
            mems.append(mem)
        layer_spikes = [torch.stack(s, dim=1) for s in steps if s[0] is not None]
        return self._output(x, layer_spikes, torch.stack(mems, dim=1))

    def _output(
        self, x: torch.Tensor, layer_spikes: list[torch.Tensor], mem: torch.Tensor
    ) -> NetworkOutput:
        output_spiking = getattr(self.neurons[-1], "spiking", True)
        return NetworkOutput(
            spikes=layer_spikes[-1] if output_spiking else None,
            mem=mem,
            layer_spikes=layer_spikes,
            fan_out=self.fan_out()[: len(layer_spikes)],
            input_fan_out=self.synapses[0].n_out,
            inputs=x,
            dt=self.dt,
        )

    def fan_out(self) -> list[int]:
        """Return synapses driven per spike of each neuron layer."""
        fan = []
        for i, neuron in enumerate(self.neurons):
            forward = self.synapses[i + 1].n_out if i + 1 < len(self.synapses) else 0
            recurrent = neuron.n if getattr(neuron, "recurrent", None) else 0
            fan.append(forward + recurrent)
        return fan

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 3 or x.shape[-1] != self.n_inputs:
            raise ValueError(
                f"network input has shape {tuple(x.shape)}, expected "
                f"[B, T, {self.n_inputs}] (batch, time steps, input features)"
            )


def _check_layers(layers: Sequence[nn.Module]) -> None:
    if len(layers) < 2 or len(layers) % 2:
        raise ValueError(
            f"SNN needs alternating (synapse, neuron) pairs, got {len(layers)} layers"
        )
    for i in range(0, len(layers), 2):
        synapse, neuron = layers[i], layers[i + 1]
        if not hasattr(synapse, "effective_weight"):
            raise ValueError(f"layer {i} must be a synapse, got {type(synapse)}")
        if not hasattr(neuron, "forward_sequence"):
            raise ValueError(f"layer {i + 1} must be a neuron layer, got {neuron}")
        if synapse.n_out != neuron.n:
            raise ValueError(
                f"layer {i} has {synapse.n_out} outputs but layer {i + 1} has "
                f"{neuron.n} neurons"
            )
        if i and layers[i - 2].n_out != synapse.n_in:
            raise ValueError(
                f"layer {i} expects {synapse.n_in} inputs but the previous "
                f"layer has {layers[i - 2].n_out} neurons"
            )
    for neuron in layers[1:-1:2]:
        if not getattr(neuron, "spiking", True):
            raise ValueError("only the last neuron layer may be a non-spiking read-out")


def build_network(
    n_inputs: int,
    n_outputs: int,
    hidden: Sequence[int] = (64,),
    *,
    tau: float = 0.02,
    dt: float = 1e-3,
    threshold: float = 1.0,
    reset_mechanism: str = "subtraction",
    spike_grad: str = "fast_sigmoid",
    slope: float | None = None,
    recurrent: bool = False,
    readout: str = "spike",
    profile: str | ChipProfile | None = None,
    weight_scale: float = 1.0,
    learn_tau: bool = False,
    mismatch: bool = True,
    quantize_weights: bool = True,
) -> SNN:
    """Build a feed-forward or recurrent LIF network, optionally for a chip.

    Parameters
    ----------
    n_inputs, n_outputs : int
        Input features and output units.
    hidden : sequence of int, default (64,)
        Hidden layer sizes.
    tau, dt : float
        Membrane time constant and time step in seconds.
    threshold : float, default 1.0
        Firing threshold of software layers; hardware layers use the profile's.
    reset_mechanism : str, default "subtraction"
        Reset of software layers; hardware layers use the profile's.
    spike_grad : str, default "fast_sigmoid"
        Surrogate name.
    slope : float, optional
        Surrogate slope; the surrogate's default when omitted.
    recurrent : bool, default False
        Give hidden layers all-to-all recurrent weights.
    readout : str, default "spike"
        ``"spike"`` for a spiking output layer, ``"membrane"`` for a
        non-spiking leaky read-out (software only).
    profile : str or ChipProfile, optional
        Build hardware layers for this chip profile.
    weight_scale : float, default 1.0
        Multiplier on the default weight initialisation.
    learn_tau : bool, default False
        Learn per-neuron time constants (software layers only).
    mismatch, quantize_weights : bool, default True
        Hardware options: sample mismatch, round weights.
    """
    from spiketune.surrogates import get_surrogate

    if readout not in ("spike", "membrane"):
        raise ValueError(
            f"model.readout must be 'spike' or 'membrane', got {readout!r}"
        )
    chip = get_profile(profile) if profile is not None else None
    if chip is not None and readout == "membrane":
        raise ValueError(
            "model.readout 'membrane' is not available with a chip profile, "
            "because the chip's output neurons spike; use readout 'spike'"
        )
    sizes = [n_inputs, *hidden, n_outputs]
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        is_output = i == len(sizes) - 2
        surrogate = get_surrogate(spike_grad, slope)
        has_recurrence = recurrent and not is_output
        if chip is not None:
            layers.append(
                HardwareDense(
                    n_in, n_out, chip, quantize_weights=quantize_weights,
                    mismatch=mismatch, weight_scale=weight_scale,
                )
            )  # fmt: skip
            layers.append(
                HardwareLIF(
                    n_out, chip, tau=tau, dt=dt, spike_grad=surrogate,
                    recurrent=has_recurrence, mismatch=mismatch,
                )
            )  # fmt: skip
            continue
        layers.append(Dense(n_in, n_out, weight_scale=weight_scale))
        if is_output and readout == "membrane":
            layers.append(LeakyReadout(n_out, tau=tau, dt=dt))
        else:
            layers.append(
                LIF(
                    n_out, tau=tau, dt=dt, threshold=threshold,
                    reset_mechanism=reset_mechanism, spike_grad=surrogate,
                    learn_tau=learn_tau, recurrent=has_recurrence,
                )
            )  # fmt: skip
    return SNN(layers, profile=chip)
