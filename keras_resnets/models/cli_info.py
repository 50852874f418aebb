"""``keras-resnets info MODEL``: parameters, FLOPs and per-stage output shapes, or receptive fields."""
from __future__ import annotations

import json

from keras_resnets.cli_args import parse_key_value


def _shape(text: str) -> tuple:
    try:
        dims = tuple(int(v) for v in text.lower().replace("x", ",").split(","))
    except ValueError:
        raise ValueError(f"--input-shape must look like 224,224,3 or 32x32x3, got {text!r}") from None
    if len(dims) != 3 or min(dims) < 1:
        raise ValueError(f"--input-shape needs three positive sizes (height, width, channels), got {text!r}")
    return dims


def add_arguments(parser) -> None:
    parser.add_argument("model", help="registered model name (see `keras-resnets list`)")
    parser.add_argument("--input-shape", type=str, default=None, help="e.g. 224,224,3 (default: the model's)")
    parser.add_argument("--classes", type=int, default=None, help="number of classes of the classifier")
    parser.add_argument("--set", action="append", default=[], type=parse_key_value, metavar="KEY=VALUE",
                        help="any create_model keyword, value as JSON (e.g. --set shortcut='\"conv\"' --set output_stride=8)")
    parser.add_argument("--receptive-field", action="store_true",
                        help="per-layer receptive field size, jump and effective stride instead of the profile")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args) -> int:
    from keras_resnets.models.profile import profile_model
    from keras_resnets.models.factory import create_model

    overrides = dict(args.set)
    if args.input_shape:
        overrides["input_shape"] = _shape(args.input_shape)
    if args.classes is not None:
        overrides["classes"] = args.classes
    model = create_model(args.model, **overrides)
    if args.receptive_field:
        import dataclasses

        from keras_resnets.models.receptive_field import format_receptive_fields, receptive_fields

        rows = receptive_fields(model)
        print(json.dumps([dataclasses.asdict(r) for r in rows], indent=2) if args.json else format_receptive_fields(rows))
        return 0
    profile = profile_model(model)
    print(json.dumps(profile.as_dict(), indent=2, default=list) if args.json else profile.format())
    return 0
