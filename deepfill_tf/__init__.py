"""deepfill_tf: the DeepFill family of image-inpainting networks in TensorFlow 2 / Keras 3.

Conventions used across the package (see README "Conventions"):

* images are NHWC float32 in **BGR** order scaled to [-1, 1] (``x / 127.5 - 1``), as the
  original DeepFill and SC-FEGAN checkpoints expect;
* masks are (B, H, W, 1) float32 with **1 = hole** (partial convolution converts to NVIDIA's
  1 = valid at its boundary, see ``deepfill_tf.layers.partial_conv``).
"""

__version__ = "0.1.0"
