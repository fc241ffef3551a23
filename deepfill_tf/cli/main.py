"""Entry point of the ``deepfill-tf`` console script.

Every subcommand lives in its own module ``deepfill_tf/cli/<name>.py`` defining
``add_arguments(parser)`` and ``run(args) -> int`` (and optionally ``before_tensorflow(args)``,
run before TensorFlow initialises its devices). Modules are imported only when their
subcommand runs, so ``deepfill-tf --help`` does not import TensorFlow. Errors caused by bad
input (``DeepfillError``) are printed as one line ``deepfill-tf <cmd>: error: ...`` with exit
code 1; usage errors exit with 2 (argparse).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# name -> one-line help. The module deepfill_tf.cli.<name> implements it.
SUBCOMMANDS = {
    "inpaint": "fill the holes of images with a trained model",
    "demo": "run the bundled demo end to end (what `make demo` runs)",
    "masks": "write a reproducible set of training masks as PNG files",
    "train": "train a model family from a YAML config (ours or the original inpaint.yml)",
    "convert": "convert checkpoints between our training runs and the original TF1 layout",
    "export": "export a SavedModel that TF Serving runs as it is",
    "evaluate": "score models and baselines on fixed mask suites: metrics, tables, plots",
    "ui": "serve a local web page to paint a hole (or a sketch) and inpaint it",
}


def quiet_tensorflow(before_first_op=None) -> None:
    """Import TensorFlow with its C++ start-up log lines silenced.

    TF 2.21 prints oneDNN/CUDA notices through absl before any log level applies, so stderr
    is pointed at /dev/null for the import and device start-up only. ``before_first_op`` runs
    after the import and before TensorFlow initialises its devices: the place to configure
    logical devices or a multi-worker strategy. Set DEEPFILL_TF_VERBOSE=1 to see the logs.
    """
    if os.environ.get("DEEPFILL_TF_VERBOSE") or "tensorflow" in sys.modules:
        import tensorflow  # noqa: F401

        if before_first_op:
            before_first_op()
        return
    # Level 2 still lets oneDNN notices and grappler's harmless "remapper failed" through.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")
        if before_first_op:
            before_first_op()
        tf.constant(0)  # device initialisation logs here too
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepfill-tf",
        description="DeepFill family image inpainting in TensorFlow 2 / Keras 3.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_text, description=help_text)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    command = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    if command is None:
        parser.parse_args(argv)  # prints help / usage error
        parser.print_help()
        return 2
    module = importlib.import_module(f"deepfill_tf.cli.{command}")
    sub_parser = argparse.ArgumentParser(
        prog=f"deepfill-tf {command}", description=SUBCOMMANDS[command]
    )
    module.add_arguments(sub_parser)
    args = sub_parser.parse_args(argv[1:])
    from deepfill_tf.errors import DeepfillError

    before = getattr(module, "before_tensorflow", None)
    try:
        quiet_tensorflow((lambda: before(args)) if before else None)
        return int(module.run(args) or 0)
    except DeepfillError as e:
        print(f"deepfill-tf {command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"deepfill-tf {command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
