"""Context Encoders (Pathak, Krähenbühl, Donahue, Darrell & Efros, "Context Encoders: Feature
Learning by Inpainting", CVPR 2016) as a registered family.

Runs the released Torch7 generators of pathak22/context-encoder
(``models/inpaintCenter/*.t7``, read by ``deepfill_tf.convert.torch7``) and our trained runs;
trains with the joint L2 (10x on the overlapping border) + adversarial loss. Images are
RGB in [-1, 1]; only 128x128 images: a centre-region model completes its 64x64 centre (the
holes inside it), a random-region model any hole.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deepfill_tf.families.context_encoder.config import ContextEncoderSection
from deepfill_tf.registry import Family, ModelSpec, Option, register

SCOPE = "context_encoder"


def _impl():
    # Loaded on use: the family's TensorFlow half; listing families (--help) must not load it.
    from deepfill_tf.families.context_encoder import inference

    return inference


class ContextEncoder(Family):
    name = "context_encoder"
    aliases = ("context_encoders",)
    label = "Context Encoder"
    summary = "encoder-decoder with L2 + adversarial loss (CVPR 2016; 128x128, .t7)"
    options = (
        Option(
            "overlap",
            "Context Encoder: border pixels of the centre the network sees (overlapPred)",
            kind="int",
            default=4,
        ),
    )
    size_multiple = 128
    min_side = 128
    trainable = True
    exportable = True
    tflite = False
    config_section = ContextEncoderSection
    architecture_keys = ("nef", "ngf", "ndf", "bottleneck", "region")
    checkpoint_suffixes = (".t7",)

    def detect(self, variables: Mapping[str, Any]) -> ModelSpec | None:
        first = variables.get(f"{SCOPE}/enc_conv1/conv/kernel")
        last = variables.get(f"{SCOPE}/dec_output/conv/kernel")
        bottleneck = variables.get(f"{SCOPE}/enc_bottleneck/conv/kernel")
        if first is None or last is None or bottleneck is None:
            return None
        region = "random" if f"{SCOPE}/dec_conv5/conv/kernel" in variables else "centre"
        return ModelSpec(
            self.name,
            {
                "nef": int(first.shape[3]),
                "ngf": int(last.shape[3]),
                "bottleneck": int(bottleneck.shape[3]),
                "region": region,
            },
        )

    def spec_label(self, spec: ModelSpec) -> str:
        region = spec.options.get("region", "centre")
        return f"{self.label} ({'random region' if region == 'random' else 'centre'})"

    def load_checkpoint(self, path: str):
        # Loaded on use: the family's TensorFlow half; listing families (--help) must not load it.
        from deepfill_tf.families.glcic.inference import is_glcic_file

        if is_glcic_file(path):
            from deepfill_tf.registry import get_family

            return get_family("glcic").load_checkpoint(path)
        return _impl().load_t7(path)

    def build_generator(self, spec: ModelSpec):
        return _impl().build_generator(spec)

    def tiny_spec(self) -> ModelSpec:
        return ModelSpec(self.name, {"nef": 8, "ngf": 8, "bottleneck": 32, "region": "centre"})

    def spec_from_config(self, config) -> ModelSpec:
        s = config.section
        return ModelSpec(
            self.name,
            {"nef": s.nef, "ngf": s.ngf, "bottleneck": s.bottleneck, "region": s.region},
        )

    def predict(self, generator, image, hole_mask, inputs):
        return _impl().predict(generator, image, hole_mask, inputs)

    def make_inpainter(self, generator, spec: ModelSpec, **options):
        return _impl().ContextEncoderInpainter(generator, family=self, spec=spec, **options)

    def published_defaults(self) -> dict[str, Any]:
        # train.lua: 500 epochs (niter) of batch 64; set max_iters = 500 * images / batch_size.
        return {
            "img_shapes": (128, 128, 3),
            "lr": 0.0002,
            "max_iters": 500_000,
            "train_spe": 10_000,
            "val_psteps": 1000,
            "log_dir": "logs/context_encoder",
        }

    def make_task(self, config):
        # Loaded on use: the family's TensorFlow half; listing families (--help) must not load it.
        from deepfill_tf.families.context_encoder.task import make_task

        return make_task(config)


register(ContextEncoder())
