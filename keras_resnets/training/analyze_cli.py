"""``keras-resnets analyze``: parameters/FLOPs per model and the gradient-flow report.

Example::

    keras-resnets analyze --models cifar_resnet20 cifar_resnet56 preact_resnet164 --depth 56 --steps 50
"""
from __future__ import annotations

import argparse
import json
import os
import sys

DEFAULT_MODELS = ("cifar_resnet20", "cifar_resnet56", "cifar_resnet110", "preact_resnet110", "preact_resnet164",
                  "resnet18", "resnet50")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``analyze`` options to ``parser``."""
    parser.add_argument("--models", nargs="*", default=list(DEFAULT_MODELS),
                        help="models to profile (parameters, FLOPs); default: %(default)s")
    parser.add_argument("--input-shape", default=None, metavar="HxWxC",
                        help="input shape for profiling (default: 32x32x3 for CIFAR models, 224x224x3 otherwise)")
    parser.add_argument("--depth", type=int, default=56,
                        help="depth (6n+2) of the networks compared for gradient flow (default: %(default)s)")
    parser.add_argument("--variants", nargs="*", default=["original", "pre-activation", "plain"],
                        help="original, pre-activation, plain (default: all)")
    parser.add_argument("--steps", type=int, default=30, help="SGD steps between the two measurements")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", default=None, help="output folder (default: runs/analysis-<time>)")
    parser.add_argument("--skip-gradient-flow", action="store_true", help="only profile the models")


def _input_shape(text, model_name: str):
    if text:
        parts = tuple(int(p) for p in text.lower().split("x"))
        if len(parts) != 3 or min(parts) <= 0:
            raise ValueError(f"input shape must be HxWxC with positive integers; got {text!r}")
        return parts
    return (32, 32, 3) if model_name.startswith(("cifar", "preact")) else (224, 224, 3)


def profile_models(names, input_shape=None) -> list:
    """Parameters and FLOPs of each registered model (via ``keras_resnets.models.profile``).

    Args:
        names: registered model names.
        input_shape: ``"HxWxC"``; default 32x32x3 for CIFAR models, 224x224x3 otherwise.

    Returns:
        Rows ``{"model", "input_shape", "params", "flops"}``.
    """
    from tqdm import tqdm

    from keras_resnets.models import create_model
    from keras_resnets.models.profile import profile_model

    rows = []
    terminal = sys.stderr.isatty()  # a redirected log gets one plain line per model, not bar fragments
    for name in tqdm(names, desc="profiling", unit="model", leave=False, disable=not terminal):
        if not terminal:
            print(f"profiling {name} ...", file=sys.stderr, flush=True)
        shape = _input_shape(input_shape, name)
        classes = 10 if shape[0] <= 64 else 1000
        profile = profile_model(create_model(name, input_shape=shape, classes=classes))
        rows.append({"model": name, "input_shape": list(shape), "params": profile.params, "flops": profile.flops})
    return rows


def run(args: argparse.Namespace) -> int:
    """Profile the models, measure gradient flow, write JSON + PNG and print tables."""
    from keras_resnets.runs import timestamp
    from keras_resnets.training.analysis import gradient_flow, plot_gradient_flow

    out = args.out or os.path.join("runs", f"analysis-{timestamp()}")
    os.makedirs(out, exist_ok=True)
    rows = profile_models(args.models, args.input_shape)
    print(f"{'model':<22}{'input':<14}{'params':>14}{'GFLOPs':>10}")
    for row in rows:
        shape = "x".join(str(d) for d in row["input_shape"])
        print(f"{row['model']:<22}{shape:<14}{row['params']:>14,}{row['flops'] / 1e9:>10.3f}")
    report = {"profiles": rows}

    if not args.skip_gradient_flow:
        from keras_resnets.data import load_dataset

        datasets = load_dataset("digits", batch_size=args.batch_size, channels=3)
        flows = []
        for variant in args.variants:
            print(f"gradient flow: {variant} depth {args.depth} ({args.steps} SGD steps on digits) ...", flush=True)
            flows.append(gradient_flow(variant, args.depth, datasets, steps=args.steps))
        print(f"\n{'variant':<16}{'units':>6}{'first/last at init':>20}{'first/last trained':>20}"
              f"{'min/max at init':>17}")
        for flow in flows:
            spread = min(flow.at_init) / max(flow.at_init)
            print(f"{flow.variant:<16}{len(flow.units):>6}{flow.ratio('at_init'):>20.3g}"
                  f"{flow.ratio('after_training'):>20.3g}{spread:>17.3g}")
        plot_gradient_flow(flows, args.depth, os.path.join(out, "gradient_flow.png"))
        report["gradient_flow"] = [flow.__dict__ for flow in flows]
    with open(os.path.join(out, "analysis.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(f"\nwritten: {os.path.join(out, 'analysis.json')}"
          + ("" if args.skip_gradient_flow else f", {os.path.join(out, 'gradient_flow.png')}"))
    return 0
