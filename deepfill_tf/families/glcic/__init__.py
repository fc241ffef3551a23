"""GLCIC (Iizuka, Simo-Serra & Ishikawa, "Globally and Locally Consistent Image Completion",
SIGGRAPH 2017) as a registered family.

Runs the released Torch7 models of satoshiiizuka/siggraph2017_inpainting
(``completionnet_places2.t7``, ``completionnet_places2_freeform.t7``,
``completionnet_celeba.t7``; read by ``deepfill_tf.convert.torch7``) and our own trained runs;
trains with the paper's three phases. Images reach the network as RGB in [0, 1] minus the
dataset mean with the hole zeroed, plus the mask (1 = hole) as 4th channel; the network
works on a 1/4 grid, so sides are padded to multiples of 4.

Options: ``--postprocess`` (OpenCV fast marching + Poisson blending as ``inpaint.lua
--postproc``), ``--original-preprocess`` with ``--maxdim`` (``inpaint.lua``'s resizing).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deepfill_tf.families.glcic.config import GLCICSection
from deepfill_tf.registry import Family, ModelSpec, Option, register

SCOPE = "glcic_completion"


def _impl():
    """The TensorFlow half (networks, loading, inference), imported on first use."""
    # Loaded on use: the family's TensorFlow half; listing families (--help) must not load it.
    from deepfill_tf.families.glcic import inference

    return inference


class GLCIC(Family):
    name = "glcic"
    label = "GLCIC"
    summary = "globally and locally consistent completion (dilated convs, SIGGRAPH 2017; .t7)"
    options = (
        Option(
            "postprocess",
            "GLCIC: OpenCV fast marching + Poisson blending, as inpaint.lua --postproc",
            kind="flag",
            default=False,
        ),
        Option(
            "original_preprocess",
            "GLCIC: resize as inpaint.lua (long side <= --maxdim, multiples of 4, mask >= 0.2);"
            " the output keeps that size",
            kind="flag",
            default=False,
        ),
        Option("maxdim", "GLCIC: long side cap of --original-preprocess", kind="int", default=600),
    )
    size_multiple = 4
    min_side = 8
    trainable = True
    exportable = True
    tflite = False
    architecture_keys = ("cnum", "disc_cnum", "fc_units", "local_size")
    checkpoint_suffixes = (".t7",)
    config_section = GLCICSection

    def detect(self, variables: Mapping[str, Any]) -> ModelSpec | None:
        conv1 = variables.get(f"{SCOPE}/conv1/conv/kernel")
        if conv1 is None or tuple(conv1.shape)[:3] != (5, 5, 4):
            return None
        return ModelSpec(self.name, {"cnum": int(conv1.shape[3])})

    def load_checkpoint(self, path: str):
        impl = _impl()
        if not impl.is_glcic_file(path):
            # Both families read .t7 files: a Context Encoder netG goes to its own family.
            from deepfill_tf.registry import get_family

            return get_family("context_encoder").load_checkpoint(path)
        return impl.load_t7(path)

    def build_generator(self, spec: ModelSpec):
        return _impl().build_generator(spec)

    def tiny_spec(self) -> ModelSpec:
        return ModelSpec(self.name, {"cnum": 8})

    def spec_from_config(self, config) -> ModelSpec:
        return ModelSpec(self.name, {"cnum": int(config.section.cnum)})

    def predict(self, generator, image, hole_mask, inputs):
        return _impl().predict(generator, image, hole_mask, inputs)

    def make_inpainter(self, generator, spec: ModelSpec, **options):
        return _impl().GLCICInpainter(generator, family=self, spec=spec, **options)

    def published_defaults(self) -> dict[str, Any]:
        return {
            "img_shapes": (256, 256, 3),
            "lr": 1.0,  # ADADELTA
            "max_iters": 500_000,
            "train_spe": 10_000,
            "val_psteps": 1000,
            "log_dir": "logs/glcic",
        }

    def make_task(self, config):
        # Loaded on use: the family's TensorFlow half; listing families (--help) must not load it.
        from deepfill_tf.families.glcic.task import make_task

        return make_task(config)


register(GLCIC())
