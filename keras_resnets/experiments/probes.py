"""Measurements taken on an experiment's networks during training (at declared steps, 0 = initialisation).

A probe is a function ``probe(model, data) -> dict | None`` (``data``: the run's dataset, whose fixed
test split gives every arm the same images); ``None`` means "does not apply to this network" (e.g. a dense-block map of a
ResNet). The runner stores each value under ``record["probes"][str(step)]`` so a picture of a trained
network always has its control at initialisation, from the same seed's run.

- ``dense_block_weights``: the Fig. 5 map of DenseNet (Huang et al. 2017): for each target layer of the
  first dense block (and the transition after it), the mean absolute weight of its 1×1 kernel over the
  input channels each source layer contributed.
"""
from __future__ import annotations

import numpy as np


def dense_block_weights(model, data=None, block: int = 1):
    """Mean |w| from source ``s`` (0 = the block's input, ``s`` = output of layer ``s``) to target ``t``
    (layers 1..L of the block, then its transition), read from the 1×1 kernels that see the concatenation.

    Returns ``{"mean_abs_weight": (L+1) x (L+1) nested list, None where s >= t+1 (no connection)}`` or
    ``None`` when the model has no such block.
    """
    prefix = f"block{block}_layer"
    layers = {layer.name: layer for layer in model.layers}
    names = sorted({n[:-len("_conv1")] for n in layers if n.startswith(prefix) and n.endswith("_conv1")},
                   key=lambda n: int(n[len(prefix):]))
    if not names:
        return None
    growth = layers[names[0] + "_conv2"].kernel.shape[-1]
    first = layers[names[0] + "_conv1"].kernel.shape[2]
    kernels = [np.asarray(layers[n + "_conv1"].kernel) for n in names]
    kernels.append(np.asarray(layers[f"transition{block}_conv"].kernel))
    heat = [[None] * len(kernels) for _ in range(len(names) + 1)]
    for target, kernel in enumerate(kernels):
        for source in range(target + 1):
            lo = 0 if source == 0 else first + (source - 1) * growth
            hi = first if source == 0 else first + source * growth
            heat[source][target] = float(np.abs(kernel[..., lo:hi, :]).mean())
    return {"mean_abs_weight": heat}


def heat_array(value: dict) -> np.ndarray:
    """A probe's map as an array, NaN where there is no connection."""
    return np.array([[np.nan if v is None else v for v in row] for row in value["mean_abs_weight"]], dtype=float)


def normalise_per_target(heat: np.ndarray) -> np.ndarray:
    """Each target column divided by its maximum (the paper's colour scale)."""
    return heat / np.nanmax(heat, axis=0, keepdims=True)


def heat_statistics(heat: np.ndarray) -> dict:
    """Summary of a per-target-normalised map over its *connected* cells only (NaN cells are not pairs):
    the share of pairs at >= 0.5 of their target's maximum, the mean on the immediately preceding layer
    and the mean on the block's input (source 0)."""
    valid = ~np.isnan(heat)
    targets = heat.shape[1]
    return {"pairs": int(valid.sum()),
            "share_at_least_half": float((heat[valid] >= 0.5).mean()),
            "preceding_layer": float(np.mean([heat[t, t] for t in range(1, targets)])),
            "block_input": float(np.mean(heat[0, 1:]))}


PROBES = {"dense_block_weights": dense_block_weights}


def get_probe(name: str):
    if name not in PROBES:
        raise ValueError(f"unknown probe {name!r}; allowed: {', '.join(PROBES)}")
    return PROBES[name]


def probe_maps(results: dict, arm: str, step) -> list:
    """Per-seed normalised maps of ``arm`` at ``step`` (``"end"``: the last probed step)."""
    maps = []
    for run in next(a for a in results["arms"] if a["name"] == arm)["runs"]:
        probes = run.get("probes") or {}
        if not probes:
            continue
        key = max(probes, key=int) if step == "end" else str(step)
        if probes.get(key):
            maps.append(normalise_per_target(heat_array(probes[key])))
    return maps


def plot_dense_heatmaps(results: dict, path: str) -> str:
    """Fig. 5 for every DenseNet arm: the map at initialisation (control) beside the trained one, each the
    mean over seeds of the per-target-normalised maps, with the statistics of :func:`heat_statistics`."""
    import os

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = [a["name"] for a in results["arms"] if probe_maps(results, a["name"], 0)]
    fig, axes = plt.subplots(len(arms), 2, figsize=(10, 4.3 * len(arms)), squeeze=False)
    steps = results["protocol"]["budget"]["steps"]
    for row, arm in zip(axes, arms):
        for ax, (step, when) in zip(row, ((0, "initialisation (control)"), ("end", f"after {steps} steps"))):
            maps = probe_maps(results, arm, step)
            heat = np.mean(maps, axis=0)
            stats = heat_statistics(heat)
            image = ax.imshow(heat, cmap="viridis", vmin=0, vmax=1, origin="upper")
            for (s, t), v in np.ndenumerate(heat):
                if not np.isnan(v):
                    ax.text(t, s, f"{v:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if v < 0.6 else "black")
            ax.set_xticks(range(heat.shape[1]))
            ax.set_xticklabels([str(t + 1) for t in range(heat.shape[1] - 1)] + ["T"])
            ax.set_yticks(range(heat.shape[0]))
            ax.set_xlabel("target layer ℓ (T: transition)")
            ax.set_ylabel("source layer s (0: block input)")
            ax.set_title(f"{arm}, block 1, {when}\nmean over {len(maps)} seeds; share of pairs >= 0.5: "
                         f"{stats['share_at_least_half']:.2f} ({stats['pairs']} pairs)", fontsize=9)
            fig.colorbar(image, ax=ax, fraction=0.046)
    fig.suptitle("DenseNet Fig. 5: mean |w| from source s to target ℓ, normalised per target "
                 f"({results['dataset']}, {results['scale']} scale)", fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


PLOTS = {"dense_block_weights": ("dense_block_heatmap", plot_dense_heatmaps)}
