"""Hardware-constrained synapse and LIF layer driven by a chip profile.

These layers model a chip; they do not reproduce its circuits. The synapse
clips weights to the profile's range, rounds them to its precision and adds
synaptic mismatch. The neuron uses the chip's shared threshold, floors the
membrane, snaps ``tau`` to an allowed value and perturbs it per neuron.
Mismatch is sampled in :meth:`prepare`, once per batch, and is off in
``eval()`` mode unless ``eval_mismatch=True``.
"""

from __future__ import annotations

import torch

from spiketune.hardware.blocks import quantize
from spiketune.hardware.profile import ChipProfile, get_profile
from spiketune.neurons.functional import beta_from_tau
from spiketune.neurons.lif import LIF
from spiketune.neurons.synapse import Dense
from spiketune.surrogates import Surrogate

__all__ = ["HardwareDense", "HardwareLIF"]


class HardwareDense(Dense):
    """Dense synapse whose effective weight obeys a chip profile.

    The effective weight is ``quantize(clip(w)) + noise``: clipped to
    ``[-limit, limit]``, rounded to ``profile.weight_bits`` with a
    straight-through gradient, plus Gaussian mismatch of standard deviation
    ``profile.synapse_mismatch_std`` drawn once per batch.

    Parameters
    ----------
    n_in, n_out : int
        Input and output sizes.
    profile : str or ChipProfile, default "gen1"
        Chip profile by name or instance.
    quantize_weights : bool, default True
        Round to the profile's precision when it has one.
    mismatch : bool, default True
        Add synaptic mismatch when the profile models it.
    eval_mismatch : bool, default False
        Keep sampling mismatch in ``eval()`` mode.
    weight_scale : float, default 1.0
        Multiplier on the default initialisation.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        profile: str | ChipProfile = "gen1",
        quantize_weights: bool = True,
        mismatch: bool = True,
        eval_mismatch: bool = False,
        weight_scale: float = 1.0,
    ) -> None:
        super().__init__(n_in, n_out, bias=False, weight_scale=weight_scale)
        self.profile = get_profile(profile)
        self.quantize_weights = quantize_weights
        self.mismatch = mismatch
        self.eval_mismatch = eval_mismatch
        with torch.no_grad():
            limit = self.profile.weight_limit
            self.weight.clamp_(-limit, limit)
        self.noise: torch.Tensor | None = None

    def _mismatch_on(self) -> bool:
        active = self.training or self.eval_mismatch
        return self.mismatch and active and self.profile.synapse_mismatch_std > 0

    def prepare(self) -> None:
        """Draw this batch's synaptic mismatch, or clear it when off."""
        if not self._mismatch_on():
            self.noise = None
            return
        std = self.profile.synapse_mismatch_std
        weight = self.weight
        self.noise = (
            torch.randn(weight.shape, dtype=weight.dtype, device=weight.device) * std
        )

    def effective_weight(self) -> torch.Tensor:
        """Return the clipped, quantised, mismatched weight for this batch."""
        limit = self.profile.weight_limit
        weight = torch.clamp(self.weight, -limit, limit)
        if self.quantize_weights and self.profile.weight_bits is not None:
            weight = quantize(weight, limit, self.profile.weight_bits)
        if self.noise is not None:
            weight = weight + self.noise
        return weight

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, profile={self.profile.name!r}"


class HardwareLIF(LIF):
    """LIF layer with a chip's threshold, floor, reset and time constants.

    Parameters
    ----------
    n : int
        Number of neurons.
    profile : str or ChipProfile, default "gen1"
        Chip profile by name or instance.
    tau : float, default 0.016
        Requested time constant in seconds; snapped to the nearest value in
        ``profile.tau_values``.
    dt : float, optional
        Time step in seconds; the profile's ``dt`` when omitted.
    spike_grad : str or Surrogate, default "fast_sigmoid"
        Surrogate gradient.
    recurrent : bool, default False
        Add recurrent weights; they are hardware synapses of the same profile.
    mismatch : bool, default True
        Perturb ``tau`` and the threshold per neuron by the profile's spreads.
    eval_mismatch : bool, default False
        Keep sampling mismatch in ``eval()`` mode.
    floor_gradient : str, optional
        Gradient of the membrane floor, ``"zero"`` or ``"straight_through"``;
        the profile's ``floor_gradient`` when omitted.
    """

    def __init__(
        self,
        n: int,
        profile: str | ChipProfile = "gen1",
        tau: float = 0.016,
        dt: float | None = None,
        spike_grad: str | Surrogate = "fast_sigmoid",
        recurrent: bool = False,
        mismatch: bool = True,
        eval_mismatch: bool = False,
        floor_gradient: str | None = None,
    ) -> None:
        profile = get_profile(profile)
        self.profile = profile
        self.requested_tau = float(tau)
        super().__init__(
            n,
            tau=profile.snap_tau(tau),
            dt=profile.dt if dt is None else dt,
            threshold=profile.threshold,
            reset_mechanism=profile.reset_mechanism,
            spike_grad=spike_grad,
            recurrent=recurrent,
            mem_floor=profile.mem_floor,
            floor_gradient=(
                profile.floor_gradient if floor_gradient is None else floor_gradient
            ),
        )
        self.mismatch = mismatch
        self.eval_mismatch = eval_mismatch
        self.tau_scale: torch.Tensor | None = None
        self.threshold_scale: torch.Tensor | None = None

    def _make_recurrent(self) -> HardwareDense:
        return HardwareDense(self.n, self.n, self.profile, weight_scale=0.5)

    def prepare(self) -> None:
        """Draw this batch's leak and threshold mismatch, or clear them."""
        self.tau_scale = None
        self.threshold_scale = None
        if not (self.mismatch and (self.training or self.eval_mismatch)):
            return
        if self.profile.leak_mismatch_std > 0:
            noise = torch.randn(self.n, device=self.tau.device)
            # Keep each perturbed tau positive.
            scale = 1.0 + self.profile.leak_mismatch_std * noise
            self.tau_scale = torch.clamp(scale, min=0.1)
        if self.profile.threshold_mismatch_std > 0:
            noise = torch.randn(self.n, device=self.tau.device)
            scale = 1.0 + self.profile.threshold_mismatch_std * noise
            self.threshold_scale = torch.clamp(scale, min=0.1)

    def beta(self) -> torch.Tensor:
        """Return ``exp(-dt / tau)`` with this batch's leak mismatch."""
        tau = self.tau
        if self.tau_scale is not None:
            tau = tau * self.tau_scale
        return beta_from_tau(tau, self.dt)

    def effective_threshold(self) -> torch.Tensor:
        """Return the shared threshold with this batch's spread, if any."""
        if self.threshold_scale is None:
            return self.threshold
        return self.threshold * self.threshold_scale
