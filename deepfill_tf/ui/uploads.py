"""Decode uploaded image bytes with a pixel limit; the server never opens a client's path.

The conversions are ``deepfill-tf inpaint``'s defaults (``deepfill_tf.inference.io``), so an
uploaded file gives the arrays the CLI would read from the same file: the EXIF orientation
applied, images (H, W, 3) uint8 RGB, masks (H, W) float32 with 1 = hole where the first channel
as OpenCV reads it (blue) is > 127.5.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from deepfill_tf.errors import InputError
from deepfill_tf.inference.io import to_rgb_uint8


class PixelLimitError(InputError):
    """An uploaded image has more pixels than the server accepts."""


class NotAnImageError(InputError):
    """An upload is empty, not an image, or cannot be decoded."""


def decode_image(data: bytes, field: str, max_pixels: int) -> np.ndarray:
    """Decode the bytes of the form field ``field`` as (H, W, 3) uint8 RGB.

    The size is read from the header and checked against ``max_pixels`` before the pixels are
    decoded, so a huge (or decompression-bomb) file costs no memory.

    Raises:
      NotAnImageError: empty, not an image, or truncated.
      PixelLimitError: more than ``max_pixels`` pixels.
    """
    if not data:
        raise NotAnImageError(f"{field}: the uploaded file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise PixelLimitError(
                    f"{field}: {width}x{height} is {width * height} pixels; this server accepts"
                    f" at most {max_pixels} (start it with a larger --max-pixels, or scale the"
                    " image down)"
                )
            image.load()
            image = ImageOps.exif_transpose(image)  # as read_image: what a viewer shows
    except PixelLimitError:
        raise
    except Image.DecompressionBombError:
        raise PixelLimitError(
            f"{field}: the image has far more than the {max_pixels} pixels this server accepts"
        ) from None
    except UnidentifiedImageError:
        raise NotAnImageError(f"{field}: not an image file (or an unsupported format)") from None
    except (OSError, SyntaxError, ValueError, KeyError, TypeError) as e:  # KeyError: bad EXIF
        raise NotAnImageError(f"{field}: cannot decode image ({e})") from None
    return to_rgb_uint8(image)


def decode_mask(data: bytes, field: str, max_pixels: int) -> np.ndarray:
    """Decode a mask upload as (H, W) float32, 1 = hole (white), as ``read_mask``."""
    rgb = decode_image(data, field, max_pixels)
    return (rgb[..., 2] > 127.5).astype(np.float32)
