"""Figures people would rather look at than read: spectra, rank trajectories, metrics vs rank."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

TOP = 10


def spectrum_trajectory(spectra: list[dict[str, Any]], title: str = "", top: int = TOP) -> Figure:
    """Fig. 5: the top singular values of W_e (left) and of the latent codes (right) per epoch."""
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharex=True)
    epochs = [row["epoch"] for row in spectra]
    for axis, key, label in ((axes[0], "we", "W_e"), (axes[1], "latent", "latent codes")):
        rows = [row[key] for row in spectra]
        if all(r is None for r in rows):
            axis.text(0.5, 0.5, f"no {label} (vanilla)", ha="center", transform=axis.transAxes)
        else:
            for i in range(top):
                values = [r[i] if r is not None and len(r) > i else float("nan") for r in rows]
                axis.plot(epochs, values, lw=1.2, label=f"$\\sigma_{{{i + 1}}}$")
            axis.set_yscale("log")
        axis.set_xlabel("epoch")
        axis.set_ylabel(f"singular values of {label}")
        axis.set_title(f"top {top} singular values: {label}")
    switches = [
        row["epoch"] for prev, row in zip(spectra, spectra[1:]) if row["stage"] != prev["stage"]
    ]
    for axis in axes:
        for epoch in switches:
            axis.axvline(epoch - 0.5, color="k", ls=":", lw=1)
    axes[1].legend(fontsize=7, ncol=2, loc="lower right")
    figure.suptitle(title)
    figure.tight_layout()
    return figure
