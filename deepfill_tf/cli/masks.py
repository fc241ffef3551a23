"""``deepfill-tf masks``: write a reproducible set of training masks as PNG files.

  deepfill-tf masks --kind both --size 256 256 --count 1000 --seed 0 --output-dir masks/

  deepfill-tf masks --kind irregular --hole-ratio 0.1 0.5 --count 1000 --output-dir masks/
  deepfill-tf masks --kind irregular --mask-source nvidia_irregular_masks/ --size 256 256 \
      --count 1000 --output-dir masks/

Writes ``mask_00000.png``, ``mask_00001.png``, ... : single-channel 8-bit PNGs, 255 = hole,
0 = valid (what ``deepfill-tf inpaint --mask`` reads). Masks come from the NumPy/PIL
generators of ``deepfill_tf.masks`` driven by one ``np.random.RandomState(seed)`` (irregular
masks: mask i from ``np.random.default_rng([seed, i])``), so the same arguments give
byte-identical files, and the first N masks of a longer run equal those of a shorter one.
Each file is written under a temporary name and renamed into place.

``--kind irregular`` draws partial-convolution style masks (strokes and blobs, hole ratio in
``--hole-ratio``); with ``--mask-source DIR`` it samples the mask images of DIR instead (e.g.
NVIDIA's Irregular Mask Dataset, black = hole, see ``--holes-are``) with random dilation,
rotation and cropping to ``--size``, written in our convention (white = hole).
"""

from __future__ import annotations

import argparse
import io
import os

from PIL import Image

from deepfill_tf.errors import InputError
from deepfill_tf.evaluation.suites import from_dir, generate_suite, write_suite
from deepfill_tf.fileio import write_atomic

# Largest mask written (pixels): 8192 x 8192. Larger sizes are typos or would exhaust memory.
MAX_PIXELS = 8192 * 8192
# Counts from which progress is printed (every 10%).
PROGRESS_FROM = 1000
_KIND_WORDS = {"both": "box + free-form", "free_form": "free-form"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kind",
        choices=["box", "free_form", "both", "irregular"],
        default="both",
        help="box (v1), free_form brush strokes, or both OR-ed together (v2 training; default);"
        " irregular: partial-convolution masks (generated, or from --mask-source)",
    )
    parser.add_argument(
        "--size",
        type=int,
        nargs="+",
        metavar="S",
        default=[256, 256],
        help="mask size: H W, or S for a square (--suite needs one S)",
    )
    parser.add_argument("--count", type=int, default=1, help="number of masks (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--output-dir", help="folder for the PNGs (created)")
    parser.add_argument(
        "--box-size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="box height and width (default H/2 W/2: inpaint.yml's 128 128 at 256x256)",
    )
    parser.add_argument(
        "--max-delta",
        type=int,
        nargs=2,
        metavar=("DH", "DW"),
        help="max_delta_height/width: the box shrinks by up to DH/2, DW/2 per side "
        "(default H/8 W/8: inpaint.yml's 32 32 at 256x256)",
    )
    parser.add_argument(
        "--margins",
        type=int,
        nargs=2,
        metavar=("V", "H"),
        default=[0, 0],
        help="vertical_margin and horizontal_margin of the box (default 0 0)",
    )
    irregular = parser.add_argument_group("irregular masks (--kind irregular)")
    irregular.add_argument(
        "--hole-ratio",
        type=float,
        nargs=2,
        metavar=("LO", "HI"),
        default=[0.05, 0.5],
        help="generated masks: hole fraction drawn from [LO, HI] (default 0.05 0.5)",
    )
    irregular.add_argument(
        "--border-margin",
        type=int,
        default=0,
        metavar="PX",
        help="generated masks: keep PX pixels along the border free of holes (default 0)",
    )
    irregular.add_argument(
        "--mask-source",
        metavar="DIR",
        help="sample (and augment) the mask images of DIR instead of generating masks",
    )
    irregular.add_argument(
        "--holes-are",
        choices=["black", "white"],
        default="black",
        help="hole colour in the --mask-source files (default black: NVIDIA's dataset)",
    )
    irregular.add_argument(
        "--dilation",
        type=int,
        nargs=2,
        metavar=("MIN", "MAX"),
        default=[1, 9],
        help="--mask-source: random dilation kernel, odd sizes MIN..MAX (default 1 9; 1 = none)",
    )
    irregular.add_argument(
        "--no-rotate",
        action="store_true",
        help="--mask-source: no random rotation",
    )

    # Evaluation mask suites (deepfill_tf.evaluation.suites; docs/evaluation.md).
    parser.add_argument(
        "--suite",
        choices=["box", "center", "freeform", "irregular", "thin", "medium", "thick"],
        help="write a fixed evaluation suite with manifest.json (--count: masks, or per "
        "bucket and border class for irregular)",
    )
    parser.add_argument(
        "--from-dir",
        metavar="DIR",
        help="bucket a folder of NVIDIA Irregular Mask Dataset files (0 = hole) into an "
        "irregular suite",
    )
    parser.add_argument("--output", help="folder of the suite (with --suite / --from-dir)")


def _box_params(args, height: int, width: int):
    # Loaded on use: it imports TensorFlow, which --help and the input checks must not wait for.
    from deepfill_tf.masks import BoxParams

    default = BoxParams.for_image(height, width)
    box_h, box_w = args.box_size or (default.height, default.width)
    delta_h, delta_w = args.max_delta or (default.max_delta_height, default.max_delta_width)
    if min(args.margins) < 0 or min(delta_h, delta_w) < 0:
        raise InputError("--margins and --max-delta must not be negative")
    return BoxParams(box_h, box_w, delta_h, delta_w, args.margins[0], args.margins[1])


def _run_suite(args) -> int:
    """``--suite NAME`` / ``--from-dir DIR``: a checksummed evaluation suite in ``--output``."""

    if len(args.size) != 1:
        raise InputError(f"--suite and --from-dir take one --size S (square), got {args.size}")
    if args.suite and args.from_dir:
        raise InputError("give --suite or --from-dir, not both")
    out = args.output or args.output_dir
    if not out:
        raise InputError("--output DIR is required with --suite / --from-dir")
    if os.path.exists(out) and not os.path.isdir(out):
        raise InputError(f"--output {out} exists and is not a folder")
    size = args.size[0]
    if args.from_dir:
        suite = from_dir(args.from_dir, size)
    else:
        suite = generate_suite(args.suite, size, args.count, args.seed)
    manifest = write_suite(suite, out)
    print(
        f"wrote {len(suite.entries)} {suite.name} masks of {size}x{size} and {manifest} "
        f"(set SHA-256 {suite.set_sha256[:12]})"
    )
    return 0


def run(args) -> int:
    if args.suite or args.from_dir:
        return _run_suite(args)
    if not args.output_dir:
        raise InputError("--output-dir is required")
    if len(args.size) == 1:
        args.size = [args.size[0], args.size[0]]
    if len(args.size) != 2:
        raise InputError(f"--size takes H W or one S, got {args.size}")
    height, width = args.size
    if height < 1 or width < 1:
        raise InputError(f"--size must be positive, got {height} {width}")
    if args.count < 1:
        raise InputError(f"--count must be at least 1, got {args.count}")
    if height * width > MAX_PIXELS:
        raise InputError(
            f"--size {height} {width}: {height * width} pixels per mask is more than the "
            f"{MAX_PIXELS} this command writes; masks are drawn at the training size (e.g. 256 256)"
        )
    out_dir = args.output_dir
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise InputError(f"--output-dir {out_dir} exists and is not a folder")
    box = source = params = None
    if args.kind != "irregular":
        if args.mask_source:
            raise InputError("--mask-source needs --kind irregular")
        box = _box_params(args, height, width)

    # Loaded on use: it imports TensorFlow, which --help and the input checks must not wait for.
    from deepfill_tf.masks.irregular import IrregularMaskFolder, IrregularParams

    if args.kind == "irregular":
        if args.mask_source:
            source = IrregularMaskFolder(
                args.mask_source,
                (height, width),
                holes_are=args.holes_are,
                dilation=tuple(args.dilation),
                rotate=not args.no_rotate,
            )
        else:
            params = IrregularParams(hole_ratio=tuple(args.hole_ratio), margin=args.border_margin)
            params.check()  # ConfigError before any file is written

    created = not os.path.exists(out_dir)
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        raise InputError(f"--output-dir {out_dir}: cannot create ({e.strerror})") from None
    try:
        _write_masks(args, out_dir, (height, width), box, source, params)
    except BaseException:
        if created and not os.listdir(out_dir):  # leave no empty folder behind
            os.rmdir(out_dir)
        raise
    kind = _KIND_WORDS.get(args.kind, args.kind)
    what = f"{kind} mask{'s' if args.count != 1 else ''}"
    what += f" from {args.mask_source}" if args.mask_source else ""
    print(f"wrote {args.count} {what} of {height}x{width} (H x W) to {out_dir}")
    return 0


def _write_masks(args, out_dir: str, size: tuple[int, int], box, source, params) -> None:
    """Draw and write ``args.count`` masks; progress on stdout every 10% of large counts."""
    # Loaded on use: it imports TensorFlow, which --help and the input checks must not wait for.
    import numpy as np

    from deepfill_tf.masks import random_mask
    from deepfill_tf.masks.irregular import irregular_mask

    height, width = size
    rng = np.random.RandomState(args.seed % 2**32)
    digits = max(5, len(str(args.count - 1)))
    step = max(1, args.count // 10) if args.count >= PROGRESS_FROM else 0
    for i in range(args.count):
        if args.kind != "irregular":
            # ConfigError if the box does not fit.
            mask = random_mask(args.kind, (height, width), rng=rng, box=box)
        elif args.mask_source:
            mask = source.sample([args.seed % 2**63, i])
        else:
            mask = irregular_mask((height, width), [args.seed % 2**63, i], params)
        pixels = (mask[0, :, :, 0] > 0.5).astype(np.uint8) * 255
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        # InputError naming the file and the cause if it cannot be written.
        write_atomic(os.path.join(out_dir, f"mask_{i:0{digits}d}.png"), buffer.getvalue())
        if step and (i + 1) % step == 0 and i + 1 < args.count:
            print(f"  {i + 1}/{args.count} masks written", flush=True)
