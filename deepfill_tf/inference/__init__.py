"""Inference for every registered family: load a checkpoint, inpaint uint8 images.

    from deepfill_tf.inference import load_inpainter
    inpainter = load_inpainter("path/to/checkpoint")        # any family, detected
    result = inpainter(image, hole_mask)  # (H, W, 3) uint8 RGB, (H, W) float32 1 = hole

The names below are imported on first use (PEP 562), so ``deepfill_tf.inference.io`` (image
files, no TensorFlow) can be used before TensorFlow is loaded.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Inpainter": "deepfill_tf.inference.inpainter",
    "inpaint_uint8": "deepfill_tf.inference.pipeline",
    "load_generator": "deepfill_tf.inference.loading",
    "load_inpainter": "deepfill_tf.inference.loading",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
