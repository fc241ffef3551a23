"""``Inpainter``: a loaded generator with its inpainting function traced once.

Used by ``deepfill-tf inpaint`` (single and batch mode) and by the demo. The traced function
has dynamic batch/height/width, so a batch run of images of different sizes traces once.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from deepfill_tf.errors import InputError
from deepfill_tf.inference.pipeline import MIN_SIDE, inpaint_uint8


class Inpainter:
    """Inpaint uint8 RGB images with a DeepFill generator.

    Args:
      generator: a built DeepFill generator with loaded weights.
      original_postprocess: reproduce the original test.py post-processing bit for bit.
    """

    def __init__(self, generator, *, original_postprocess: bool = False):
        self.generator = generator
        self.guided = bool(getattr(generator, "guided", False))
        image_spec = tf.TensorSpec([None, None, None, 3], tf.uint8)
        mask_spec = tf.TensorSpec([None, None, None, 1], tf.float32)

        def run(image, hole_mask, *guide):
            return inpaint_uint8(
                generator,
                image,
                hole_mask,
                guide[0] if guide else None,
                original_postprocess=original_postprocess,
            )

        signature = [image_spec, mask_spec] + ([image_spec] if self.guided else [])
        self._fn = tf.function(run, input_signature=signature)

    def __call__(
        self, image: np.ndarray, hole_mask: np.ndarray, guide: np.ndarray | None = None
    ) -> np.ndarray:
        """Inpaint one image.

        Args:
          image: (H, W, 3) uint8 RGB.
          hole_mask: (H, W) float32, 1 = hole.
          guide: (H, W, 3) uint8 RGB edge image (guided v2 only).

        Returns:
          (H, W, 3) uint8 RGB.

        Raises:
          InputError: sizes differ, image too small, guide missing or not expected.
        """
        h, w = image.shape[:2]
        if hole_mask.shape[:2] != (h, w):
            raise InputError(
                f"mask is {hole_mask.shape[1]}x{hole_mask.shape[0]} but the image is {w}x{h}"
            )
        if min(h, w) < MIN_SIDE:
            raise InputError(
                f"image is {w}x{h}; the smallest size supported is {MIN_SIDE}x{MIN_SIDE}"
            )
        args = [image[None], hole_mask[None, :, :, None].astype(np.float32)]
        if self.guided:
            if guide is None:
                raise InputError(
                    "this is a guided DeepFill v2 model: give an edge image with --guide"
                )
            if guide.shape[:2] != (h, w):
                raise InputError(
                    f"guide is {guide.shape[1]}x{guide.shape[0]} but the image is {w}x{h}"
                )
            args.append(guide[None])
        elif guide is not None:
            raise InputError("--guide was given but the model is not a guided DeepFill v2 model")
        return self._fn(*args)[0].numpy()
