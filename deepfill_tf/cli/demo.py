"""``deepfill-tf demo``: inpaint the bundled example with the bundled demo model.

Writes ``<output-dir>/<name>_inpainted.png`` and ``<name>_side_by_side.png`` (input with the
hole blanked | mask | output) and prints the hole PSNR of the model against a flat fill (the
mean colour of the known pixels), so one sees that the model does better than filling flat.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from deepfill_tf.inference.io import read_image, read_mask, write_png

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        default=os.path.join(REPO, "checkpoints", "demo"),
        help="model to run (default: the bundled demo model, DeepFill v2 cnum 12)",
    )
    parser.add_argument(
        "--image",
        default=os.path.join(REPO, "examples", "demo", "coffee.png"),
        help="photo to inpaint (default: the bundled coffee.png, held out of training)",
    )
    parser.add_argument(
        "--mask",
        default=os.path.join(REPO, "examples", "demo", "coffee_mask.png"),
        help="its mask, white = hole (default: the bundled coffee_mask.png)",
    )
    parser.add_argument(
        "--output-dir",
        default="out/demo",
        help="folder for <name>_inpainted.png and <name>_side_by_side.png (default out/demo)",
    )


def hole_psnr(result: np.ndarray, reference: np.ndarray, hole: np.ndarray) -> float:
    """PSNR (dB) over the hole pixels of two uint8 images."""
    diff = result[hole].astype(np.float64) - reference[hole].astype(np.float64)
    mse = float(np.mean(diff**2)) if diff.size else 0.0
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def run(args) -> int:
    # Loaded on use: it imports TensorFlow, which --help and the input checks must not wait for.
    from deepfill_tf.inference.loading import load_inpainter

    image = read_image(args.image)
    mask = read_mask(args.mask)
    inpainter = load_inpainter(args.checkpoint)
    result = inpainter(image, mask)

    hole = mask > 0.5
    flat = image.copy()
    flat[hole] = image[~hole].mean(axis=0).astype(np.uint8) if (~hole).any() else 127
    blanked = image.copy()
    blanked[hole] = 255
    mask_rgb = np.repeat((hole * 255).astype(np.uint8)[..., None], 3, axis=-1)
    gap = np.full((image.shape[0], 4, 3), 255, np.uint8)
    side_by_side = np.concatenate([blanked, gap, mask_rgb, gap, result], axis=1)

    os.makedirs(args.output_dir, exist_ok=True)
    stem = os.path.splitext(os.path.basename(args.image))[0]
    out = os.path.join(args.output_dir, f"{stem}_inpainted.png")
    grid = os.path.join(args.output_dir, f"{stem}_side_by_side.png")
    write_png(out, result)
    write_png(grid, side_by_side)
    print(f"model: {inpainter.spec.describe()} from {args.checkpoint}")
    print(f"wrote {out}")
    print(f"wrote {grid}  (input | mask | output)")
    print(
        f"hole PSNR: model {hole_psnr(result, image, hole):.2f} dB, "
        f"flat fill {hole_psnr(flat, image, hole):.2f} dB"
    )
    return 0
