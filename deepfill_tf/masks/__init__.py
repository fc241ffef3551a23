"""Training masks (float32 (1, H, W, 1), 1 = hole): DeepFill's random box, v2's free-form
brush strokes and their union. NumPy/PIL versions replay the original's sampling order;
``*_tf`` versions are stateless pure TensorFlow for tf.data and tf.function."""

from deepfill_tf.masks.box import (
    BoxParams,
    as_random_state,
    bbox_to_mask,
    bbox_to_mask_tf,
    random_bbox,
    random_bbox_tf,
    random_box_mask,
    random_box_mask_tf,
)
from deepfill_tf.masks.combined import (
    MASK_KINDS,
    mask_dataset,
    random_mask,
    random_mask_tf,
    union_masks,
)
from deepfill_tf.masks.free_form import (
    BrushParams,
    Stroke,
    brush_stroke_mask,
    brush_stroke_mask_tf,
    draw_brush_strokes,
    rasterize_brush_strokes_tf,
    sample_brush_strokes,
    sample_brush_strokes_tf,
)
from deepfill_tf.masks.irregular import (
    IrregularMaskFolder,
    IrregularParams,
    hole_ratio,
    irregular_mask,
    irregular_mask_dataset,
    ratio_bucket,
)

__all__ = [
    "MASK_KINDS",
    "BoxParams",
    "BrushParams",
    "IrregularMaskFolder",
    "IrregularParams",
    "Stroke",
    "as_random_state",
    "bbox_to_mask",
    "bbox_to_mask_tf",
    "brush_stroke_mask",
    "brush_stroke_mask_tf",
    "draw_brush_strokes",
    "hole_ratio",
    "irregular_mask",
    "irregular_mask_dataset",
    "mask_dataset",
    "random_bbox",
    "random_bbox_tf",
    "random_box_mask",
    "random_box_mask_tf",
    "random_mask",
    "random_mask_tf",
    "ratio_bucket",
    "rasterize_brush_strokes_tf",
    "sample_brush_strokes",
    "sample_brush_strokes_tf",
    "union_masks",
]
