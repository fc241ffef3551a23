"""``--hd-strategy`` and its flags: how ``deepfill-tf inpaint`` runs large photos, for every
family (see ``deepfill_tf.inference.hd_strategy`` and docs/high_resolution.md).

Flags are family-independent: they wrap whatever inpainter the checkpoint gives.
``--max-attention-mb`` applies to models with contextual attention only.
"""

from __future__ import annotations

import argparse
import sys

from deepfill_tf.errors import InputError

# flag -> HDOptions field (None: not a field)
_FLAGS = {
    "hd_trigger": "trigger",
    "hd_resize_limit": "resize_limit",
    "hd_crop_margin": "crop_margin",
    "max_pixels": "max_pixels",
}


def add_hd_arguments(parser: argparse.ArgumentParser) -> None:
    """The large-photo flags (defaults: ``HDOptions``; None marks "not given")."""
    # Loaded on use: it imports OpenCV, which only the commands that need it should pay for.
    from deepfill_tf.inference.hd_strategy import STRATEGIES, HDOptions

    d = HDOptions()
    group = parser.add_argument_group("large photos (docs/high_resolution.md)")
    group.add_argument(
        "--hd-strategy",
        choices=STRATEGIES,
        default=None,
        help=f"original: the whole image at full size; resize: scale the long side to "
        f"--hd-resize-limit, inpaint, scale back, paste the hole; crop: inpaint a crop around "
        f"each hole region at full size and paste the hole (default {d.strategy})",
    )
    group.add_argument(
        "--hd-trigger",
        type=int,
        metavar="PX",
        help=f"resize / crop apply only above this long side (default {d.trigger})",
    )
    group.add_argument(
        "--hd-resize-limit",
        type=int,
        metavar="PX",
        help=f"resize: long side the image is scaled to; crop: for a crop of a full-image "
        f"mask (default {d.resize_limit})",
    )
    group.add_argument(
        "--hd-crop-margin",
        type=int,
        metavar="PX",
        help=f"crop: context around each hole region (default {d.crop_margin})",
    )
    group.add_argument(
        "--max-attention-mb",
        type=float,
        metavar="MB",
        help="memory budget of contextual attention: larger inputs run it exactly in chunks "
        "(default 512)",
    )
    group.add_argument(
        "--max-pixels",
        type=int,
        metavar="PX",
        help=f"refuse images with more pixels (default {d.max_pixels})",
    )


def hd_options(args: argparse.Namespace, family=None):
    """``HDOptions`` from the flags; a flag the chosen strategy does not use is an
    ``InputError``. A family's ``trained_hole_px`` attribute (width of the largest training
    hole), when it has one, sets the big-hole note's reference."""
    # Loaded on use: it imports OpenCV, which only the commands that need it should pay for.
    from deepfill_tf.inference.hd_strategy import HDOptions, check_applicable

    strategy = args.hd_strategy or HDOptions().strategy
    given = {field: getattr(args, flag, None) for flag, field in _FLAGS.items()}
    given = {k: v for k, v in given.items() if v is not None}
    check_applicable(strategy, set(given))
    trained = getattr(family, "trained_hole_px", None)
    if trained:
        given["trained_hole"] = int(trained)
    return HDOptions(strategy=strategy, **given)


def apply_attention_budget(args: argparse.Namespace, inpainter) -> None:
    """``--max-attention-mb`` onto the model's contextual attention (before its first call)."""
    # Loaded on use: it imports OpenCV, which only the commands that need it should pay for.
    from deepfill_tf.inference.hd_strategy import set_attention_options

    if args.max_attention_mb is None:
        return
    if not args.max_attention_mb > 0:
        raise InputError(f"--max-attention-mb must be > 0, got {args.max_attention_mb}")
    generator = getattr(inpainter, "generator", None)
    found = (
        0
        if generator is None
        else set_attention_options(generator, max_attention_mb=args.max_attention_mb)
    )
    if not found:
        raise InputError(
            f"--max-attention-mb does not apply to this model ({inpainter.label}: no "
            "contextual attention)"
        )


def print_notes(notes) -> None:
    for note in notes:
        print(f"deepfill-tf inpaint: note: {note}", file=sys.stderr)


def add_export_hd_arguments(parser: argparse.ArgumentParser) -> None:
    """``deepfill-tf export``'s large-photo flags: the strategy baked into the SavedModel."""
    # Loaded on use: it imports OpenCV, which only the commands that need it should pay for.
    from deepfill_tf.inference.hd_strategy import HDOptions

    d = HDOptions()
    group = parser.add_argument_group("large photos, saved_model (docs/high_resolution.md)")
    group.add_argument(
        "--hd-strategy",
        choices=("original", "crop"),
        default=None,
        help=f"crop: images whose long side exceeds --hd-trigger are inpainted in one crop "
        f"around their holes, in the graph; original: always the whole image (default "
        f"{d.strategy})",
    )
    group.add_argument(
        "--hd-trigger", type=int, metavar="PX", help=f"crop above this long side ({d.trigger})"
    )
    group.add_argument(
        "--hd-crop-margin",
        type=int,
        metavar="PX",
        help=f"context around the holes ({d.crop_margin})",
    )


def export_hd_crop(args: argparse.Namespace):
    """The SavedModel's ``hd_crop`` from the export flags (None: the whole image)."""
    # Loaded on use: it imports OpenCV, which only the commands that need it should pay for.
    from deepfill_tf.inference.hd_strategy import HDOptions, check_applicable

    given = {
        field: getattr(args, flag, None)
        for flag, field in (("hd_trigger", "trigger"), ("hd_crop_margin", "crop_margin"))
    }
    given = {k: v for k, v in given.items() if v is not None}
    strategy = args.hd_strategy or HDOptions().strategy
    if args.format != "saved_model":
        if args.hd_strategy or given:
            raise InputError(f"the --hd-* flags apply to --format saved_model, not {args.format}")
        return None
    check_applicable(strategy, set(given))
    if strategy == "original":
        return None
    options = HDOptions(strategy=strategy, **given)
    return {
        "trigger": options.trigger,
        "margin": options.crop_margin,
        "limit": options.crop_limit,
    }
