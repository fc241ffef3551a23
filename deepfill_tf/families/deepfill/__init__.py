"""DeepFill v1 (contextual attention) and v2 (gated convolution) as registered families.

Papers: Yu et al., "Generative Image Inpainting with Contextual Attention" (CVPR 2018) and
"Free-Form Image Inpainting with Gated Convolution" (ICCV 2019); original code:
JiahuiYu/generative_inpainting (v1.0.0, v2.0.0) on JiahuiYu/neuralgym.

Images reach the networks as BGR in [-1, 1] (``x / 127.5 - 1``), masks 1 = hole; the
networks work on a 1/8 grid, so sides are padded to multiples of 8.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deepfill_tf.families.deepfill.config import DeepFillV1Section, DeepFillV2Section
from deepfill_tf.registry import Family, ModelSpec, Option, register

ORIGINAL_POSTPROCESS = Option(
    "original_postprocess",
    "reproduce the original test.py output bit for bit (truncate the whole composite)",
    kind="flag",
    default=False,
)
GUIDE = Option("guide", "edge image for a guided DeepFill v2 model (white = edge)")


def _impl():
    """The TensorFlow half of the family (networks, prediction, training), imported on first
    use so that listing the families (``deepfill-tf inpaint --help``) needs no TensorFlow."""
    from deepfill_tf.families.deepfill import implementation

    return implementation


class _DeepFill(Family):
    options = (ORIGINAL_POSTPROCESS,)
    size_multiple = 8
    min_side = 16
    trainable = True
    exportable = True
    tflite = True
    architecture_keys = ("cnum", "disc_cnum", "height", "width", "gan_with_mask")
    gated = True

    def detect(self, variables: Mapping[str, Any]) -> ModelSpec | None:
        # v2's gated convs output half their filters, so conv2_downsample takes conv1's
        # filters / 2 input channels (v1: all of them); guided v2's conv1 takes 6 channels
        # (image, edge, ones, mask).
        conv1 = variables.get("inpaint_net/conv1/kernel")
        conv2 = variables.get("inpaint_net/conv2_downsample/kernel")
        if conv1 is None or conv2 is None:
            return None
        cnum, cin = int(conv1.shape[3]), int(conv1.shape[2])
        if (int(conv2.shape[2]) * 2 == cnum) != self.gated:
            return None
        return self._spec(cnum, guided=self.gated and cin == 6)

    def _spec(self, cnum: int, guided: bool = False) -> ModelSpec:
        options = {"cnum": int(cnum), "guided": bool(guided)}
        return ModelSpec(self.name, options)

    def spec_label(self, spec: ModelSpec) -> str:
        return self.label + (" (guided)" if spec.options.get("guided") else "")

    def spec_from_config(self, config) -> ModelSpec:
        return self._spec(config.cnum, bool(getattr(config, "guided", False)))

    def build_generator(self, spec: ModelSpec):
        return _impl().build_generator(spec)

    def model_inputs(self, generator) -> tuple[Option, ...]:
        return (GUIDE,) if getattr(generator, "guided", False) else ()

    def predict(self, generator, image, hole_mask, inputs):
        return _impl().predict(generator, image, hole_mask, inputs)

    def composite(self, predicted, image, hole, options):
        if options.get("original_postprocess"):
            return _impl().original_composite(predicted, image, hole)
        return super().composite(predicted, image, hole, options)

    def make_task(self, config):
        return _impl().make_task(config)


class DeepFillV1(_DeepFill):
    name = "deepfill_v1"
    aliases = ("v1",)
    label = "DeepFill v1"
    summary = "contextual attention, coarse-to-fine, WGAN-GP local/global critics (CVPR 2018)"
    config_section = DeepFillV1Section
    gated = False

    def tiny_spec(self) -> ModelSpec:
        return self._spec(4)

    def published_defaults(self) -> dict[str, Any]:
        return {
            "max_iters": 1_000_000,
            "train_spe": 10000,
            "val_psteps": 1000,
            "log_dir": "logs/deepfill_v1",
        }


class DeepFillV2(_DeepFill):
    name = "deepfill_v2"
    aliases = ("v2",)
    label = "DeepFill v2"
    summary = "gated convolution, SN-PatchGAN, free-form masks, optional edge guide (ICCV 2019)"
    inputs = (GUIDE,)
    config_section = DeepFillV2Section
    architecture_keys = (*_DeepFill.architecture_keys, "guided")

    def tiny_spec(self) -> ModelSpec:
        return self._spec(8)

    def published_defaults(self) -> dict[str, Any]:
        return {
            "max_iters": 100_000_000,
            "train_spe": 4000,
            "val_psteps": 2000,
            "log_dir": "logs/deepfill_v2",
        }


register(DeepFillV1())
register(DeepFillV2())
