"""``deepfill-tf convert``: write a trained generator as an original-layout TF1 checkpoint.

  deepfill-tf convert --to tf1 --checkpoint RUN_DIR_OR_PREFIX --output DIR [--with-discriminator]

The result holds the generator under the original variable names (``inpaint_net/conv1/kernel``
...) in ``DIR/snap-<step>`` with a ``checkpoint`` state file, which the original code's
``test.py`` (``tf.train.load_variable`` per variable) and ``deepfill-tf inpaint`` load.
``--with-discriminator`` adds ``discriminator/...`` (spectral-norm ``u`` included).
"""

from __future__ import annotations

import argparse
import os

from deepfill_tf.errors import CheckpointError, InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--to", required=True, choices=["tf1"], help="target layout (tf1: the original code's)"
    )
    parser.add_argument(
        "--checkpoint",
        required=True,
        help="a deepfill-tf train run directory (its latest checkpoint) or a ckpt-N prefix",
    )
    parser.add_argument("--output", required=True, help="folder for the TF1 checkpoint")
    parser.add_argument(
        "--with-discriminator",
        action="store_true",
        help="also write the discriminator variables",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="write into an --output folder that already holds files (as export --overwrite)",
    )


def check_inputs(args) -> None:
    """Before TensorFlow: the checkpoint exists; --output is not a file, not the checkpoint's
    own folder, and not a folder with files in it (unless --overwrite)."""
    if not os.path.exists(args.checkpoint) and not os.path.exists(args.checkpoint + ".index"):
        raise InputError(f"{args.checkpoint}: checkpoint not found")
    output = args.output
    if os.path.exists(output) and not os.path.isdir(output):
        raise InputError(f"--output {output}: exists and is not a folder")
    source = args.checkpoint if os.path.isdir(args.checkpoint) else os.path.dirname(args.checkpoint)
    if os.path.realpath(output) == os.path.realpath(source or "."):
        raise InputError(f"--output {output} is the checkpoint's own folder: choose another one")
    if os.path.isdir(output) and os.listdir(output) and not args.overwrite:
        raise InputError(
            f"--output {output} already holds files (use --overwrite or another folder)"
        )


def run(args) -> int:
    # Loaded on use: it imports TensorFlow, which --help and the input checks must not wait for.
    from deepfill_tf.convert.run_checkpoint import read_run_checkpoint, resolve_run_checkpoint
    from deepfill_tf.convert.tf1_checkpoint import tf1_variable_table, write_tf1_checkpoint
    from deepfill_tf.inference.loading import load_generator

    prefix = resolve_run_checkpoint(args.checkpoint)
    if prefix is None:
        raise CheckpointError(
            f"{args.checkpoint} is not a deepfill-tf training run or checkpoint (an original"
            " TF1 checkpoint is already in the TF1 layout)"
        )
    generator, spec = load_generator(prefix)
    arrays = {name: variable.numpy() for name, variable in tf1_variable_table(generator).items()}
    stored = read_run_checkpoint(
        prefix, parts=("discriminator",) if args.with_discriminator else ()
    )
    step = int(stored.pop("global_step", 0))
    arrays.update(stored)
    written = write_tf1_checkpoint(arrays, args.output, name=f"snap-{step}")
    what = "generator + discriminator" if args.with_discriminator else "generator"
    print(f"wrote {written} ({spec.describe()}, step {step}, {what}: {len(arrays)} variables)")
    return 0
