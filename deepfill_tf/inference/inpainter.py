"""``Inpainter``: a loaded generator with its inpainting function traced once.

Used by ``deepfill-tf inpaint`` (single and batch mode), the demo, evaluation and the web UI.
The traced function has dynamic batch/height/width, so a batch run of images of different
sizes traces once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from deepfill_tf.errors import InputError
from deepfill_tf.inference.pipeline import inpaint_uint8
from deepfill_tf.ops.gating import exact_native_gating
from deepfill_tf.registry import Family, ModelSpec, family_of


class Inpainter:
    """Inpaint uint8 RGB images with a generator of any registered family.

    Args:
      generator: a built generator with loaded weights.
      family: its family (default: ``family_of(generator)``).
      spec: what the checkpoint held (for messages; optional).
      **options: the family's inference options (``Family.options``), fixed for the traced
        function, e.g. ``original_postprocess=True`` for DeepFill.

    Attributes:
      family, spec, inputs (the extra image inputs this model takes, ``Option`` tuple).
    """

    def __init__(
        self,
        generator,
        *,
        family: Family | None = None,
        spec: ModelSpec | None = None,
        **options: Any,
    ):
        self.generator = generator
        self.family = family or family_of(generator)
        self.spec = spec
        known = {o.name for o in self.family.options}
        unknown = sorted(set(options) - known)
        if unknown:
            raise InputError(
                f"{self.family.label} has no option {unknown[0]!r}"
                f" (its options: {', '.join(sorted(known)) or 'none'})"
            )
        self.options = {o.name: options.get(o.name, o.default) for o in self.family.options}
        self.inputs = tuple(self.family.model_inputs(generator))
        self._fns: dict[tuple[str, ...], Any] = {}

    @property
    def resizes_output(self) -> bool:
        """True when the output is not the input's size (e.g. GLCIC's
        ``--original-preprocess``, which writes ``inpaint.lua``'s size): callers then run the
        whole image as it is, with no large-photo strategy."""
        return False

    @property
    def label(self) -> str:
        return self.spec.label if self.spec is not None else self.family.label

    @property
    def guided(self) -> bool:
        """True if the model takes DeepFill v2's edge guide."""
        return any(o.name == "guide" for o in self.inputs)

    def _fn(self, names: tuple[str, ...]):
        """The traced function for this set of extra inputs (traced once per set)."""
        if names not in self._fns:
            image_spec = tf.TensorSpec([None, None, None, 3], tf.uint8)
            mask_spec = tf.TensorSpec([None, None, None, 1], tf.float32)

            def run(image, hole_mask, *extra):
                # The bit-exact gating kernel (deepfill_tf.ops.gating): this trace is never
                # exported, and gives the exported model's pixels all the same.
                with exact_native_gating():
                    return inpaint_uint8(
                        self.generator,
                        image,
                        hole_mask,
                        family=self.family,
                        inputs=dict(zip(names, extra, strict=True)),
                        **self.options,
                    )

            signature = [image_spec, mask_spec] + [image_spec] * len(names)
            self._fns[names] = tf.function(run, input_signature=signature)
        return self._fns[names]

    def check(self, image: np.ndarray, hole_mask: np.ndarray, extras: dict) -> None:
        """Raise ``InputError`` for sizes or inputs this model cannot take."""
        h, w = image.shape[:2]
        if hole_mask.shape[:2] != (h, w):
            raise InputError(
                f"mask is {hole_mask.shape[1]}x{hole_mask.shape[0]} but the image is {w}x{h}"
            )
        least = int(self.family.min_side)
        if min(h, w) < least:
            raise InputError(f"image is {w}x{h}; the smallest size supported is {least}x{least}")
        taken = {o.name: o for o in self.inputs}
        for name, value in extras.items():
            flag = "--" + name.replace("_", "-")
            if name not in taken:
                raise InputError(f"{flag} was given but the model ({self.label}) does not take it")
            if value.shape[:2] != (h, w):
                raise InputError(
                    f"{name} is {value.shape[1]}x{value.shape[0]} but the image is {w}x{h}"
                )
        for option in self.inputs:
            if option.required and option.name not in extras:
                raise InputError(
                    f"this is a {self.label} model: give {option.flag} ({option.help})"
                )

    def __call__(
        self, image: np.ndarray, hole_mask: np.ndarray, guide: np.ndarray | None = None, **extras
    ) -> np.ndarray:
        """Inpaint one image.

        Args:
          image: (H, W, 3) uint8 RGB.
          hole_mask: (H, W) float32, 1 = hole.
          guide, **extras: the model's extra image inputs by name, (H, W, 3) uint8 RGB
            (``guide`` for a guided DeepFill v2).

        Returns:
          (H, W, 3) uint8 RGB of the input's size, known pixels unchanged.

        Raises:
          InputError: sizes differ, image too small, an input missing or not taken.
        """
        if guide is not None:
            extras["guide"] = guide
        extras = {k: v for k, v in extras.items() if v is not None}
        self.check(image, hole_mask, extras)
        names = tuple(sorted(extras))
        args = [image[None], hole_mask[None, :, :, None].astype(np.float32)]
        args += [extras[n][None] for n in names]
        return self._fn(names)(*args)[0].numpy()
