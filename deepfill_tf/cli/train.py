"""``deepfill-tf train``: train any trainable family from a YAML config.

  deepfill-tf train --config CONFIG.yml [--set key=value ...] [--strategy auto]
                    [--logical-cpus N] [--max-iters N]

CONFIG is one of our configs (``configs/*.yml``, or a bare name such as
``deepfill_v2_tiny``) or an ORIGINAL generative_inpainting ``inpaint.yml``, unchanged. The
resolved config is written to ``log_dir/config.yml``; running the same command again resumes
from the latest checkpoint in ``log_dir``. SIGINT / SIGTERM save a checkpoint and stop (exit
code 128 + signal number).
"""

from __future__ import annotations

import argparse
import signal

from deepfill_tf.config import load_config
from deepfill_tf.errors import ConfigError

# Kept in step with deepfill_tf.training.strategy.STRATEGIES (not imported: --help must not
# import TensorFlow).
STRATEGY_CHOICES = ("auto", "mirrored", "multi_worker", "one_device")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        required=True,
        help="our YAML config (path or shipped name, e.g. deepfill_v2_tiny) or an original"
        " inpaint.yml",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        dest="overrides",
        metavar="KEY=VALUE",
        help="override a config key (repeatable), e.g. --set train_data=data/train.flist",
    )
    parser.add_argument(
        "--strategy",
        default="auto",
        choices=STRATEGY_CHOICES,
        help="distribution strategy (default auto: multi_worker if TF_CONFIG is set, else"
        " mirrored over the visible GPUs, or the CPU)",
    )
    parser.add_argument(
        "--logical-cpus",
        type=int,
        metavar="N",
        help="split the CPU into N logical devices (try distribution without GPUs)",
    )
    parser.add_argument(
        "--max-iters", type=int, metavar="N", help="train up to global step N (= --set max_iters=N)"
    )
    parser.add_argument(
        "--log-every",
        type=int,
        metavar="N",
        help="without a terminal: print a progress line every N steps (default min(val_psteps, 100))",
    )
    parser.add_argument(
        "--keep", type=int, default=5, metavar="N", help="checkpoints kept in log_dir (default 5)"
    )


def before_tensorflow(args) -> None:
    """Create the strategy before TensorFlow initialises its devices: logical CPUs and
    MultiWorkerMirroredStrategy must be set up before the first op."""
    # Loaded on use: it imports TensorFlow, which --help and the input checks must not wait for.
    from deepfill_tf.training.strategy import make_strategy

    args.strategy_object = make_strategy(args.strategy, args.logical_cpus)


def run(args) -> int:
    # Loaded on use: it imports TensorFlow, which --help and the input checks must not wait for.
    from deepfill_tf.training.loop import Trainer

    overrides = list(args.overrides)
    if args.max_iters is not None:
        overrides.append(f"max_iters={args.max_iters}")
    config = load_config(args.config, overrides)
    check_data_sources(config)
    if args.keep < 1:
        raise ConfigError(f"--keep must be >= 1, got {args.keep}")
    trainer = Trainer(config, args.strategy_object, max_to_keep=args.keep, log=_print)
    result = trainer.fit(log_every=args.log_every)
    if result.stopped_by in ("SIGINT", "SIGTERM"):
        return 128 + int(getattr(signal, result.stopped_by))
    return 0


def check_data_sources(config) -> None:
    """Fail early (one line) if ``train_data`` (or ``val_data`` with ``val``) is empty or
    missing, before any model is built. TFDS names are checked when the data is read."""
    # Loaded on use: it imports TensorFlow, which --help and the input checks must not wait for.
    from deepfill_tf.data.pipeline import resolve_source

    keys = ["train_data"] + (["val_data"] if config.val else [])
    for key in keys:
        source = getattr(config, key)
        if not source:
            raise ConfigError(
                f"key {key!r} is empty: give a .flist file, a folder or tfds:NAME"
                f" (e.g. --set {key}=data/train.flist)"
            )
        if source.startswith("tfds:"):
            continue
        try:
            resolve_source(source)
        except ConfigError as e:
            raise ConfigError(f"key {key!r}: {e}") from None


def _print(message: str) -> None:
    print(message, flush=True)
