"""Read the original generative_inpainting / neuralgym files: ``inpaint.yml`` and ``.flist``.

It only translates (into ``deepfill_tf.config.TrainConfig`` and lists of paths); it never
trains and never imports TensorFlow.
"""

from neuralgym_compat.flist import edge_path, read_flist, write_flist
from neuralgym_compat.inpaint_yml import (
    V1_IGNORED,
    V2_IGNORED,
    detect_dialect,
    read_inpaint_yml,
    translate_inpaint_dict,
)

__all__ = [
    "V1_IGNORED",
    "V2_IGNORED",
    "detect_dialect",
    "edge_path",
    "read_flist",
    "read_inpaint_yml",
    "translate_inpaint_dict",
    "write_flist",
]
