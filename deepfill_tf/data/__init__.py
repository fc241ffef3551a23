"""tf.data training input: .flist files, folders, globs and TFDS, decoded as the original
(BGR, cv2-style resize or random crop), batched as float32 BGR in [-1, 1]."""

from deepfill_tf.data.flist import edge_path, read_flist
from deepfill_tf.data.folder import IMAGE_EXTENSIONS, list_images
from deepfill_tf.data.images import (
    augment,
    crop_window,
    decode_bgr,
    fit_to_shape,
    normalize_bgr,
    resize_uint8,
    to_bgr3,
)
from deepfill_tf.data.pipeline import make_dataset, resolve_source
from deepfill_tf.data.tfds import parse_tfds_name, tfds_images

__all__ = [
    "IMAGE_EXTENSIONS",
    "augment",
    "crop_window",
    "decode_bgr",
    "edge_path",
    "fit_to_shape",
    "list_images",
    "make_dataset",
    "normalize_bgr",
    "parse_tfds_name",
    "read_flist",
    "resize_uint8",
    "resolve_source",
    "tfds_images",
    "to_bgr3",
]
