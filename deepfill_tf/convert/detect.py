"""Tell which model a checkpoint holds, from its variable names and shapes."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from deepfill_tf.errors import CheckpointError

MODEL_NAMES = ("deepfill_v1", "deepfill_v2", "scfegan")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What a checkpoint holds: ``name`` in MODEL_NAMES, the generator width, guidance."""

    name: str
    cnum: int
    guided: bool = False

    @property
    def label(self) -> str:
        return {"deepfill_v1": "DeepFill v1", "deepfill_v2": "DeepFill v2", "scfegan": "SC-FEGAN"}[
            self.name
        ] + (" (guided)" if self.guided else "")


def detect_model(variables: Mapping[str, np.ndarray]) -> ModelSpec:
    """Detect DeepFill v1 / v2 / guided v2 / SC-FEGAN from checkpoint variables.

    DeepFill v2's gated convs output half their filters, so ``conv2_downsample`` takes
    ``conv1``'s filters / 2 input channels (v1: all of them); guided v2's ``conv1`` takes 6
    channels (image, edge, ones, mask).

    Raises:
      CheckpointError: no generator of a known model in the checkpoint.
    """
    conv1 = variables.get("inpaint_net/conv1/kernel")
    conv2 = variables.get("inpaint_net/conv2_downsample/kernel")
    if conv1 is not None and conv2 is not None:
        cnum, cin = int(conv1.shape[3]), int(conv1.shape[2])
        gated = int(conv2.shape[2]) * 2 == cnum
        if gated:
            return ModelSpec("deepfill_v2", cnum, guided=cin == 6)
        return ModelSpec("deepfill_v1", cnum)
    scfegan_first = variables.get("generator/gconv1_ds/kernel")
    if scfegan_first is not None:
        return ModelSpec("scfegan", int(scfegan_first.shape[3]))
    scopes = sorted({k.split("/")[0] for k in variables})
    raise CheckpointError(
        "checkpoint holds no DeepFill or SC-FEGAN generator (no inpaint_net/conv1 or "
        f"generator/gconv1_ds variables; top-level scopes: {', '.join(scopes) or 'none'})"
    )


def check_requested_model(spec: ModelSpec, requested: str) -> None:
    """Raise a CheckpointError if ``--model`` names another model than the checkpoint holds."""
    if requested not in ("auto", spec.name):
        raise CheckpointError(
            f"checkpoint holds a {spec.label} generator, not {requested} (use --model auto)"
        )
