"""Reading images and masks, and writing images atomically.

Images are returned as uint8 RGB arrays (H, W, 3) whatever the file holds: grayscale,
grayscale + alpha, RGBA (alpha dropped, as OpenCV's imread does), palette and 16-bit files are
converted. The EXIF orientation of a photo is applied (as OpenCV's imread does), so arrays are
what an image viewer displays; ``exif=False`` reads the stored pixels. Every failure is an
``InputError`` with a one-line message naming the file.
"""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from deepfill_tf.errors import InputError
from deepfill_tf.fileio import write_atomic

# Output extensions and the format each writes.
OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
# Mask channels ``read_mask`` can read; "blue" is the original rule (OpenCV's first channel).
MASK_CHANNELS = ("blue", "green", "red", "alpha", "gray", "any")
_CHANNEL_INDEX = {"red": 0, "green": 1, "blue": 2}


def _open(path: str, exif: bool = True) -> Image.Image:
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
    except Image.DecompressionBombError as e:
        raise InputError(
            f"{path}: image too large to decode safely ({e.args[0].split('(')[0].strip()})"
        ) from None
    except MemoryError:
        raise InputError(f"{path}: image too large for the memory available") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise InputError(f"{path}: cannot decode image ({e})") from None
    if exif:
        try:
            image = ImageOps.exif_transpose(image)
        except Exception as e:  # a corrupt EXIF block must not hide the pixels
            raise InputError(
                f"{path}: cannot apply its EXIF orientation ({e}); try --ignore-exif"
            ) from None
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


def read_image(path: str, exif: bool = True) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB (EXIF orientation applied unless ``exif`` is
    False)."""
    return to_rgb_uint8(_open(path, exif))


def _channel(image: Image.Image, channel: str) -> np.ndarray:
    """(H, W) float32 values in [0, 255] of one channel of a mask file."""
    if channel == "alpha":
        if "A" not in image.getbands() and "transparency" not in image.info:
            return np.full(image.size[::-1], 255.0, np.float32)  # opaque everywhere
        return np.asarray(image.convert("RGBA"), np.float32)[..., 3]
    rgb = to_rgb_uint8(image).astype(np.float32)
    if channel == "gray":
        return rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    if channel == "any":
        return rgb.max(axis=-1)
    return rgb[..., _CHANNEL_INDEX[channel]]


def read_mask(
    path: str, channel: str = "blue", threshold: float = 127.5, exif: bool = True
) -> np.ndarray:
    """Read a mask file as a (H, W) float32 array, 1 = hole.

    As the original test.py by default: the file is read as OpenCV would (colour, BGR order)
    and a pixel is a hole when its FIRST channel is > 127.5, i.e. the blue channel of a colour
    file, the value of a grayscale file. White marks the hole.

    Args:
      path: the mask file.
      channel: one of ``MASK_CHANNELS``: "blue" (the original rule), "green", "red", "alpha"
        (opaque = hole), "gray" (luma), "any" (the largest of R, G, B).
      threshold: a pixel is a hole when the channel's value (0..255) is > ``threshold``.
      exif: apply the EXIF orientation (as ``read_image``).
    """
    if channel not in MASK_CHANNELS:
        raise InputError(f"mask channel {channel!r}: expected one of {', '.join(MASK_CHANNELS)}")
    return (_channel(_open(path, exif), channel) > threshold).astype(np.float32)


def mask_warning(
    path: str, hole: np.ndarray, channel: str = "blue", threshold: float = 127.5, exif: bool = True
) -> str | None:
    """Why a mask will do nothing, or None: no hole pixel, or the hole is only in a channel the
    rule does not read (a red-on-black mask, a hole drawn in the alpha channel).

    Args:
      path: the mask file (re-read to look at its other channels).
      hole: what ``read_mask(path, channel, threshold)`` returned, (H, W) 1 = hole.

    Returns:
      one line saying what was read and how to fix the file or the options, or None.
    """
    if hole.any():
        return None
    image = _open(path, exif)
    read = f"no pixel of its {channel} channel is > {threshold:g}"
    for other in ("red", "green", "blue", "alpha"):
        if other == channel:
            continue
        values = _channel(image, other)
        if other == "alpha" and values.min() == values.max():
            continue  # no real alpha channel
        if (values > threshold).any() and not (values > threshold).all():
            return (
                f"{path}: mask has no hole: {read}, but its {other} channel marks "
                f"{int((values > threshold).sum())} pixels; use --mask-channel {other}, or paint "
                "the hole white on black"
            )
    return f"{path}: mask has no hole: {read}; the output equals the input (paint the hole white)"


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


def write_png(path: str, rgb: np.ndarray, *, inputs=()) -> None:
    """Write a (H, W, 3) uint8 RGB array as a PNG file, atomically."""
    write_bytes_atomic(path, encode_png(rgb), inputs=inputs)


def output_format(path: str) -> str:
    """The format ``write_image`` writes for ``path``'s extension ("PNG", "JPEG", "WEBP").

    Raises:
      InputError: another extension (naming the ones accepted).
    """
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in OUTPUT_FORMATS:
        raise InputError(
            f"{path}: unsupported output extension {ext or '(none)'!r}; use "
            + ", ".join(OUTPUT_FORMATS)
        )
    return OUTPUT_FORMATS[ext]


def encode_image(rgb: np.ndarray, fmt: str, jpeg_quality: int = 95) -> bytes:
    """Encode (H, W, 3) uint8 RGB as PNG, JPEG (``jpeg_quality``, 4:4:4) or lossless WebP."""
    buffer = io.BytesIO()
    image = Image.fromarray(np.ascontiguousarray(rgb))
    if fmt == "JPEG":
        image.save(buffer, format="JPEG", quality=int(jpeg_quality), subsampling=0)
    elif fmt == "WEBP":
        image.save(buffer, format="WEBP", lossless=True)
    else:
        image.save(buffer, format=fmt)
    return buffer.getvalue()


def write_image(path: str, rgb: np.ndarray, *, inputs=(), jpeg_quality: int = 95) -> None:
    """Write (H, W, 3) uint8 RGB atomically in the format of ``path``'s extension
    (``OUTPUT_FORMATS``); ``path`` must not resolve to any of ``inputs``."""
    write_bytes_atomic(path, encode_image(rgb, output_format(path), jpeg_quality), inputs=inputs)
