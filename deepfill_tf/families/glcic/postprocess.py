"""GLCIC's optional post-processing (``inpaint.lua --postproc``, L89-117 of
satoshiiizuka/siggraph2017_inpainting), with OpenCV on the host.

1. ``src`` = the network composite as 8-bit BGR, ``* 255`` in float32 then truncated
   (``utils.lua`` ``tensor2cvimg``);
2. ``cv2.inpaint(src, mask, 1, INPAINT_TELEA)``: Telea's fast marching, radius 1;
3. ``cv2.seamlessClone(src, telea, mask, p, NORMAL_CLONE)``: Poisson blending of the network
   composite into the fast-marching result, placed at ``p``, the centre of the bounding box
   of all hole pixels, ``floor(min + (max - min) / 2)`` per axis, 0-based (x = column) — so
   it lands in place.

The result keeps the network's gradients inside the hole with colours fitted to its border.
It is host-side: exported SavedModels stop at the network composite.
"""

from __future__ import annotations

import numpy as np

from deepfill_tf.errors import InputError


def hole_centre(mask: np.ndarray) -> tuple[int, int]:
    """``(x, y)`` 0-based centre of the bounding box of the hole pixels of an (H, W) mask, as
    ``inpaint.lua`` L93-109 computes ``p`` (floor of min + (max - min) / 2)."""
    rows, cols = np.nonzero(np.asarray(mask) > 0)
    if rows.size == 0:
        raise InputError("the mask has no hole pixels; nothing to post-process")
    x = int(np.floor(cols.min() + (cols.max() - cols.min()) / 2))
    y = int(np.floor(rows.min() + (rows.max() - rows.min()) / 2))
    return x, y


def to_u8_truncated(image: np.ndarray) -> np.ndarray:
    """float [0, 1] -> uint8 as ``tensor2cvimg`` / ``image.save``: ``* 255`` in float32, clamp,
    truncate."""
    scaled = np.clip(np.asarray(image, np.float32), 0, 1) * np.float32(255)
    return scaled.astype(np.uint8)


def original_postprocess(
    composite: np.ndarray, mask: np.ndarray, return_telea: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Fast marching (Telea, radius 1), then Poisson blending (NORMAL_CLONE) of the composite.

    Args:
      composite: (H, W, 3) float32 RGB in [0, 1], the network output pasted into the image.
      mask: (H, W), 1 (or > 0) = hole.
      return_telea: also return the fast-marching image.

    Returns:
      (H, W, 3) uint8 RGB (and the Telea image, uint8 RGB). With no hole the truncated
      composite is returned unchanged.
    """
    import cv2  # opencv-python-headless; imported here so the rest of the family needs none

    src = np.ascontiguousarray(to_u8_truncated(composite)[..., ::-1])  # RGB -> BGR
    mask255 = ((np.asarray(mask) > 0) * 255).astype(np.uint8)
    if not mask255.any():
        out = src[..., ::-1].copy()
        return (out, out.copy()) if return_telea else out
    telea = cv2.inpaint(src, mask255, 1, cv2.INPAINT_TELEA)
    try:
        # seamlessClone writes into its mask argument: give it a copy.
        blend = cv2.seamlessClone(
            src, telea, mask255.copy(), hole_centre(mask255), cv2.NORMAL_CLONE
        )
    except cv2.error as e:
        first = str(e).strip().splitlines()[-1] if str(e).strip() else "cv2.error"
        raise InputError(
            f"post-processing failed in cv2.seamlessClone ({first}); run without --postprocess"
        ) from None
    out = np.ascontiguousarray(blend[..., ::-1])
    if return_telea:
        return out, np.ascontiguousarray(telea[..., ::-1])
    return out
