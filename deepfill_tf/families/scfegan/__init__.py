"""SC-FEGAN (Jo & Park, "SC-FEGAN: Face Editing Generative Adversarial Network with User's
Sketch and Color", ICCV 2019) as a registered family: inference on the original released
checkpoint (run-youngjoo/SC-FEGAN), with a sketch and colour strokes as extra inputs.

Training is not implemented (the authors released no training code).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deepfill_tf.registry import Family, ModelSpec, Option, register


class SCFEGAN(Family):
    name = "scfegan"
    aliases = ("sc_fegan",)
    label = "SC-FEGAN"
    summary = "face editing with sketch and colour strokes (gate_conv with LRN, ICCV 2019)"
    inputs = (
        Option("sketch", "SC-FEGAN: sketch image (white strokes on black)", required=False),
        Option("color", "SC-FEGAN: colour stroke image", required=False),
    )
    options = (
        Option("seed", "SC-FEGAN: seed of the noise input", kind="int", default=0),
        Option(
            "original_postprocess",
            "reproduce the original output bit for bit",
            kind="flag",
            default=False,
        ),
    )
    size_multiple = 128
    min_side = 16

    def detect(self, variables: Mapping[str, Any]) -> ModelSpec | None:
        first = variables.get("generator/gconv1_ds/kernel")
        if first is None:
            return None
        return ModelSpec(self.name, {"cnum": int(first.shape[3])})

    def tiny_spec(self) -> ModelSpec:
        return ModelSpec(self.name, {"cnum": 4})

    def build_generator(self, spec: ModelSpec):
        # The TensorFlow half is imported on first use: listing families needs no TensorFlow.
        from deepfill_tf.models.sc_fegan import SCFEGANGenerator

        model = SCFEGANGenerator(cnum=spec.cnum)
        model.build((1, 128, 128, 9))
        return model

    def make_inpainter(self, generator, spec: ModelSpec, **options):
        # The TensorFlow half is imported on first use: listing families needs no TensorFlow.
        from deepfill_tf.families.scfegan.runner import SCFEGANInpainter

        return SCFEGANInpainter(generator, family=self, spec=spec, **options)


register(SCFEGAN())
