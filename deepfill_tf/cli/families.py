"""Command-line flags that come from the registered families (``--model`` and each family's
extra inputs and options), so no subcommand lists model names itself.

Families are listed without importing TensorFlow (``deepfill_tf.registry``), so ``--help``
stays fast.
"""

from __future__ import annotations

import argparse
from typing import Any

from deepfill_tf.registry import Family, Option, families

_KINDS = {"int": int, "float": float, "str": str}


def _supports(family: Family, purpose: str) -> bool:
    if purpose == "export":
        return family.exportable
    if purpose == "train":
        return family.trainable
    return True


def add_family_arguments(parser: argparse.ArgumentParser, purpose: str = "inpaint") -> None:
    """``--model`` (``auto`` + every family that can do ``purpose``) and, for ``inpaint``, the
    union of the families' extra inputs and options as flags, each saying whose it is."""
    chosen = [f for f in families() if _supports(f, purpose)]
    lines = "; ".join(f"{f.name}: {f.label}, {f.summary}" for f in chosen)
    parser.add_argument(
        "--model",
        default="auto",
        choices=["auto"] + [name for f in chosen for name in (f.name, *f.aliases)],
        metavar="MODEL",
        help=f"family the checkpoint must hold (default auto: detected). {lines}",
    )
    if purpose != "inpaint":
        return
    seen: dict[str, Option] = {}
    owners: dict[str, list[str]] = {}
    for family in chosen:
        for option in (*family.inputs, *family.options):
            seen.setdefault(option.name, option)
            owners.setdefault(option.name, []).append(family.label)
    for name, option in seen.items():
        whose = ", ".join(owners[name])
        text = f"{option.help} [{whose}]"
        if option.kind == "flag":
            parser.add_argument(option.flag, action="store_true", dest=name, help=text)
        elif option.kind == "image":
            parser.add_argument(option.flag, dest=name, metavar="IMAGE", help=text)
        else:
            parser.add_argument(
                option.flag, dest=name, type=_KINDS[option.kind], default=None, help=text
            )


def family_inputs(args: argparse.Namespace) -> dict[str, str]:
    """The extra image inputs given on the command line: ``{name: path}``."""
    names = {o.name for f in families() for o in f.inputs}
    return {n: getattr(args, n) for n in sorted(names) if getattr(args, n, None)}


def family_options(args: argparse.Namespace) -> dict[str, Any]:
    """The family options given on the command line (flags set, values given)."""
    out = {}
    for family in families():
        for option in family.options:
            value = getattr(args, option.name, None)
            if value not in (None, False):
                out[option.name] = value
    return out
