"""``keras-resnets list [PATTERN]``: the registered models."""
from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style pattern, e.g. 'cifar_*' (default: all)")
    parser.add_argument("--family", default=None, help="only this family (resnet, resnet_v2, cifar_resnet, ...)")


def run(args) -> int:
    from keras_resnets.models.registry import get_entry, list_models

    names = list_models(args.pattern, family=args.family)
    if not names:
        raise ValueError(f"no model matches {args.pattern!r}" + (f" in family {args.family!r}" if args.family else ""))
    width = max(map(len, names)) + 2
    for name in names:
        entry = get_entry(name)
        print(f"{name:<{width}}{entry.family:<16}{entry.description}")
    return 0
