"""Small tensor ops shared by layers, models and pipelines."""

from deepfill_tf.ops.resize import resize_bilinear_align_corners, resize_nearest_align_corners

__all__ = ["resize_bilinear_align_corners", "resize_nearest_align_corners"]
