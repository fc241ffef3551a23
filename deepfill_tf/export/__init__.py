"""Export for serving: TF Serving SavedModels (``saved_model``), TFLite, ONNX (optional)."""

from deepfill_tf.export.saved_model import (  # noqa: F401
    BYTES_SIGNATURE,
    TENSORS_SIGNATURE,
    InpaintServingModule,
    export_checkpoint,
    export_saved_model,
    load_exportable_generator,
    native_ops,
    python_bound_ops,
)
