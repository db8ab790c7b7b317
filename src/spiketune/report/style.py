"""Colours, markers and labels shared by the report's figures and page.

Colours come from the Okabe-Ito palette, which stays distinguishable under
the common forms of colour blindness. Every status also has its own marker,
so the figures do not rely on colour alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "BEST_COLOUR",
    "FRONT_COLOUR",
    "OKABE_ITO",
    "STATUS_STYLES",
    "StatusStyle",
    "metric_label",
    "ordered_statuses",
    "status_style",
]

OKABE_ITO = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#F0E442",  # yellow
    "#000000",  # black
)
FRONT_COLOUR = "#009E73"
BEST_COLOUR = "#000000"


@dataclass(frozen=True)
class StatusStyle:
    """Display label, colour and matplotlib marker of one trial status."""

    label: str
    colour: str
    marker: str


STATUS_STYLES = {
    "finished": StatusStyle("finished", "#0072B2", "o"),
    "stopped_early": StatusStyle("stopped early", "#E69F00", "v"),
    "diverged": StatusStyle("diverged", "#D55E00", "X"),
    "error": StatusStyle("error", "#CC79A7", "s"),
    "incomplete": StatusStyle("incomplete", "#56B4E9", "D"),
    "pending": StatusStyle("pending", "#999999", "P"),
}


def ordered_statuses(statuses: Iterable[str]) -> list[str]:
    """Return the distinct statuses in the order of :data:`STATUS_STYLES`."""
    order = list(STATUS_STYLES)
    distinct = {str(s) for s in statuses}
    return sorted(
        distinct, key=lambda s: (order.index(s) if s in order else len(order), s)
    )


def status_style(status: str) -> StatusStyle:
    """Return the style of a status; unknown statuses are drawn grey."""
    return STATUS_STYLES.get(
        status, StatusStyle(status.replace("_", " "), "#999999", ".")
    )


_METRIC_LABELS = {
    "val_accuracy": "validation accuracy (fraction)",
    "val_loss": "validation loss",
    "val_f1_macro": "validation macro F1",
    "val_energy_per_sample_j": "energy per sample, estimate (J)",
    "val_spikes_per_sample": "spikes per sample",
    "val_synops_per_sample": "synaptic operations per sample",
    "train_loss": "training loss",
}


def metric_label(name: str) -> str:
    """Return an axis label for a reported metric, with its unit when known."""
    if name in _METRIC_LABELS:
        return _METRIC_LABELS[name]
    if name.startswith("val_"):
        name = "validation " + name.removeprefix("val_")
    elif name.startswith("test_"):
        name = "test " + name.removeprefix("test_")
    label = name.replace("_", " ")
    if label.endswith(" j"):
        return label.removesuffix(" j") + ", estimate (J)"
    if label.endswith(" hz"):
        return label.removesuffix(" hz") + " (Hz)"
    if label.endswith(" s"):
        return label.removesuffix(" s") + " (s)"
    return label
