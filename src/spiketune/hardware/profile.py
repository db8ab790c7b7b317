"""Chip profiles: the limits and constants of one neuromorphic chip model.

A :class:`ChipProfile` is the single place where a chip's limits live. Layers,
losses, schedulers, metrics and the fit check all read it, so no limit is
written twice. The two built-in profiles follow the published facts about two
generations of an analog mixed-signal audio chip. The exact chip equations are
not public, so every profile is a model of the chip, not a description of it:
the mismatch spreads, the allowed time constants and the energy constants are
modelling choices that a user can override.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from spiketune.neurons.functional import check_floor_gradient

__all__ = ["ChipProfile", "PROFILES", "get_profile", "load_profile"]

_RESETS = ("subtraction", "zero", "none")


def _power_of_two_taus(dt: float, n_values: int = 9) -> tuple[float, ...]:
    # Time constants dt * 2**k, k = 1..n, a model of a leak current that is set
    # by a few bits.
    return tuple(dt * 2**k for k in range(1, n_values + 1))


@dataclass(frozen=True)
class ChipProfile:
    """Limits and per-event constants of one chip model.

    Parameters
    ----------
    name : str
        Short name used in configs and reports.
    weight_limit : float
        Largest allowed absolute synaptic weight; weights lie in
        ``[-weight_limit, weight_limit]``.
    block_size : int, default 5
        Number of neighbouring neurons whose input weights from one source
        share one sign.
    weight_bits : int or None, default 5
        Bits of signed weight precision; ``None`` disables quantisation.
    threshold : float, default 1.0
        Firing threshold shared by every neuron on the chip.
    reset_mechanism : str, default "subtraction"
        Reset after a spike: ``"subtraction"``, ``"zero"`` or ``"none"``.
    mem_floor : float or None, default 0.0
        Lowest membrane value; the membrane is clamped here after each step.
    floor_gradient : str, default "straight_through"
        Training gradient of the floor, not a property of the chip:
        ``"straight_through"`` passes the gradient as if there were no floor,
        ``"zero"`` is the exact derivative, which is zero below the floor and
        so cuts the gradient through time wherever the input current is
        negative. The forward pass clamps either way. Straight-through is the
        default because it lets silent output neurons recover in training.
    dt : float, default 1e-3
        Simulation time step in seconds that the time constants refer to.
    tau_values : tuple of float
        Allowed membrane time constants in seconds; a layer's ``tau`` snaps to
        the nearest one on a log scale.
    leak_mismatch_std : float, default 0.0
        Relative standard deviation of each neuron's time constant.
    threshold_mismatch_std : float, default 0.0
        Relative standard deviation of each neuron's threshold.
    synapse_mismatch_std : float, default 0.0
        Standard deviation of additive Gaussian noise on effective weights,
        in weight units, sampled once per batch.
    core_sizes : tuple of int
        Neurons per core. Recurrent links must stay inside one core.
    energy_per_spike_j : float
        Energy estimate per output spike in joules.
    energy_per_synop_j : float
        Energy estimate per synaptic operation (one spike reaching one
        target) in joules.
    """

    name: str
    weight_limit: float
    block_size: int = 5
    weight_bits: int | None = 5
    threshold: float = 1.0
    reset_mechanism: str = "subtraction"
    mem_floor: float | None = 0.0
    floor_gradient: str = "straight_through"
    dt: float = 1e-3
    tau_values: tuple[float, ...] = field(
        default_factory=lambda: _power_of_two_taus(1e-3)
    )
    leak_mismatch_std: float = 0.0
    threshold_mismatch_std: float = 0.0
    synapse_mismatch_std: float = 0.0
    core_sizes: tuple[int, ...] = (256,)
    energy_per_spike_j: float = 1e-11
    energy_per_synop_j: float = 5e-12

    def __post_init__(self) -> None:
        object.__setattr__(self, "tau_values", tuple(float(t) for t in self.tau_values))
        object.__setattr__(self, "core_sizes", tuple(int(n) for n in self.core_sizes))
        self._validate()

    def _validate(self) -> None:
        prefix = f"chip profile {self.name!r}"
        _check_positive(prefix, "weight_limit", self.weight_limit)
        _check_positive(prefix, "threshold", self.threshold)
        _check_positive(prefix, "dt", self.dt)
        if int(self.block_size) != self.block_size or self.block_size < 1:
            raise ValueError(
                f"{prefix}: block_size must be a positive integer, "
                f"got {self.block_size!r}"
            )
        if self.weight_bits is not None and not 2 <= self.weight_bits <= 16:
            raise ValueError(
                f"{prefix}: weight_bits must be between 2 and 16 or null, "
                f"got {self.weight_bits!r}"
            )
        if self.reset_mechanism not in _RESETS:
            raise ValueError(
                f"{prefix}: reset_mechanism must be one of {', '.join(_RESETS)}, "
                f"got {self.reset_mechanism!r}"
            )
        check_floor_gradient(self.floor_gradient, f"{prefix}: floor_gradient")
        if not self.tau_values or min(self.tau_values) <= 0:
            raise ValueError(
                f"{prefix}: tau_values must be a non-empty list of positive "
                f"times in seconds, got {list(self.tau_values)}"
            )
        if not self.core_sizes or min(self.core_sizes) < 1:
            raise ValueError(
                f"{prefix}: core_sizes must list positive neuron counts, "
                f"got {list(self.core_sizes)}"
            )
        for key in (
            "leak_mismatch_std",
            "threshold_mismatch_std",
            "synapse_mismatch_std",
            "energy_per_spike_j",
            "energy_per_synop_j",
        ):
            value = getattr(self, key)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{prefix}: {key} must be >= 0, got {value!r}")

    @property
    def n_neurons(self) -> int:
        """Total neurons on the chip, over all cores."""
        return sum(self.core_sizes)

    def snap_tau(self, tau: float) -> float:
        """Return the allowed time constant nearest ``tau`` on a log scale."""
        if tau <= 0:
            raise ValueError(f"tau must be > 0 s, got {tau}")
        return min(self.tau_values, key=lambda t: abs(math.log(t / tau)))

    def to_dict(self) -> dict[str, Any]:
        """Return the profile as plain data for YAML or JSON."""
        data = dataclasses.asdict(self)
        data["tau_values"] = list(self.tau_values)
        data["core_sizes"] = list(self.core_sizes)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChipProfile:
        """Build a profile from a mapping, rejecting unknown keys by name."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown chip profile keys {unknown}; valid keys are {sorted(known)}"
            )
        return cls(**data)


def _check_positive(prefix: str, key: str, value: float) -> None:
    if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{prefix}: {key} must be a number > 0, got {value!r}")


PROFILES: dict[str, ChipProfile] = {
    # Older generation: nonlinear synapse, weights in [-0.9, 0.9], 4 cores of
    # 64 neurons and additive synaptic mismatch.
    "gen1": ChipProfile(
        name="gen1",
        weight_limit=0.9,
        block_size=5,
        weight_bits=5,
        threshold=1.0,
        reset_mechanism="subtraction",
        mem_floor=0.0,
        leak_mismatch_std=0.1,
        threshold_mismatch_std=0.0,
        synapse_mismatch_std=0.02,
        core_sizes=(64, 64, 64, 64),
        energy_per_spike_j=2e-11,
        energy_per_synop_j=8e-12,
    ),
    # Newer generation: linear synapse, weights in [-1.66, 1.66], cores of 50,
    # 50 and 100 neurons, a small threshold spread and no synaptic mismatch.
    "gen2": ChipProfile(
        name="gen2",
        weight_limit=1.66,
        block_size=5,
        weight_bits=5,
        threshold=1.0,
        reset_mechanism="subtraction",
        mem_floor=0.0,
        leak_mismatch_std=0.05,
        threshold_mismatch_std=0.02,
        synapse_mismatch_std=0.0,
        core_sizes=(50, 50, 100),
        energy_per_spike_j=1e-11,
        energy_per_synop_j=3e-12,
    ),
}


def get_profile(spec: str | ChipProfile | Mapping[str, Any]) -> ChipProfile:
    """Return a chip profile from a built-in name, a mapping or a profile.

    Parameters
    ----------
    spec : str, mapping or ChipProfile
        A built-in name (``"gen1"``, ``"gen2"``), a path to a YAML file that
        ends in ``.yaml`` or ``.yml``, a mapping of profile fields, or a
        profile.

    Raises
    ------
    ValueError
        If the name is unknown (the message lists the built-in names) or a
        field is invalid.
    """
    if isinstance(spec, ChipProfile):
        return spec
    if isinstance(spec, Mapping):
        return ChipProfile.from_dict(spec)
    if isinstance(spec, str) and spec.endswith((".yaml", ".yml")):
        return load_profile(spec)
    if spec in PROFILES:
        return PROFILES[spec]
    raise ValueError(
        f"unknown chip profile {spec!r}; built-in profiles are "
        f"{', '.join(sorted(PROFILES))}, or pass a YAML file path"
    )


def load_profile(path: str | Path) -> ChipProfile:
    """Read a custom chip profile from a YAML mapping of profile fields."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"chip profile file not found: {path}")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: a chip profile must be a YAML mapping")
    data = dict(data)
    data.setdefault("name", path.stem)
    return ChipProfile.from_dict(data)
