"""``deepfill-tf inpaint --model scfegan``: SC-FEGAN on a checkpoint in the original layout.

Inputs are prepared as the original demo does (``scfegan_inputs.prepare_scfegan_batch``: BGR
[-1, 1] incomplete image, binary sketch, colour strokes, mask, binary noise with ``--seed``).
Images whose sides are multiples of 128 run at their own size; others are resized to the
demo's 512x512 (image bicubic, mask / sketch / colour nearest), and the result is resized
back (bicubic) before compositing, so the output always has the input's size.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from PIL import Image

from deepfill_tf.errors import InputError
from deepfill_tf.inference.scfegan_inputs import composite_scfegan_output, prepare_scfegan_batch

DEMO_SIZE = 512
SIZE_MULTIPLE = 128


def _resize(array: np.ndarray, size: tuple[int, int], resample) -> np.ndarray:
    """Resize a uint8 (H, W[, 3]) array to (height, width)."""
    return np.asarray(Image.fromarray(array).resize((size[1], size[0]), resample))


def make_scfegan_runner(args):
    """Load the generator once; return ``infer(image_rgb_u8, hole_mask, image_path) -> rgb_u8``."""
    from deepfill_tf.inference.io import read_image
    from deepfill_tf.inference.loading import load_generator

    if args.guide:
        raise InputError("--guide is a DeepFill v2 input; SC-FEGAN takes --sketch and --color")
    generator, _ = load_generator(
        args.checkpoint, "scfegan" if args.model == "auto" else args.model
    )
    sketch_file = read_image(args.sketch) if args.sketch else None
    color_file = read_image(args.color) if args.color else None
    run = tf.function(lambda x: generator(x), reduce_retracing=True)

    def infer(image: np.ndarray, hole_mask: np.ndarray, _image_path: str) -> np.ndarray:
        h, w = image.shape[:2]
        for name, extra in (("sketch", sketch_file), ("color", color_file)):
            if extra is not None and extra.shape[:2] != (h, w):
                raise InputError(
                    f"{name} is {extra.shape[1]}x{extra.shape[0]} but the image is {w}x{h}"
                )
        native = h % SIZE_MULTIPLE == 0 and w % SIZE_MULTIPLE == 0
        size = (h, w) if native else (DEMO_SIZE, DEMO_SIZE)
        mask_u8 = (hole_mask > 0.5).astype(np.uint8) * 255
        if native:
            net_image, net_mask, sketch, color = image, mask_u8, sketch_file, color_file
        else:
            net_image = _resize(image, size, Image.BICUBIC)
            net_mask = _resize(mask_u8, size, Image.NEAREST)
            sketch = None if sketch_file is None else _resize(sketch_file, size, Image.NEAREST)
            color = None if color_file is None else _resize(color_file, size, Image.NEAREST)
        if sketch is not None:
            sketch = (sketch.max(axis=-1) > 127).astype(np.uint8)
        batch = prepare_scfegan_batch(net_image, net_mask > 127, sketch, color, seed=args.seed)
        generated = run(tf.constant(batch)).numpy()
        if native:
            return composite_scfegan_output(
                generated, batch, None if args.original_postprocess else image
            )[0]
        # Back to the input size: resize the prediction, keep the known pixels of the input.
        predicted = composite_scfegan_output(generated, batch, net_image)[0]
        predicted = _resize(predicted, (h, w), Image.BICUBIC)
        return np.where(hole_mask[..., None] > 0.5, predicted, image)

    return infer
