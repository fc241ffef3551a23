"""Entry point of the ``deepfill-tf`` console script.

Every subcommand lives in its own module ``deepfill_tf/cli/<name>.py`` defining
``add_arguments(parser)`` and ``run(args) -> int``, and optionally ``check_inputs(args)`` (run
before TensorFlow is imported: cheap checks of paths and sizes, so a typo is reported at once)
and ``before_tensorflow(args)`` (run before TensorFlow initialises its devices). Modules are
imported only when their subcommand runs, so ``deepfill-tf --help`` does not import TensorFlow.

Errors caused by bad input (``DeepfillError``) are printed as one line
``deepfill-tf <cmd>: error: ...`` with exit code 1; usage errors exit with 2 (argparse). Any
other exception is caught here too and printed as one line naming the command, the file and
the cause (exit 1); ``--verbose`` (any subcommand) or ``DEEPFILL_TF_VERBOSE=1`` prints the
traceback as well. Running out of memory gets a message that says what to do.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from deepfill_tf.errors import DeepfillError
from deepfill_tf.native import native_enabled

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
    if verbose_requested() or "tensorflow" in sys.modules:
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
    # Loaded on use: it imports TensorFlow, which --help and the input checks must not wait for.
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


# Argument names that hold the file(s) a command works on, most specific first: the one a
# catch-all message names.
_FILE_ARGS = ("image", "flist", "input_dir", "config", "checkpoint", "output", "output_dir")
# What to do when memory runs out, by command.
_OOM_ADVICE = {
    "inpaint": "use a smaller image, or --hd-strategy crop / resize (see --help)",
    "train": "lower batch_size or img_shapes in the config (--set batch_size=...)",
    "export": "close other programs or export on a machine with more memory",
}


def verbose_requested(args=None) -> bool:
    """``--verbose`` was given or ``DEEPFILL_TF_VERBOSE`` is set (to anything but 0 / empty)."""
    env = os.environ.get("DEEPFILL_TF_VERBOSE", "")
    return bool(getattr(args, "verbose", False)) or env not in ("", "0")


def _main_file(args) -> str | None:
    for name in _FILE_ARGS:
        value = getattr(args, name, None)
        if isinstance(value, str) and value:
            return value
    return None


def _is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, MemoryError):
        return True
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(error, tf.errors.ResourceExhaustedError):
        return True
    text = str(error)
    return "OOM when allocating" in text or "out of memory" in text.lower()


def describe_unexpected(command: str, args, error: BaseException) -> str:
    """One line for an exception that is not a ``DeepfillError``: the file, the cause, the hint.

    ``OSError`` s name their own file; otherwise the command's main input (``--image``,
    ``--config``, ``--checkpoint``, ...) is named. Multi-line messages (TensorFlow's) are
    reduced to their first line.
    """
    where = _main_file(args)
    if _is_out_of_memory(error):
        advice = _OOM_ADVICE.get(command, "try a smaller input")
        on = f" on {where}" if where else ""
        return f"out of memory{on}: {advice}"
    if isinstance(error, OSError) and error.filename:
        cause = f"{error.filename}: {error.strerror or error}"
    else:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        first = lines[0] if lines else ""
        if len(first) > 300:
            first = first[:297] + "..."
        cause = f"{type(error).__name__}: {first}" if first else type(error).__name__
        if where:
            cause = f"{where}: {cause}"
    hint = "" if verbose_requested(args) else " (run with --verbose for the traceback)"
    return f"unexpected error: {cause}{hint}"


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
    sub_parser.add_argument(
        "--verbose",
        action="store_true",
        help="on an unexpected error, print the traceback too (or set DEEPFILL_TF_VERBOSE=1)",
    )
    args = sub_parser.parse_args(argv[1:])

    before = getattr(module, "before_tensorflow", None)
    check = getattr(module, "check_inputs", None)
    try:
        native_enabled()  # a bad DEEPFILL_TF_NATIVE fails here, before any work
        if check:
            check(args)
        quiet_tensorflow((lambda: before(args)) if before else None)
        return int(module.run(args) or 0)
    except DeepfillError as e:
        message = " ".join(str(e).split("\n"))
        print(f"deepfill-tf {command}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"deepfill-tf {command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # the catch-all: one line, never a bare traceback
        if verbose_requested(args):
            traceback.print_exc()
        print(
            f"deepfill-tf {command}: error: {describe_unexpected(command, args, e)}",
            file=sys.stderr,
        )
        return 1


def console() -> None:
    """The ``deepfill-tf`` console script: ``main()``, then the process exits.

    A command module that sets ``FAST_EXIT = True`` (its outputs are complete, closed files
    once ``run`` returns, e.g. ``inpaint``) exits without TensorFlow's interpreter tear-down,
    which takes about a second and writes nothing.
    """
    code = main()
    argv = sys.argv[1:]
    module = sys.modules.get(f"deepfill_tf.cli.{argv[0]}") if argv else None
    if getattr(module, "FAST_EXIT", False):
        import logging

        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    console()
