"""``deepfill-tf export``: a SavedModel that TF Serving runs as it is (or TFLite / ONNX).

deepfill-tf export --checkpoint CKPT --output EXPORT_DIR [--version N] [--model ...]
    writes EXPORT_DIR/<N>/ (saved_model.pb, variables/, fingerprint.pb), N = 1 by default;
    point TF Serving's model base path at EXPORT_DIR.
deepfill-tf export --checkpoint CKPT --format tflite --output model.tflite [--size HxW]
deepfill-tf export --checkpoint CKPT --format onnx --output model.onnx --size HxW
    write one file with the single-image uint8 computation (or name what blocks it).
"""

from __future__ import annotations

import argparse
import re

from deepfill_tf.cli.families import add_family_arguments
from deepfill_tf.cli.hd_options import add_export_hd_arguments, export_hd_crop


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)x(\d+)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"expected HxW such as 256x256, got {text!r}")
    return int(match.group(1)), int(match.group(2))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="checkpoint directory or prefix")
    parser.add_argument(
        "--output",
        required=True,
        help="saved_model: the model's base folder (the version folder is written inside it); "
        "tflite / onnx: the file to write",
    )
    parser.add_argument(
        "--version",
        type=_positive_int,
        default=1,
        help="saved_model: version folder name, a positive integer (default 1)",
    )
    add_family_arguments(parser, "export")
    parser.add_argument(
        "--format",
        default="saved_model",
        choices=["saved_model", "tflite", "onnx"],
        help="saved_model (TF Serving, default), tflite, or onnx (needs tf2onnx)",
    )
    parser.add_argument(
        "--size",
        type=_size,
        help="tflite / onnx: fixed input size HxW (tflite default: dynamic; onnx: required)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing version folder / file"
    )
    parser.add_argument(
        "--original-postprocess",
        action="store_true",
        help="bake in the original test.py post-processing (truncate the whole composite)",
    )
    add_export_hd_arguments(parser)


def run(args) -> int:
    # Loaded on use: it imports TensorFlow, which --help and the input checks must not wait for.
    from deepfill_tf.export.saved_model import export_saved_model, load_exportable_generator

    hd_crop = export_hd_crop(args)
    print(f"loading {args.checkpoint}", flush=True)
    generator, _ = load_exportable_generator(args.checkpoint, args.model)
    what = {"tflite": "a TFLite model", "onnx": "an ONNX model"}.get(args.format, "a SavedModel")
    print(f"tracing the model and writing {what} (this can take a minute)", flush=True)
    common = {"overwrite": args.overwrite, "original_postprocess": args.original_postprocess}
    height, width = args.size or (None, None)
    if args.format == "tflite":
        from deepfill_tf.export.tflite import export_tflite

        path = export_tflite(generator, args.output, height=height, width=width, **common)
    elif args.format == "onnx":
        from deepfill_tf.export.onnx_export import export_onnx

        path = export_onnx(generator, args.output, height=height, width=width, **common)
    else:
        path = export_saved_model(
            generator, args.output, version=args.version, hd_crop=hd_crop, **common
        )
    print(path)
    return 0
