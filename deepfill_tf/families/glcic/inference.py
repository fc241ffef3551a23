"""The TensorFlow half of the GLCIC family: loading, prediction and the host-side modes.

Inference as ``inpaint.lua`` (satoshiiizuka/siggraph2017_inpainting): RGB in [0, 1]
(uint8 * float32(1/255)), minus the dataset mean, hole set to 0, the mask as 4th channel;
the sigmoid output (RGB [0, 1]) replaces the hole.

Three ways to run, chosen by the family's options:

* default: the generic pipeline (reflect-pad to multiples of 4, crop back; known pixels
  unchanged, hole pixels rounded) — the same graph ``deepfill-tf export`` writes;
* ``postprocess``: the network composite, then OpenCV's fast marching + Poisson blending as
  ``inpaint.lua --postproc`` (host side; not part of an exported SavedModel);
* ``original_preprocess``: ``inpaint.lua``'s sizes: long side capped at ``maxdim``, resized
  to multiples of 4 (torch/image bilinear), mask >= 0.2; the output has that size and is
  written as ``image.save`` does (truncation), or post-processed.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from deepfill_tf.convert.torch7 import read_t7
from deepfill_tf.errors import InputError
from deepfill_tf.families.glcic import postprocess, preprocess
from deepfill_tf.inference.inpainter import Inpainter
from deepfill_tf.models.glcic import GLCICCompletionNet, load_glcic_t7, read_glcic_t7
from deepfill_tf.registry import ModelSpec


def build_generator(spec: ModelSpec) -> GLCICCompletionNet:
    """A built, unloaded completion network for ``spec`` (``cnum``)."""
    model = GLCICCompletionNet(cnum=int(spec.cnum))
    model.build((None, None, None, 4))
    return model


def is_glcic_file(path: str) -> bool:
    """True when the .t7 root is a ``{model, mean}`` table (a GLCIC file)."""
    root = read_t7(path)
    return isinstance(root, dict) and "model" in root


def load_t7(path: str):
    """``(generator, ModelSpec)`` from a released ``completionnet_*.t7``."""
    read_glcic_t7(path)  # a clear error first if it is not a GLCIC file
    model = load_glcic_t7(path)
    return model, ModelSpec("glcic", {"cnum": model.cnum})


def predict(generator, image, hole_mask, inputs):
    """``Family.predict``: (B, H, W, 3) RGB [0, 255] + (B, H, W, 1) mask -> the sigmoid
    output on the [0, 255] scale. ``image * float32(1/255)`` as torch/image loads a PNG."""
    x = image * tf.constant(1.0 / 255.0, tf.float32)
    mask = tf.cast(hole_mask > 0.5, tf.float32)
    raw = generator(generator.prepare_input(x, mask), training=False)
    return raw * 255.0


class GLCICInpainter(Inpainter):
    """``Inpainter`` with GLCIC's host-side modes (see the module docstring).

    Options: ``postprocess`` (bool), ``original_preprocess`` (bool), ``maxdim`` (int, 600).
    Without the first two it is the generic ``Inpainter``.
    """

    def __init__(self, generator, **kwargs):
        super().__init__(generator, **kwargs)
        self._network = tf.function(
            lambda x: generator(x, training=False),
            input_signature=[tf.TensorSpec([None, None, None, 4], tf.float32)],
        )

    _outer_shape: tuple[int, int] | None = None

    def check(self, image, hole_mask, extras) -> None:
        """The base checks; also remembers the size the caller (the CLI, before any
        ``--hd-strategy`` crop) asked about, see ``__call__``."""
        super().check(image, hole_mask, extras)
        self._outer_shape = tuple(np.shape(image)[:2])

    def batch(self, images, hole_masks, **extras):
        """Equal-size crops of ``--hd-strategy crop`` (``inference.hd_strategy``): one at a
        time through ``__call__`` so the host-side steps apply to each."""
        return np.stack(
            [
                self(image, mask, **{k: v[n] for k, v in extras.items()})
                for n, (image, mask) in enumerate(zip(images, hole_masks, strict=True))
            ]
        )

    @property
    def resizes_output(self) -> bool:
        return bool(self.options.get("original_preprocess"))

    @property
    def host_side(self) -> bool:
        return bool(self.options.get("postprocess") or self.options.get("original_preprocess"))

    def complete_float(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(H, W, 3) float32 [0, 1] + (H, W) {0, 1}, H and W multiples of 4 -> the composite
        ``image * (1 - M) + output * M`` (float32, RGB [0, 1])."""
        mean = np.asarray(self.generator.dataset_mean, np.float32)
        x = preprocess.network_input(image, mask, mean)
        raw = self._network(tf.constant(x[None]))[0].numpy()
        return preprocess.composite(image, raw, mask)

    def __call__(self, image: np.ndarray, hole_mask: np.ndarray, **extras) -> np.ndarray:
        """(H, W, 3) uint8 RGB + (H, W) float32 mask (1 = hole) -> uint8 RGB.

        The output has the input's size except with ``original_preprocess`` (then the size
        ``inpaint.lua`` runs at, see ``preprocess.original_sizes``).

        Raises:
          InputError: sizes differ, image too small, or an extra input was given.
        """
        if not self.host_side:
            return super().__call__(image, hole_mask, **extras)
        extras = {k: v for k, v in extras.items() if v is not None}
        outer, self._outer_shape = self._outer_shape, None
        Inpainter.check(self, image, hole_mask, extras)
        mask = np.asarray(hole_mask, np.float32)
        if self.options.get("original_preprocess"):
            if outer is not None and outer != tuple(image.shape[:2]):
                raise InputError(
                    "--original-preprocess runs the whole image as inpaint.lua does (long side"
                    " capped at --maxdim): add --hd-strategy original for images this large"
                )
            maxdim = int(self.options.get("maxdim") or 600)
            img, m = preprocess.original_preprocess(
                preprocess.image_to_float(image), mask, maxdim=maxdim
            )
            comp = self.complete_float(img, m)
            if not self.options.get("postprocess") or not m.any():
                return postprocess.to_u8_truncated(comp)  # what image.save writes
            return postprocess.original_postprocess(comp, m)
        m = (mask > 0.5).astype(np.float32)
        img, pm, (h, w) = preprocess.pad_to_multiple(preprocess.image_to_float(image), m)
        comp = self.complete_float(img, pm)[:h, :w]
        if not m.any():
            return np.asarray(image, np.uint8).copy()
        out = postprocess.original_postprocess(comp, m)
        # Known pixels unchanged by default (the blend only rewrites the hole; this makes sure).
        known = m == 0
        out[known] = np.asarray(image, np.uint8)[known]
        return out


__all__ = ["GLCICInpainter", "build_generator", "load_t7", "predict"]
