"""Measurements taken on an experiment's networks during training (at declared steps, 0 = initialisation).

A probe is a function ``probe(model, data) -> dict | None`` (``data``: the run's dataset, whose fixed
test split gives every arm the same images); ``None`` means "does not apply to this network" (e.g. a dense-block map of a
ResNet). The runner stores each value under ``record["probes"][str(step)]`` so a picture of a trained
network always has its control at initialisation, from the same seed's run.

- ``gradient_flow``: the loss gradient at every residual unit's output (first over penultimate unit).
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
            "smallest": float(heat[valid].min()),
            "preceding_layer": float(np.mean([heat[t, t] for t in range(1, targets)])),
            "block_input": float(np.mean(heat[0, 1:]))}


def gradient_flow(model, data):
    """RMS gradient of the cross-entropy (no L2 penalty) at every residual unit's output, on the first
    batch of the fixed test split, with batch statistics as in training; the model's state (BatchNorm
    moving statistics) is restored afterwards, so the probe does not change the run.

    The summary ``first_over_penultimate`` divides unit 1's gradient by unit L-1's, not unit L's: the
    last unit feeds the pooling head directly in one design and through a final BN-ReLU in the other,
    which would favour one design by construction. ``None`` for a network without residual units.
    """
    from keras_resnets.training.analysis import unit_gradient_norms, unit_output_layers

    try:
        units = unit_output_layers(model)
    except ValueError:
        return None
    if len(units) < 3:
        return None
    images, labels = next(iter(data.test))
    saved = [v.numpy() for v in model.non_trainable_variables]
    try:
        norms = unit_gradient_norms(model, images, labels)
    finally:
        for variable, value in zip(model.non_trainable_variables, saved):
            variable.assign(value)
    return {"units": [layer.name for layer in units], "rms_gradient": [float(n) for n in norms],
            "first_over_penultimate": float(norms[0] / norms[-2])}


PROBES = {"dense_block_weights": dense_block_weights, "gradient_flow": gradient_flow}


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


def _mean_std(values) -> str:
    values = np.asarray(values, dtype=float)
    return f"{values.mean():.2f} ± {values.std(ddof=1):.2f}" if len(values) > 1 else f"{values.mean():.2f} (one seed)"


def heat_table(results: dict) -> str:
    """Per DenseNet arm, at initialisation and after training: the statistics of :func:`heat_statistics`,
    each computed per seed, then mean ± std over seeds."""
    from keras_resnets.experiments.report import markdown_table

    steps = results["protocol"]["budget"]["steps"]
    rows = []
    for arm in results["arms"]:
        for step, when in ((0, "initialisation"), ("end", f"after {steps} steps")):
            maps = probe_maps(results, arm["name"], step)
            if not maps:
                continue
            stats = [heat_statistics(m) for m in maps]
            cell = {key: np.array([st[key] for st in stats]) for key in stats[0]}
            rows.append([arm["name"], when, len(maps), stats[0]["pairs"]]
                        + [_mean_std(cell[k]) for k in ("share_at_least_half", "smallest", "preceding_layer", "block_input")])
    return markdown_table(["arm", "weights", "seeds", "connected pairs", "share of pairs >= 0.5 of their target's max",
                           "smallest normalised weight", "on the preceding layer", "on the block input"], rows)


def plot_dense_heatmaps(results: dict, path: str) -> str:
    """Fig. 5 for every DenseNet arm: the map at initialisation (control) beside the trained one, each the
    mean over seeds of the per-target-normalised maps, with the statistics of :func:`heat_statistics`."""
    from keras_resnets.experiments.figures import pyplot, save

    plt = pyplot()

    arms = [a["name"] for a in results["arms"] if probe_maps(results, a["name"], 0)]
    fig, axes = plt.subplots(len(arms), 3, figsize=(15, 4.3 * len(arms)), squeeze=False)
    steps = results["protocol"]["budget"]["steps"]
    for row, arm in zip(axes, arms):
        before, after = (np.mean(probe_maps(results, arm, step), axis=0) for step in (0, "end"))
        seeds = len(probe_maps(results, arm, 0))
        panels = ((before, "initialisation (control)", "viridis", (0, 1)),
                  (after, f"after {steps} steps", "viridis", (0, 1)),
                  (after - before, "change: trained - initialisation", "RdBu", (-0.25, 0.25)))
        for ax, (heat, when, cmap, (lo, hi)) in zip(row, panels):
            image = ax.imshow(heat, cmap=cmap, vmin=lo, vmax=hi, origin="upper")
            for (s, t), v in np.ndenumerate(heat):
                if not np.isnan(v):
                    ax.text(t, s, f"{v:+.2f}" if lo < 0 else f"{v:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if (lo >= 0 and v < 0.6) else "black")
            ax.set_xticks(range(heat.shape[1]))
            ax.set_xticklabels([str(t + 1) for t in range(heat.shape[1] - 1)] + ["T"])
            ax.set_yticks(range(heat.shape[0]))
            ax.set_xlabel("target layer ℓ (T: transition)")
            ax.set_ylabel("source layer s (0: block input)")
            title = f"{arm}, block 1, {when}\nmean over {seeds} seeds"
            if lo >= 0:
                stats = heat_statistics(heat)
                title += f"; share of pairs >= 0.5: {stats['share_at_least_half']:.2f} ({stats['pairs']} pairs)"
            ax.set_title(title, fontsize=9)
            fig.colorbar(image, ax=ax, fraction=0.046)
    fig.suptitle("DenseNet Fig. 5: mean |w| from source s to target ℓ, normalised per target "
                 f"({results['dataset']}, {results['scale']} scale)", fontsize=10)
    return save(fig, path, dpi=100)


def gradient_ratios(results: dict, arm: str) -> dict:
    """``{step: [first_over_penultimate per seed]}`` of ``arm``."""
    ratios = {}
    for run in next(a for a in results["arms"] if a["name"] == arm)["runs"]:
        for step, value in (run.get("probes") or {}).items():
            if value:
                ratios.setdefault(int(step), []).append(value["first_over_penultimate"])
    return dict(sorted(ratios.items()))


def gradient_table(results: dict) -> str:
    """Per arm and probed step: unit 1's RMS gradient over unit L-1's, per seed and mean ± std."""
    from keras_resnets.experiments.report import markdown_table

    rows = []
    for arm in results["arms"]:
        for step, values in gradient_ratios(results, arm["name"]).items():
            values = np.array(values)
            rows.append([arm["name"], step, " / ".join(f"{v:.2f}" for v in values), _mean_std(values)])
    return markdown_table(["arm", "step", "unit 1 / unit L-1, per seed", "mean ± std"], rows)


def plot_gradient_flow(results: dict, path: str) -> str:
    """Left: unit 1 / unit L-1 gradient ratio per arm at each probed step (mean, min-max over seeds).
    Right: per-unit RMS gradient divided by unit L-1's, at initialisation and at the last probed step."""
    from keras_resnets.experiments.figures import pyplot, save

    plt = pyplot()

    arms = [a for a in results["arms"] if gradient_ratios(results, a["name"])]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    colours = plt.get_cmap("tab10")
    for i, arm in enumerate(arms):
        ratios = gradient_ratios(results, arm["name"])
        steps = list(ratios)
        values = [np.array(ratios[s]) for s in steps]
        colour = colours(i % 10)
        left.errorbar(steps, [v.mean() for v in values], capsize=3, marker="o", color=colour,
                      yerr=[[v.mean() - v.min() for v in values], [v.max() - v.mean() for v in values]],
                      label=f"{arm['name']} ({len(values[0])} seeds)")
        for step, style in ((steps[0], ":"), (steps[-1], "-")):
            profiles = [np.array(r["probes"][str(step)]["rms_gradient"]) for r in arm["runs"]
                        if (r.get("probes") or {}).get(str(step))]
            profile = np.mean([p / p[-2] for p in profiles], axis=0)
            right.plot(range(1, len(profile) + 1), profile, style, color=colour,
                       label=f"{arm['name']}, step {step}")
    left.set_yscale("log")
    left.set_xlabel("training step")
    left.set_ylabel("RMS dE/dx at unit 1 / at unit L-1 (log)")
    left.set_title("gradient ratio, first over penultimate unit (mean; bar: min-max over seeds)", fontsize=9)
    left.axhline(1.0, color="grey", lw=0.8)
    left.legend(fontsize=7)
    right.set_yscale("log")
    right.set_xlabel("residual unit (input side first)")
    right.set_ylabel("RMS dE/dx / that at unit L-1 (log)")
    right.set_title("per-unit profile, mean over seeds (dotted: initialisation, solid: last step)", fontsize=9)
    right.legend(fontsize=6, ncol=2)
    budget = results["protocol"]["budget"]
    fig.suptitle(f"{results['title']}: gradient flow on the same runs\n{results['dataset']} "
                 f"{'x'.join(map(str, budget['image_size'] or ['native']))}, loss: cross-entropy without the L2 "
                 "penalty, one fixed test batch, batch statistics", fontsize=9)
    return save(fig, path, dpi=100)


PLOTS = {"dense_block_weights": ("dense_block_heatmap", plot_dense_heatmaps),
         "gradient_flow": ("gradient_flow", plot_gradient_flow)}
