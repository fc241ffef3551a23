"""Read the original generative_inpainting / neuralgym files: ``inpaint.yml`` and ``.flist``.

It only translates (into ``deepfill_tf.config.TrainConfig``); it sits on top of the package
and nothing in ``deepfill_tf`` imports it: ``deepfill-tf train --config inpaint.yml`` finds
its translator through the ``deepfill_tf.config_translators`` entry point (setup.py). The
``.flist`` format itself is read by the package (``deepfill_tf.data.read_flist``), re-exported
here. It never trains.
"""

from deepfill_tf.data.flist import edge_path, read_flist
from neuralgym_compat.inpaint_yml import (
    TRANSLATOR,
    V1_IGNORED,
    V2_IGNORED,
    detect_dialect,
    translate_inpaint_dict,
)

__all__ = [
    "TRANSLATOR",
    "V1_IGNORED",
    "V2_IGNORED",
    "detect_dialect",
    "edge_path",
    "read_flist",
    "translate_inpaint_dict",
]
