"""One-off converter: torchvision's VGG-16 (``vgg16-397923af.pth``) -> a Keras weights file.

The partial-convolution loss (``deepfill_tf.losses.PartialConvLoss``) was tuned for
torchvision's ImageNet VGG-16 (RGB in [0, 1], mean/std normalised), not for Keras' Caffe
conversion. Nothing downloads weights at run time, so users who have torchvision's file
(``~/.cache/torch/hub/checkpoints/vgg16-397923af.pth``, from
https://download.pytorch.org/models/vgg16-397923af.pth) convert it once::

    pip install torch        # only for this step (or: pip install -e .[vgg-convert])
    python -m deepfill_tf.convert.torchvision_vgg vgg16-397923af.pth vgg16_torchvision.weights.h5

and then pass ``--vgg-weights vgg16_torchvision.weights.h5`` (or ``vgg_weights:`` in a config).
The output loads with ``keras.applications.VGG16(include_top=False, weights=None)
.load_weights(path)``. The 13 convolutions ``features.{0,2,5,7,10,12,14,17,19,21,24,26,28}``
map, in order, to Keras' ``block1_conv1`` ... ``block5_conv3``; kernels go OIHW -> HWIO, the
classifier is dropped. A VGG with batch norm (``vgg16_bn``) is refused.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from deepfill_tf.errors import CheckpointError, DeepfillError, InputError
from deepfill_tf.fileio import atomic_path

# torchvision ``features`` index of every conv of VGG-16 (ReLUs and max-pools in between).
TORCH_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
KERAS_CONV_NAMES = tuple(
    f"block{b}_conv{c}"
    for b, n in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))
    for c in range(1, n + 1)
)
# (out, in) channels of every conv, in order.
_CHANNELS = (
    (64, 3), (64, 64), (128, 64), (128, 128), (256, 128), (256, 256), (256, 256),
    (512, 256), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512),
)  # fmt: skip

INSTALL_TORCH = (
    "this one-off conversion needs PyTorch: `pip install torch` (CPU wheel: `pip install torch "
    "--index-url https://download.pytorch.org/whl/cpu`), or `pip install -e .[vgg-convert]`"
)


def read_torch_state_dict(path: str) -> dict[str, np.ndarray]:
    """``torch.load`` a ``.pth`` state dict (CPU, ``weights_only``) into NumPy arrays."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file (torchvision's vgg16-397923af.pth expected)")
    try:
        import torch
    except ImportError:
        raise InputError(INSTALL_TORCH) from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a readable PyTorch file ({first[:200]})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: holds a {type(state).__name__}, not a state dict")
    return {k: v.detach().cpu().numpy() for k, v in state.items() if hasattr(v, "detach")}


def keras_vgg16_arrays(state_dict: dict[str, np.ndarray], source: str = "state dict") -> dict:
    """Map torchvision VGG-16 keys to ``{"block1_conv1": (kernel HWIO, bias), ...}``, strictly.

    Raises ``CheckpointError`` naming the missing or mis-shaped keys, or if the state dict is
    a VGG with batch norm.
    """
    if any(k.endswith("running_mean") for k in state_dict):
        raise CheckpointError(
            f"{source} is a VGG with batch norm (vgg16_bn); the loss needs plain VGG-16 "
            "(vgg16-397923af.pth)"
        )
    out = {}
    problems = []
    for index, name, (cout, cin) in zip(
        TORCH_CONV_INDICES, KERAS_CONV_NAMES, _CHANNELS, strict=True
    ):
        w_key, b_key = f"features.{index}.weight", f"features.{index}.bias"
        w, b = state_dict.get(w_key), state_dict.get(b_key)
        if w is None or b is None:
            problems.append(f"missing {w_key if w is None else b_key}")
            continue
        if tuple(w.shape) != (cout, cin, 3, 3) or tuple(b.shape) != (cout,):
            problems.append(f"{w_key} {tuple(w.shape)} (expected {(cout, cin, 3, 3)})")
            continue
        out[name] = (
            np.ascontiguousarray(np.transpose(w, (2, 3, 1, 0)), np.float32),
            b.astype(np.float32),
        )
    if problems:
        more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        raise CheckpointError(
            f"{source} is not torchvision's VGG-16: {', '.join(problems[:3])}{more}"
        )
    return out


def write_keras_vgg16(arrays: dict, output: str) -> None:
    """Write ``keras_vgg16_arrays`` output as a Keras 3 ``.weights.h5``, atomically."""
    # Loaded on use: a heavy or optional library only this feature needs.
    import keras

    if not output.endswith(".weights.h5"):
        raise InputError(f"{output}: the output name must end in .weights.h5 (Keras 3 rule)")
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise InputError(f"{output}: folder {folder} does not exist")
    vgg = keras.applications.VGG16(include_top=False, weights=None, input_shape=(None, None, 3))
    for name, (kernel, bias) in arrays.items():
        vgg.get_layer(name).set_weights([kernel, bias])
    with atomic_path(output) as tmp:  # keeps the .weights.h5 ending Keras 3 requires
        vgg.save_weights(tmp, overwrite=True)


def convert(pth_path: str, output: str) -> None:
    """torchvision ``vgg16-397923af.pth`` -> Keras ``VGG16(include_top=False)`` weights file."""
    if os.path.abspath(pth_path) == os.path.abspath(output):
        raise InputError(f"{output}: the output must not overwrite the input")
    state = read_torch_state_dict(pth_path)
    write_keras_vgg16(keras_vgg16_arrays(state, pth_path), output)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deepfill_tf.convert.torchvision_vgg",
        description="Convert torchvision's vgg16-397923af.pth into the Keras VGG-16 "
        "(include_top=False) weights file that PartialConvLoss / --vgg-weights reads.",
    )
    parser.add_argument("pth", help="torchvision's vgg16-397923af.pth")
    parser.add_argument("output", help="output file, ending in .weights.h5")
    args = parser.parse_args(argv)

    try:
        convert(args.pth, args.output)
    except DeepfillError as e:
        print(f"torchvision_vgg: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.output} (load with PartialConvLoss(vgg_weights=...))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
