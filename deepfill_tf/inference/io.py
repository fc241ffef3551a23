"""Reading images and masks, and writing PNGs atomically.

Images are returned as uint8 RGB arrays (H, W, 3) whatever the file holds: grayscale,
grayscale + alpha, RGBA (alpha dropped, as OpenCV's imread does), palette and 16-bit files are
converted. Every failure is an ``InputError`` with a one-line message naming the file.
"""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from deepfill_tf.errors import InputError
from deepfill_tf.fileio import write_atomic


def _open(path: str) -> Image.Image:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory, not an image")
    try:
        with open(path, "rb") as f:
            data = f.read()
        image = Image.open(io.BytesIO(data))
        image.load()  # decode now so truncated files fail here
    except UnidentifiedImageError:
        raise InputError(f"{path}: not an image file (or an unsupported format)") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise InputError(f"{path}: cannot decode image ({e})") from None
    return image


def to_rgb_uint8(image: Image.Image) -> np.ndarray:
    """Convert a PIL image of any common mode to a (H, W, 3) uint8 RGB array."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit (or 32-bit int) grayscale: keep the top 8 bits like OpenCV's 8-bit imread.
        array = np.asarray(image, dtype=np.uint32)
        shift = 8 if array.max(initial=0) <= 0xFFFF else 24
        gray = (array >> shift).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if image.mode == "F":
        gray = np.clip(np.asarray(image), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def read_image(path: str) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB."""
    return to_rgb_uint8(_open(path))


def read_mask(path: str) -> np.ndarray:
    """Read a mask file as a (H, W) float32 array, 1 = hole.

    As the original test.py: the file is read as OpenCV would (colour, BGR order) and a pixel is
    a hole when its FIRST channel is > 127.5, i.e. the blue channel of a colour file, the value
    of a grayscale file. White marks the hole.
    """
    rgb = read_image(path)
    return (rgb[..., 2] > 127.5).astype(np.float32)


def encode_png(rgb: np.ndarray) -> bytes:
    """Encode a (H, W, 3) or (H, W) uint8 array as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buffer, format="PNG")
    return buffer.getvalue()


def write_bytes_atomic(path: str, data: bytes, *, inputs=()) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename
    (``deepfill_tf.fileio.write_atomic``): readers never see a partial file, an existing file is
    replaced only once the new one is complete, and ``path`` must not resolve to any of
    ``inputs``.

    Raises:
      InputError: the folder does not exist, ``path`` is a folder or an input, or the write
        fails (one line naming ``path`` and the cause).
    """
    write_atomic(path, data, inputs=inputs)


def write_png(path: str, rgb: np.ndarray) -> None:
    """Write a (H, W, 3) uint8 RGB array as a PNG file, atomically."""
    write_bytes_atomic(path, encode_png(rgb))
