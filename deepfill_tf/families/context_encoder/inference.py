"""The TensorFlow half of the Context Encoder family: loading, prediction, input checks.

As ``demo.lua`` of pathak22/context-encoder: RGB in [-1, 1] (``x * 2 - 1``); a centre-region
model sees the 128x128 image with rows/cols [32 + overlap, 96 - overlap) filled with the
mean colour and predicts the 64x64 centre; a random-region model sees the image with its
hole filled and predicts all 128x128 pixels. Only 128x128 images are taken, and a centre
model only completes holes inside its filled centre region.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from deepfill_tf.errors import InputError
from deepfill_tf.inference.inpainter import Inpainter
from deepfill_tf.models.context_encoder import (
    FILL_COLOUR_255,
    INPUT_SIZE,
    OUTPUT_SIZE,
    ContextEncoderGenerator,
    fill_centre,
    load_context_encoder_t7,
)
from deepfill_tf.registry import ModelSpec

DEFAULT_OVERLAP = 4  # overlapPred of the README's demo and training commands


def spec_of(model: ContextEncoderGenerator) -> ModelSpec:
    return ModelSpec(
        "context_encoder",
        {
            "nef": model.nef,
            "ngf": model.ngf,
            "bottleneck": model.bottleneck,
            "region": model.region,
        },
    )


def build_generator(spec: ModelSpec) -> ContextEncoderGenerator:
    model = ContextEncoderGenerator(
        nef=spec.nef, ngf=spec.ngf, bottleneck=spec.bottleneck, region=spec.region
    )
    model.build((None, INPUT_SIZE, INPUT_SIZE, 3))
    return model


def load_t7(path: str):
    model = load_context_encoder_t7(path)
    return model, spec_of(model)


def predict(generator, image, hole_mask, inputs):
    """(B, 128, 128, 3) RGB [0, 255] -> the prediction on the [0, 255] scale, (B, 128, 128, 3):
    a centre model's 64x64 output placed at [32, 96) over the input (the pipeline keeps the
    hole pixels only). The overlap is the inpainter's ``overlap`` option (default 4), kept
    on the generator as ``inference_overlap``."""
    overlap = int(getattr(generator, "inference_overlap", DEFAULT_OVERLAP))
    x = tf.ensure_shape(image, [None, INPUT_SIZE, INPUT_SIZE, 3])
    x = x * tf.constant(1.0 / 255.0, tf.float32) * 2.0 - 1.0
    mask = tf.cast(hole_mask > 0.5, tf.float32)
    fill = tf.reshape(fill_colour(), (1, 1, 1, 3))
    if generator.region == "random":
        return (generator(x * (1.0 - mask) + fill * mask, training=False) + 1.0) * 127.5
    # Trained with rows/cols [32 + overlap, 96 - overlap) filled; hole pixels in the overlap
    # ring are filled too, so the network never sees them.
    centre = generator(fill_centre(x, overlap) * (1.0 - mask) + fill * mask, training=False)
    q = INPUT_SIZE // 4
    pad = [[0, 0], [q, INPUT_SIZE - q - OUTPUT_SIZE], [q, INPUT_SIZE - q - OUTPUT_SIZE], [0, 0]]
    region = tf.pad(tf.ones_like(centre[..., :1]), pad)
    return (x * (1.0 - region) + tf.pad(centre, pad) + 1.0) * 127.5


def fill_colour():
    """(3,) float32: ``demo.lua``'s fill colour 2 * (117, 104, 123) / 255 - 1."""
    return tf.constant([2.0 * c / 255.0 - 1.0 for c in FILL_COLOUR_255], tf.float32)


def supported_region() -> tuple[int, int]:
    """[lo, hi) rows/cols a centre model predicts (and so can complete): the 64x64 centre."""
    return INPUT_SIZE // 4, INPUT_SIZE // 4 + OUTPUT_SIZE


class ContextEncoderInpainter(Inpainter):
    """``Inpainter`` that says what a Context Encoder cannot do before running it."""

    def __init__(self, generator, **kwargs):
        super().__init__(generator, **kwargs)
        generator.inference_overlap = int(self.options.get("overlap", DEFAULT_OVERLAP))

    def check(self, image: np.ndarray, hole_mask: np.ndarray, extras: dict) -> None:
        h, w = image.shape[:2]
        if (h, w) != (INPUT_SIZE, INPUT_SIZE):
            raise InputError(
                f"the Context Encoder takes 128x128 images, this one is {w}x{h}: crop or resize"
                " it to 128x128 first"
            )
        super().check(image, hole_mask, extras)
        if self.generator.region == "random":
            return
        lo, hi = supported_region()
        rows, cols = np.nonzero(np.asarray(hole_mask) > 0.5)
        outside = rows.size and (
            rows.min() < lo or cols.min() < lo or rows.max() >= hi or cols.max() >= hi
        )
        if outside:
            raise InputError(
                f"this centre-region Context Encoder completes only the 64x64 centre (rows and"
                f" columns {lo}..{hi - 1}) of a 128x128 image; the mask has hole pixels in rows"
                f" {rows.min()}..{rows.max()}, columns {cols.min()}..{cols.max()}"
            )
