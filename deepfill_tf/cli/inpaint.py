"""``deepfill-tf inpaint``: fill holes with an original or our own checkpoint, any family.

Single image:
  deepfill-tf inpaint --checkpoint CKPT --image IMG --mask MASK --output OUT.png
Batch (masks matched by file name), or a file list of "image mask output" lines as the
original batch_test.py:
  deepfill-tf inpaint --checkpoint CKPT --input-dir DIR --mask-dir DIR --output-dir DIR
  deepfill-tf inpaint --checkpoint CKPT --flist pairs.txt
Large photos: --hd-strategy original|resize|crop (default crop above --hd-trigger 1024 px),
see docs/high_resolution.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from deepfill_tf.cli.families import add_family_arguments, family_inputs, family_options
from deepfill_tf.cli.hd_options import (
    add_hd_arguments,
    apply_attention_budget,
    hd_options,
    print_notes,
)
from deepfill_tf.cli.main import describe_unexpected, verbose_requested
from deepfill_tf.data.folder import IMAGE_EXTENSIONS
from deepfill_tf.errors import DeepfillError, InputError
from deepfill_tf.fileio import refuse_input_overwrite
from deepfill_tf.inference.io import (
    MASK_CHANNELS,
    OUTPUT_FORMATS,
    mask_warning,
    output_format,
    read_image,
    read_mask,
    write_image,
)

# Outputs are complete files once run() returns: the console script may skip TensorFlow's
# tear-down (deepfill_tf.cli.main.console).
FAST_EXIT = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="checkpoint directory or prefix")
    parser.add_argument("--image", help="input image (any size; RGB, grayscale, RGBA, 16-bit)")
    parser.add_argument("--mask", help="mask image, white (> 127.5 in its first channel) = hole")
    parser.add_argument(
        "--output",
        help="output image; its extension picks the format: "
        + ", ".join(OUTPUT_FORMATS)
        + " (WebP lossless)",
    )
    add_family_arguments(parser, "inpaint")
    add_hd_arguments(parser)
    parser.add_argument("--input-dir", help="batch mode: folder of images")
    parser.add_argument("--mask-dir", help="batch mode: folder of masks with the same file names")
    parser.add_argument("--output-dir", help="batch mode: folder for the results")
    parser.add_argument("--flist", help="batch mode: file of 'image mask output' lines")
    parser.add_argument(
        "--jpeg-quality",
        type=int,
        default=95,
        metavar="Q",
        help="quality of .jpg outputs (1-100, default 95)",
    )
    parser.add_argument(
        "--mask-channel",
        default="blue",
        choices=MASK_CHANNELS,
        help="channel of the mask file that marks the hole (default blue: the first channel as "
        "OpenCV reads it, the original rule; alpha = opaque is hole; gray = luma; any = max RGB)",
    )
    parser.add_argument(
        "--mask-threshold",
        type=float,
        default=127.5,
        help="a mask pixel is a hole when its channel value (0-255) is above this (default 127.5)",
    )
    parser.add_argument(
        "--ignore-exif",
        action="store_true",
        help="read the stored pixels; by default a photo's EXIF orientation is applied (as "
        "OpenCV does), so images and masks are what a viewer shows",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="single image: print no summary line on success"
    )


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
            lines = [(n, line.split()) for n, line in enumerate(f, 1) if line.strip()]
    except OSError as e:
        raise InputError(f"{path}: cannot read file list ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not a UTF-8 text file (byte {e.start})") from None
    base = os.path.dirname(os.path.abspath(path))
    jobs = []
    for number, fields in lines:
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


def _is_batch(args) -> bool:
    """--flist or --input-dir: items are reported one by one and a failure skips the item."""
    return bool(args.flist or args.input_dir)


def _checkpoint_exists(path: str) -> bool:
    """A folder, a file, or a prefix some files start with (``snap-0`` -> ``snap-0.index``)."""
    if os.path.exists(path):
        return True
    folder, stem = os.path.split(os.path.abspath(path))
    return os.path.isdir(folder) and any(n.startswith(stem + ".") for n in os.listdir(folder))


def _check_output(path: str, what: str) -> None:
    """Extension, folder and writability of one output, without writing anything."""

    if os.path.isdir(path):
        raise InputError(f"{what} {path}: is a folder; give a file name")
    try:
        output_format(path)
    except InputError as e:
        raise InputError(f"{what} {e}") from None
    folder = os.path.dirname(os.path.abspath(path))
    if what == "--output" or os.path.exists(folder):
        if not os.path.isdir(folder):
            raise InputError(f"{what} {path}: folder {folder} does not exist")
        if not os.access(folder, os.W_OK):
            raise InputError(f"{what} {path}: folder {folder} is not writable")


def check_inputs(args) -> None:
    """What can be checked before TensorFlow and the model load (so a typo is reported at
    once): the jobs, the checkpoint path, the input files of a single image, every output's
    extension and folder, and that no output resolves to an input of the run (the same path,
    through a symlink, or a hard link: batch mode included). Sets ``args.jobs``."""
    if not _checkpoint_exists(args.checkpoint):
        raise InputError(f"{args.checkpoint}: checkpoint not found (no such folder or prefix)")
    if not 1 <= args.jpeg_quality <= 100:
        raise InputError(f"--jpeg-quality {args.jpeg_quality}: must be 1..100")
    if not 0 <= args.mask_threshold < 255:
        raise InputError(f"--mask-threshold {args.mask_threshold:g}: must be in 0..254")
    jobs = _jobs(args)
    extras = family_inputs(args)
    for name, path in extras.items():
        if not os.path.isfile(path):
            raise InputError(f"--{name} {path}: no such file")
    if not _is_batch(args):
        for flag, path in (("--image", jobs[0][0]), ("--mask", jobs[0][1])):
            if not os.path.isfile(path):
                what = "is a directory, not an image" if os.path.isdir(path) else "no such file"
                raise InputError(f"{flag} {path}: {what}")
    inputs = [p for job in jobs for p in job[:2]] + list(extras.values())
    what = "output" if _is_batch(args) else "--output"
    for _, _, output in jobs:
        if args.output_dir is None:
            _check_output(output, what)
        refuse_input_overwrite(output, inputs, what)
    if args.output_dir and os.path.exists(args.output_dir):
        if not os.access(args.output_dir, os.W_OK):
            raise InputError(f"--output-dir {args.output_dir}: folder is not writable")
    args.jobs = jobs


def _write_output(args, path: str, rgb, inputs) -> None:
    """Write one result in its extension's format; the batch output folder is made on first
    use (a run that fails validation leaves no empty folder)."""

    if args.output_dir:
        try:
            os.makedirs(args.output_dir, exist_ok=True)
        except OSError as e:
            raise InputError(
                f"--output-dir {args.output_dir}: cannot create ({e.strerror})"
            ) from None
    write_image(path, rgb, inputs=inputs, jpeg_quality=args.jpeg_quality)


def _item_error(error: Exception, image_path: str, args) -> str:
    """One line for a failed batch item: ours as it is, anything else with the image's name."""
    if isinstance(error, DeepfillError):
        text = str(error)  # name the pair when the message does not (e.g. a size mismatch)
        return text if os.path.basename(image_path) in text else f"{image_path}: {text}"
    # Loaded on use: it imports TensorFlow, which --help and the input checks must not wait for.
    import argparse as _argparse

    if verbose_requested(args):
        import traceback

        traceback.print_exception(error)
    return describe_unexpected("inpaint", _argparse.Namespace(image=image_path), error)


def run(args) -> int:
    # Loaded on use: it imports TensorFlow, which --help and the input checks must not wait for.
    from deepfill_tf.inference.hd_strategy import BatchedInpainter, inpaint_hd
    from deepfill_tf.inference.loading import load_inpainter

    started = time.monotonic()
    jobs = getattr(args, "jobs", None) or _jobs(args)
    batch = _is_batch(args)
    inpainter = load_inpainter(args.checkpoint, args.model, **family_options(args))
    options = hd_options(args, inpainter.family)
    apply_attention_budget(args, inpainter)
    infer = BatchedInpainter(inpainter)
    extras = {
        name: read_image(path, not args.ignore_exif) for name, path in family_inputs(args).items()
    }

    failures = 0
    for image_path, mask_path, output_path in jobs:
        try:
            exif = not args.ignore_exif
            image = read_image(image_path, exif)
            mask = read_mask(mask_path, args.mask_channel, args.mask_threshold, exif)
            warning = mask_warning(mask_path, mask, args.mask_channel, args.mask_threshold, exif)
            if hasattr(inpainter, "check"):  # sizes and inputs, before any crop
                inpainter.check(image, mask, extras)
            if inpainter.resizes_output:
                # The original's own output size (GLCIC --original-preprocess: inpaint.lua's
                # long side <= --maxdim, multiples of 4): the whole image, no strategy.
                result = inpainter(image, mask, **extras)
                if result.shape != image.shape:
                    print(
                        f"deepfill-tf inpaint: note: the output is {result.shape[1]}x"
                        f"{result.shape[0]} (W x H), the size the original runs at",
                        file=sys.stderr,
                    )
            else:
                done = inpaint_hd(infer, image, mask, options, **extras)
                print_notes(done.notes)
                result = done.image
            if warning:  # after the checks: an error is the one line of a bad run
                print(f"deepfill-tf inpaint: warning: {warning}", file=sys.stderr)
            _write_output(
                args,
                output_path,
                result,
                (image_path, mask_path, *family_inputs(args).values()),
            )
        except Exception as e:  # batch: report the item, go on with the next one
            if not batch:
                raise
            failures += 1
            message = _item_error(e, image_path, args)
            print(f"deepfill-tf inpaint: error: {message} (skipped)", file=sys.stderr)
            continue
        if batch:
            print(f"{image_path} -> {output_path}")
    if batch:
        print(f"{len(jobs) - failures} inpainted, {failures} failed")
    elif not args.quiet:
        height, width = image.shape[:2]
        seconds = time.monotonic() - started
        print(f"wrote {jobs[0][2]}: {width}x{height} (W x H) in {seconds:.1f} s")
    return 1 if failures else 0
