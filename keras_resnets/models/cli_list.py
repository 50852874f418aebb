"""``keras-resnets list [PATTERN]``: the registered models."""
from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style pattern, e.g. 'cifar_*' (default: all)")
    parser.add_argument("--family", default=None, help="only this family (resnet, resnet_v2, cifar_resnet, ...)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table (as in the README)")


def run(args) -> int:
    from keras_resnets.models.registry import get_entry, list_models

    names = list_models(args.pattern, family=args.family)
    if not names:
        raise ValueError(f"no model matches {args.pattern!r}" + (f" in family {args.family!r}" if args.family else ""))
    entries = [get_entry(name) for name in names]
    if args.markdown:
        print("| name | family | what it is |\n|---|---|---|")
        for e in entries:
            print(f"| `{e.name}` | {e.family} | {e.description} |")
        return 0
    width = max(map(len, names)) + 2
    for e in entries:
        print(f"{e.name:<{width}}{e.family:<16}{e.description}")
    return 0
