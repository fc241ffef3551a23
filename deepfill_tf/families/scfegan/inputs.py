"""SC-FEGAN inputs and output, as the original demo (``demo.py``) makes them.

Pure NumPy functions, no TF. ``prepare_scfegan_batch`` turns uint8 RGB arrays into the
generator's (1, H, W, 9) input; ``composite_scfegan_output`` turns the generator's tanh output
back into uint8 RGB. Original: run-youngjoo/SC-FEGAN ``demo.py``.

Channel order of the batch (the original's): 0-2 incomplete image (BGR in [-1, 1], 0 in the
hole), 3 sketch {0, 1}, 4-6 colour strokes (BGR in [-1, 1] in the hole, -1 where not stroked,
0 outside), 7 mask {0, 1} (1 = hole), 8 noise {0, 1}. Sketch, colour and noise are zero
outside the hole, as the demo multiplies them by the mask.
"""

from __future__ import annotations

import numpy as np

from deepfill_tf.errors import InputError

# H and W must be multiples of this (seven stride-2 layers); the demo resizes to 512x512.
SIZE_MULTIPLE = 128
# cv2.randn(uint8 map, mean 0, std 255) rounds and saturates each sample into [0, 255]; the
# demo then keeps uint8(value / 255), which is 1 only for 255, i.e. a sample >= 254.5.
NOISE_STD = 255.0
NOISE_THRESHOLD = 254.5


def make_scfegan_noise(height: int, width: int, seed: int | None = None) -> np.ndarray:
    """The demo's noise map: (H, W) float32, 1 where a N(0, 255^2) sample is >= 254.5.

    About 15.9 % of the pixels are 1. The demo draws with OpenCV's RNG; this uses NumPy's
    ``default_rng(seed)``, so the distribution is the demo's but not the exact samples.
    ``seed=None`` draws fresh entropy (as the demo does on every run).
    """
    rng = np.random.default_rng(seed)
    samples = rng.normal(0.0, NOISE_STD, size=(int(height), int(width)))
    return (samples >= NOISE_THRESHOLD).astype(np.float32)


def _binary_map(array, name: str, size: tuple[int, int]) -> np.ndarray:
    """(H, W), (H, W, 1) or (H, W, 3) -> (H, W, 1) float32 {0, 1}; nonzero (any channel) = 1."""
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[-1] in (1, 3):
        array = (array > 0).any(axis=-1)
    elif array.ndim != 2:
        raise InputError(f"{name} must be (H, W), (H, W, 1) or (H, W, 3), got shape {array.shape}")
    if array.shape != size:
        raise InputError(
            f"{name} is {array.shape[1]}x{array.shape[0]} but the image is {size[1]}x{size[0]}"
        )
    return (array > 0).astype(np.float32)[..., None]


def _rgb_u8_to_bgr_unit(rgb_u8: np.ndarray) -> np.ndarray:
    # The demo computes x / 127.5 - 1 in float64 and feeds it to a float32 placeholder.
    return (rgb_u8[..., ::-1].astype(np.float64) / 127.5 - 1.0).astype(np.float32)


def _check_rgb_u8(array, name: str, size: tuple[int, int] | None = None) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[-1] != 3:
        raise InputError(
            f"{name} must be a (H, W, 3) uint8 RGB array, got {array.dtype} {array.shape}"
        )
    if size is not None and array.shape[:2] != size:
        raise InputError(
            f"{name} is {array.shape[1]}x{array.shape[0]} but the image is {size[1]}x{size[0]}"
        )
    return array


def prepare_scfegan_batch(
    image_rgb_u8: np.ndarray,
    hole_mask: np.ndarray,
    sketch: np.ndarray | None = None,
    color: np.ndarray | None = None,
    seed: int | None = None,
    *,
    noise: np.ndarray | None = None,
) -> np.ndarray:
    """Build the SC-FEGAN generator input from uint8 RGB arrays, as the demo's ``complete()``.

    Args:
      image_rgb_u8: (H, W, 3) uint8 RGB photo; H and W multiples of 128 (the demo resizes to
        512x512 with bicubic interpolation; do that before calling). Becomes BGR
        ``x / 127.5 - 1``, zeroed in the hole.
      hole_mask: (H, W) or (H, W, 1) bool or numbers; nonzero = hole (the demo's ``> 0`` rule
        for loaded masks). Binarise lossy (JPEG) masks before calling.
      sketch: (H, W), (H, W, 1) or (H, W, 3); a pixel is a sketch line where any channel is
        nonzero (white lines on black, as the demo draws them). None = no sketch. Kept only
        inside the hole.
      color: (H, W, 3) uint8 RGB colour-stroke map on a black background. Becomes BGR
        ``c / 127.5 - 1`` (so black / un-stroked = -1) and is then zeroed outside the hole.
        None = no strokes (-1 everywhere in the hole). Pure black strokes are
        indistinguishable from no stroke, as in the demo.
      seed: seed of the noise map (``make_scfegan_noise``); None = random.
      noise: optional (H, W) or (H, W, 1) binary map (nonzero = 1) to use instead of drawing
        one; kept only inside the hole.

    Returns:
      (1, H, W, 9) float32: [image * (1 - mask) (BGR), sketch, colour (BGR), mask, noise].

    Raises:
      InputError: wrong dtype, shape, mismatched sizes, or a size not divisible by 128.
    """
    image = _check_rgb_u8(image_rgb_u8, "image")
    size = image.shape[:2]
    if size[0] % SIZE_MULTIPLE or size[1] % SIZE_MULTIPLE:
        raise InputError(
            f"SC-FEGAN needs an image whose sides are multiples of {SIZE_MULTIPLE}, got"
            f" {size[1]}x{size[0]} (the original demo resizes to 512x512)"
        )
    mask = _binary_map(hole_mask, "mask", size)
    sketch_map = np.zeros_like(mask) if sketch is None else _binary_map(sketch, "sketch", size)
    if color is None:
        color_map = np.full((*size, 3), -1.0, np.float32)
    else:
        color_map = _rgb_u8_to_bgr_unit(_check_rgb_u8(color, "color", size))
    if noise is None:
        noise_map = make_scfegan_noise(*size, seed=seed)[..., None]
    else:
        noise_map = _binary_map(noise, "noise", size)
    incomplete = _rgb_u8_to_bgr_unit(image) * (1.0 - mask)
    batch = np.concatenate(
        [incomplete, sketch_map * mask, color_map * mask, mask, noise_map * mask], axis=-1
    )
    return batch[None].astype(np.float32)


def composite_scfegan_output(
    generated: np.ndarray, batch: np.ndarray, image_rgb_u8: np.ndarray | None = None
) -> np.ndarray:
    """Paste the generator output into the hole and convert to uint8 RGB.

    Args:
      generated: (N, H, W, 3) generator (tanh) output, BGR in [-1, 1].
      batch: the (N, H, W, 9) input it was computed from (``prepare_scfegan_batch``); its
        channels 0-2 (incomplete image) and 7 (mask) are used.
      image_rgb_u8: None for the demo's result bit for bit: ``G * mask + image * (1 - mask)``,
        then ``(x + 1) * 127.5`` TRUNCATED to uint8 in float32 (the float round trip lowers some
        known pixels by one level). Given the (H, W, 3) or (N, H, W, 3) uint8 RGB original,
        pixels outside the hole are copied from it unchanged and hole pixels are rounded
        (``round((G + 1) * 127.5)``), as the package's DeepFill pipeline does by default.

    Returns:
      (N, H, W, 3) uint8 RGB.
    """
    generated = np.asarray(generated, dtype=np.float32)
    batch = np.asarray(batch, dtype=np.float32)
    if generated.ndim != 4 or generated.shape[-1] != 3:
        raise InputError(f"generated must be (N, H, W, 3), got shape {generated.shape}")
    if batch.shape != (*generated.shape[:3], 9):
        raise InputError(
            f"batch must be (N, H, W, 9) matching the output {generated.shape}, got {batch.shape}"
        )
    mask = batch[..., 7:8]
    if image_rgb_u8 is None:
        complete = generated * mask + batch[..., :3]
        bgr = np.clip((complete + 1.0) * 127.5, 0.0, 255.0).astype(np.uint8)
        return np.ascontiguousarray(bgr[..., ::-1])
    image = np.asarray(image_rgb_u8)
    if image.ndim == 3:
        image = image[None]
    if image.dtype != np.uint8 or image.shape[1:] != generated.shape[1:]:
        raise InputError(
            f"image must be uint8 RGB of size {generated.shape[1:3]}, got {image.dtype}"
            f" {image.shape}"
        )
    predicted = np.round(np.clip((generated + 1.0) * 127.5, 0.0, 255.0)).astype(np.uint8)
    return np.where(mask > 0.5, predicted[..., ::-1], image)
