"""``deepfill-tf inpaint``: fill holes with an original or our own checkpoint, any family.

Single image:
  deepfill-tf inpaint --checkpoint CKPT --image IMG --mask MASK --output OUT.png
Batch (masks matched by file name), or a file list of "image mask output" lines as the
original batch_test.py:
  deepfill-tf inpaint --checkpoint CKPT --input-dir DIR --mask-dir DIR --output-dir DIR
  deepfill-tf inpaint --checkpoint CKPT --flist pairs.txt
"""

from __future__ import annotations

import argparse
import os
import sys

from deepfill_tf.cli.families import add_family_arguments, family_inputs, family_options
from deepfill_tf.data.folder import IMAGE_EXTENSIONS
from deepfill_tf.errors import DeepfillError, InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="checkpoint directory or prefix")
    parser.add_argument("--image", help="input image (any size; RGB, grayscale, RGBA, 16-bit)")
    parser.add_argument("--mask", help="mask image, white (> 127.5 in its first channel) = hole")
    parser.add_argument("--output", help="output PNG")
    add_family_arguments(parser, "inpaint")
    parser.add_argument("--input-dir", help="batch mode: folder of images")
    parser.add_argument("--mask-dir", help="batch mode: folder of masks with the same file names")
    parser.add_argument("--output-dir", help="batch mode: folder for the results")
    parser.add_argument("--flist", help="batch mode: file of 'image mask output' lines")


def _jobs(args) -> list[tuple[str, str, str]]:
    """(image, mask, output) triples from the arguments."""
    single = [args.image, args.mask, args.output]
    batch_dirs = [args.input_dir, args.mask_dir, args.output_dir]
    if args.flist:
        if any(single) or any(batch_dirs):
            raise InputError(
                "--flist cannot be combined with --image/--mask/--output or the -dir flags"
            )
        return _jobs_from_flist(args.flist)
    if any(batch_dirs):
        if any(single):
            raise InputError(
                "give either --image/--mask/--output or --input-dir/--mask-dir/--output-dir"
            )
        if not all(batch_dirs):
            raise InputError("batch mode needs --input-dir, --mask-dir and --output-dir")
        return _jobs_from_dirs(*batch_dirs)
    if not all(single):
        raise InputError("give --image, --mask and --output (or a batch mode)")
    return [tuple(single)]


def _jobs_from_flist(path: str) -> list[tuple[str, str, str]]:
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line.split() for line in f if line.strip()]
    except OSError as e:
        raise InputError(f"{path}: cannot read file list ({e.strerror})") from None
    base = os.path.dirname(os.path.abspath(path))
    jobs = []
    for number, fields in enumerate(lines, 1):
        if len(fields) != 3:
            raise InputError(
                f"{path}:{number}: expected 'image mask output', got {len(fields)} fields"
            )
        jobs.append(tuple(p if os.path.isabs(p) else os.path.join(base, p) for p in fields))
    if not jobs:
        raise InputError(f"{path}: file list is empty")
    return jobs


def _jobs_from_dirs(input_dir: str, mask_dir: str, output_dir: str) -> list[tuple[str, str, str]]:
    for d in (input_dir, mask_dir):
        if not os.path.isdir(d):
            raise InputError(f"{d}: not a folder")
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise InputError(f"{output_dir}: exists and is not a folder")
    names = sorted(n for n in os.listdir(input_dir) if n.lower().endswith(IMAGE_EXTENSIONS))
    if not names:
        raise InputError(f"{input_dir}: no images")
    os.makedirs(output_dir, exist_ok=True)
    jobs = []
    for name in names:
        stem = os.path.splitext(name)[0]
        jobs.append(
            (
                os.path.join(input_dir, name),
                _find_mask(mask_dir, name, stem),
                os.path.join(output_dir, stem + ".png"),
            )
        )
    return jobs


def _find_mask(mask_dir: str, name: str, stem: str) -> str:
    exact = os.path.join(mask_dir, name)
    if os.path.exists(exact):
        return exact
    for ext in IMAGE_EXTENSIONS:
        candidate = os.path.join(mask_dir, stem + ext)
        if os.path.exists(candidate):
            return candidate
    return exact  # reported as missing when its job runs


def run(args) -> int:
    from deepfill_tf.inference.io import read_image, read_mask, write_png
    from deepfill_tf.inference.loading import load_inpainter

    jobs = _jobs(args)
    inpainter = load_inpainter(args.checkpoint, args.model, **family_options(args))
    extras = {name: read_image(path) for name, path in family_inputs(args).items()}

    failures = 0
    for image_path, mask_path, output_path in jobs:
        try:
            image = read_image(image_path)
            mask = read_mask(mask_path)
            result = inpainter(image, mask, **extras)
            write_png(output_path, result)
        except DeepfillError as e:
            if len(jobs) == 1:
                raise
            failures += 1
            print(f"deepfill-tf inpaint: error: {e} (skipped)", file=sys.stderr)
            continue
        if len(jobs) > 1:
            print(f"{image_path} -> {output_path}")
    if len(jobs) > 1:
        print(f"{len(jobs) - failures} inpainted, {failures} failed")
    return 1 if failures else 0
