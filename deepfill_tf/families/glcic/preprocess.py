"""Host-side preparation of GLCIC inputs, as ``inpaint.lua`` of
satoshiiizuka/siggraph2017_inpainting does it, and this package's size-preserving default.

Conventions: images are (H, W, 3) float32 RGB in [0, 1] (Torch's ``image.load``: uint8 *
float32(1/255)); masks are (H, W) float32, 1 = hole. The network input is (H, W, 4):
RGB minus the dataset mean, 0 in the hole, then the mask (``inpaint.lua`` L77-83).

Two ways to reach a size the network takes (multiples of 4):

* default (:func:`pad_to_multiple`): reflect-pad the bottom/right to multiples of 4, run,
  crop back: the output has the input's size and its known pixels unchanged;
* ``--original-preprocess`` (:func:`original_preprocess`): cap the long side at ``maxdim``
  (600) and resize to the nearest multiples of 4 with torch/image's bilinear ``image.scale``
  (:func:`torch_scale_bilinear`), then binarise the mask at >= 0.2; the output keeps that size.
"""

from __future__ import annotations

import math

import numpy as np

from deepfill_tf.errors import InputError

SIZE_MULTIPLE = 4
MASK_THRESHOLD = 0.2  # inpaint.lua L75: M:ge(0.2) after resizing
DEFAULT_MAXDIM = 600
# The smallest side the completion network takes: two stride-2 layers need >= 4 px; below
# 8 px the dilated layers see nothing but padding. 8 keeps results meaningful.
MIN_SIDE = 8


def image_to_float(image_u8: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) RGB -> float32 [0, 1] exactly as torch/image loads a PNG
    (``img:mul(1/255)`` in float32)."""
    return np.asarray(image_u8, np.uint8).astype(np.float32) * np.float32(1.0 / 255.0)


def mask_to_gray(mask: np.ndarray) -> np.ndarray:
    """A mask image as ``utils.lua`` ``load_image_gray`` reads it: (H, W) float32 in [0, 1].

    Accepts (H, W) or (H, W, C) uint8 / float; an alpha channel is dropped and RGB becomes
    luminance ``0.299 R + 0.587 G + 0.114 B`` (torch/image ``rgb2y``).
    """
    m = np.asarray(mask)
    m = image_to_float(m) if m.dtype == np.uint8 else m.astype(np.float32)
    if m.ndim == 3:
        if m.shape[-1] in (2, 4):  # grey + alpha, RGBA
            m = m[..., :-1]
        if m.shape[-1] == 3:
            m = (0.299 * m[..., 0] + 0.587 * m[..., 1] + 0.114 * m[..., 2]).astype(np.float32)
        else:
            m = m[..., 0]
    if m.ndim != 2:
        raise InputError(f"mask must be (H, W) or (H, W, C), got shape {np.shape(mask)}")
    return m


def _linear_weights(src_len: int, dst_len: int) -> np.ndarray:
    """(dst_len, src_len) weights of torch/image's 1-D bilinear rescale (image.c
    ``scaleLinear_rowcol``): upscaling interpolates with corners aligned
    (scale = (src - 1) / (dst - 1)); downscaling averages the source interval
    [d * s, (d + 1) * s) with fractional end weights (scale = src / dst); equal sizes copy.
    Positions are computed in float32 as the C code does."""
    w = np.zeros((dst_len, src_len), np.float64)
    if dst_len == src_len:
        np.fill_diagonal(w, 1.0)
    elif dst_len > src_len:
        if src_len == 1:
            w[:, 0] = 1.0
            return w
        scale = np.float32(src_len - 1) / np.float32(dst_len - 1)
        for d in range(dst_len - 1):
            pos = np.float32(d) * scale
            i = int(pos)
            frac = float(pos - np.float32(i))
            w[d, i] += 1.0 - frac
            w[d, i + 1] += frac
        w[dst_len - 1, src_len - 1] = 1.0
    else:
        scale = np.float32(src_len) / np.float32(dst_len)
        i0, f0 = 0, 0.0
        for d in range(dst_len):
            pos = np.float32(d + 1) * scale
            i1 = int(pos)
            f1 = float(pos - np.float32(i1))
            w[d, i0] += 1.0 - f0
            w[d, i0 + 1 : i1] += 1.0
            if i1 < src_len:
                w[d, i1] += f1
            w[d] /= w[d].sum()
            i0, f0 = i1, f1
    return w


def torch_scale_bilinear(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """torch/image ``image.scale(img, width, height)`` (mode 'bilinear') for (H, W[, C]) arrays:
    rows are rescaled first, then columns (float32 in, float32 out)."""
    img = np.asarray(image, np.float32)
    h, w = img.shape[:2]
    if (h, w) == (height, width):
        return img.copy()
    rows = _linear_weights(w, width)  # (width, w)
    cols = _linear_weights(h, height)  # (height, h)
    out = np.tensordot(img.astype(np.float64), rows, axes=([1], [1]))  # (h, C.., width)
    out = np.moveaxis(out, -1, 1)  # (h, width, C..)
    out = np.tensordot(cols, out, axes=([1], [0]))  # (height, width, C..)
    return out.astype(np.float32)


def original_sizes(height: int, width: int, maxdim: int = DEFAULT_MAXDIM) -> tuple[int, int]:
    """The size ``inpaint.lua`` runs at (L67-75): cap the long side at ``maxdim``
    (``image.scale(I, '*maxdim/hwmax')``, sizes truncated), then round each side to the
    nearest multiple of 4 (``torch.round``: halves away from zero)."""
    hwmax = max(height, width)
    if hwmax > maxdim:
        height, width = int(height * maxdim / hwmax), int(width * maxdim / hwmax)
    return (
        int(math.floor(height / 4 + 0.5)) * 4,
        int(math.floor(width / 4 + 0.5)) * 4,
    )


def original_preprocess(
    image: np.ndarray, mask: np.ndarray, maxdim: int = DEFAULT_MAXDIM
) -> tuple[np.ndarray, np.ndarray]:
    """``inpaint.lua`` L67-75: returns ``(image (H', W', 3) float32 [0, 1], mask (H', W')
    float32 {0, 1})`` at the size the original runs at (see :func:`original_sizes`).

    The image and the (grey, soft) mask are rescaled with torch/image's bilinear scale, twice
    when the long side exceeds ``maxdim`` (first to the cap, then to multiples of 4, as the
    original), and the mask is binarised at >= 0.2 after resizing (it grows slightly).

    Raises:
      InputError: mismatched sizes, or an image too small for the network.
    """
    image = np.asarray(image, np.float32)
    mask = np.asarray(mask, np.float32)
    check_pair(image, mask)
    if maxdim < MIN_SIDE:
        raise InputError(f"--maxdim {maxdim} is below the network's minimum side {MIN_SIDE}")
    h, w = mask.shape
    hwmax = max(h, w)
    if hwmax > maxdim:
        h, w = int(h * maxdim / hwmax), int(w * maxdim / hwmax)
        image = torch_scale_bilinear(image, w, h)
        mask = torch_scale_bilinear(mask, w, h)
    h4, w4 = original_sizes(h, w, maxdim=max(h, w))
    if min(h4, w4) < MIN_SIDE:
        raise InputError(
            f"image of {image.shape[1]}x{image.shape[0]} becomes {w4}x{h4}, below the GLCIC"
            f" network's minimum side of {MIN_SIDE} px"
        )
    image = torch_scale_bilinear(image, w4, h4)
    mask = (torch_scale_bilinear(mask, w4, h4) >= MASK_THRESHOLD).astype(np.float32)
    return image, mask


def check_pair(image: np.ndarray, mask: np.ndarray) -> None:
    """Raise InputError unless image is (H, W, 3) and mask (H, W) of the same size, both at
    least ``MIN_SIDE`` px."""
    if image.ndim != 3 or image.shape[-1] != 3:
        raise InputError(f"image must be (H, W, 3) RGB, got shape {image.shape}")
    if mask.shape != image.shape[:2]:
        raise InputError(
            f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is"
            f" {image.shape[1]}x{image.shape[0]}; they must have the same size"
        )
    if min(mask.shape) < MIN_SIDE:
        raise InputError(
            f"image of {image.shape[1]}x{image.shape[0]} is smaller than the GLCIC network's"
            f" minimum side of {MIN_SIDE} px"
        )


def pad_to_multiple(
    image: np.ndarray, mask: np.ndarray, multiple: int = SIZE_MULTIPLE
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Reflect-pad image (H, W, C) and mask (H, W) at the bottom/right to multiples of
    ``multiple``; padded mask pixels are known (0). Returns ``(image, mask, (H, W))`` so the
    result can be cropped back."""
    h, w = mask.shape
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "edge"
        image = np.pad(image, ((0, ph), (0, pw), (0, 0)), mode=mode)
        mask = np.pad(mask, ((0, ph), (0, pw)))
    return image, mask, (h, w)


def network_input(image: np.ndarray, mask: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """``inpaint.lua`` L77-83 in NumPy: (H, W, 3) [0, 1] + (H, W) {0, 1} -> (H, W, 4) float32:
    ``image - mean`` per channel (float32), set to 0 where mask = 1, then the mask."""
    x = np.asarray(image, np.float32) - np.asarray(mean, np.float32).reshape(1, 1, 3)
    m = np.asarray(mask, np.float32)
    x = np.where(m[..., None] > 0, np.float32(0), x)
    return np.concatenate([x, m[..., None]], axis=-1).astype(np.float32)


def composite(image: np.ndarray, output: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``inpaint.lua`` L86: ``image * (1 - M) + output * M`` (float32, (H, W, 3))."""
    m = np.asarray(mask, np.float32)[..., None]
    return (np.asarray(image, np.float32) * (1 - m) + np.asarray(output, np.float32) * m).astype(
        np.float32
    )
