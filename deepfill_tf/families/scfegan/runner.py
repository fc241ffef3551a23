"""SC-FEGAN inference on a checkpoint in the original layout (``SCFEGANInpainter``).

Inputs are prepared as the original demo does (``inputs.prepare_scfegan_batch``: BGR [-1, 1]
incomplete image, binary sketch, colour strokes, mask, binary noise from a seed). Images whose
sides are multiples of 128 run at their own size; others are resized to the demo's 512x512
(image bicubic, mask / sketch / colour nearest), and the result is resized back (bicubic)
before compositing, so the output always has the input's size. Original code:
run-youngjoo/SC-FEGAN (``demo.py``, ``model.py``).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from PIL import Image

from deepfill_tf.errors import InputError
from deepfill_tf.families.scfegan.inputs import (
    SIZE_MULTIPLE,
    composite_scfegan_output,
    prepare_scfegan_batch,
)
from deepfill_tf.inference.inpainter import Inpainter

DEMO_SIZE = 512


def _resize(array: np.ndarray, size: tuple[int, int], resample) -> np.ndarray:
    """Resize a uint8 (H, W[, 3]) array to (height, width)."""
    return np.asarray(Image.fromarray(array).resize((size[1], size[0]), resample))


class SCFEGANInpainter(Inpainter):
    """Inpaint with an SC-FEGAN generator: ``inpainter(image, hole_mask, sketch=, color=)``.

    Args:
        generator: a loaded ``SCFEGANGenerator``.
        seed: seed of the demo's noise input (None: fresh noise on every call, as the demo).
        original_postprocess: at native sizes, composite as the demo (its float round trip
            of the known pixels) instead of copying them unchanged.
    """

    def __init__(self, generator, *, family=None, spec=None, **options):
        super().__init__(generator, family=family, spec=spec, **options)
        self._run = tf.function(lambda x: generator(x), reduce_retracing=True)

    def __call__(self, image, hole_mask, guide=None, **extras) -> np.ndarray:
        if guide is not None:
            raise InputError("--guide is a DeepFill v2 input; SC-FEGAN takes --sketch and --color")
        extras = {k: v for k, v in extras.items() if v is not None}
        self.check(image, hole_mask, extras)
        sketch_file, color_file = extras.get("sketch"), extras.get("color")
        h, w = image.shape[:2]
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
        seed = self.options["seed"]
        batch = prepare_scfegan_batch(net_image, net_mask > 127, sketch, color, seed=seed)
        generated = self._run(tf.constant(batch)).numpy()
        if native:
            keep = None if self.options["original_postprocess"] else image
            return composite_scfegan_output(generated, batch, keep)[0]
        # Back to the input size: resize the prediction, keep the known pixels of the input.
        predicted = composite_scfegan_output(generated, batch, net_image)[0]
        predicted = _resize(predicted, (h, w), Image.BICUBIC)
        return np.where(hole_mask[..., None] > 0.5, predicted, image)
