"""tf.data training input: .flist files, folders, globs and TFDS, decoded as the original
(BGR, cv2-style resize or random crop), batched as float32 BGR in [-1, 1].

Names are imported on first use (PEP 562): ``deepfill_tf.data.flist`` and
``deepfill_tf.data.folder`` (file lists, no TensorFlow) load before TensorFlow does, which
keeps command-line validation and ``--help`` fast.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "IMAGE_EXTENSIONS": "folder",
    "list_images": "folder",
    "edge_path": "flist",
    "read_flist": "flist",
    "augment": "images",
    "crop_window": "images",
    "decode_bgr": "images",
    "fit_to_shape": "images",
    "normalize_bgr": "images",
    "resize_uint8": "images",
    "to_bgr3": "images",
    "make_dataset": "pipeline",
    "resolve_source": "pipeline",
    "parse_tfds_name": "tfds",
    "tfds_images": "tfds",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        module = importlib.import_module(f"deepfill_tf.data.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
