"""DeepFill's static validation views (the original's ``val`` option).

The first ``static_view_size`` images of ``val_data`` with fixed masks, inpainted by the
current generator every ``val_psteps`` steps (``Task.static_views``).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from deepfill_tf.data import make_dataset
from deepfill_tf.masks import brush_stroke_mask_tf
from deepfill_tf.ops.resize import resize_bilinear_align_corners, resize_nearest_align_corners
from deepfill_tf.training.summaries import bgr_to_display


def static_view_mask(config) -> np.ndarray:
    """The fixed mask of the static views: float32 (1, H, W, 1), 1 = hole.

    The original's ``build_static_infer_graph`` uses the box (top ``height // 2``, left
    ``width // 2``, ``height`` x ``width``); it still shrinks it by random deltas and, in v2,
    ORs a freshly drawn brush mask at every evaluation. Here both are drawn once (no shrink,
    brush from ``config.seed``) so the views are comparable from one summary to the next.
    """
    h, w = int(config.img_shapes[0]), int(config.img_shapes[1])
    mask = np.zeros((1, h, w, 1), np.float32)
    top, left = config.height // 2, config.width // 2
    mask[0, top : top + config.height, left : left + config.width, 0] = 1.0
    if config.model == "deepfill_v2":
        seed = tf.constant([config.seed, 0], tf.int64)
        mask = np.maximum(mask, brush_stroke_mask_tf(seed, h, w).numpy())
    return mask


class StaticViews:
    """Fixed validation images + fixed masks, inpainted for the ``static_view`` summaries.

    Args:
        config: ``TrainConfig`` (``val_data``, ``static_view_size``, ``img_shapes``,
            ``guided``, ``random_crop``, ``batch_size``).
        generator: the (distributed) generator; called outside ``strategy.run``.
    """

    def __init__(self, config, generator):
        self.config = config
        self.generator = generator
        n = int(config.static_view_size)
        guided = bool(getattr(config, "guided", False))  # v2 only
        ds = make_dataset(
            config.val_data,
            batch_size=1,
            img_shape=config.img_shapes,
            random_crop=config.random_crop,
            guided=guided,
            edge_threshold=getattr(config, "edge_threshold", 0.6),
            shuffle=False,
            repeat=False,
            seed=config.seed,
            drop_remainder=False,
        ).take(n)
        images, edges = [], []
        for element in ds:
            if guided:
                images.append(element[0].numpy())
                edges.append(element[1].numpy())
            else:
                images.append(element.numpy())
        self.images = np.concatenate(images) if images else np.zeros((0, 1, 1, 3), np.float32)
        self.edges = np.concatenate(edges) if edges else None
        self.mask = static_view_mask(config)
        self._flow_resize = (
            resize_bilinear_align_corners
            if config.model == "deepfill_v2"
            else resize_nearest_align_corners
        )
        self._infer = tf.function(self._grid)

    def __len__(self) -> int:
        return len(self.images)

    def _grid(self, images, edges, mask):
        gen_in = images if edges is None else tf.concat([images, edges], axis=-1)
        x1, x2, flow = self.generator(gen_in, mask)
        predicted = x1 if getattr(self.config, "pretrain_coarse_network", False) else x2
        incomplete = images * (1.0 - mask)
        complete = predicted * mask + incomplete * (1.0 - mask)
        shown = incomplete if edges is None else incomplete + edges * mask
        flow = self._flow_resize(flow, size=tuple(images.shape[1:3]))
        return tf.concat([images, shown, complete, tf.cast(flow, images.dtype)], axis=2)

    def grids(self) -> np.ndarray:
        """(N, H, 4W, 3) BGR in [-1, 1]: raw | incomplete | completed | attention flow
        (``display`` shows them as RGB)."""
        chunk = max(1, int(self.config.batch_size))
        out = []
        for start in range(0, len(self.images), chunk):
            images = tf.constant(self.images[start : start + chunk])
            edges = None if self.edges is None else tf.constant(self.edges[start : start + chunk])
            out.append(self._infer(images, edges, tf.constant(self.mask)).numpy())
        return np.concatenate(out) if out else np.zeros((0, 1, 4, 3), np.float32)

    @staticmethod
    def display(grids) -> tf.Tensor:
        return bgr_to_display(grids)
