"""``deepfill-tf evaluate``: models and baselines on images x fixed mask suites -> report.

  deepfill-tf evaluate --checkpoint checkpoints/demo --model opencv_telea --model mean_fill \\
      --data 'examples/train/*_256.jpg' --masks box freeform irregular --size 256 \\
      --output out/eval
  deepfill-tf evaluate --compare out/eval_a out/eval_b [--output out/compare]

``--checkpoint PATH`` (repeatable) adds a model of any registered family (detected);
``--model NAME`` (repeatable) adds a baseline (``opencv_telea``, ``opencv_ns``,
``mean_fill``) or, when it names a family, insists on that family for the checkpoints (one
family for all, or one per ``--checkpoint`` in order). ``--masks`` takes suite folders
(verified against their manifest) or suite names, generated with ``--seed`` into
``OUTPUT/masks/NAME``. The report (results.json, results.csv, summary.md, plots, contact
sheets) appears at the end; ``OUTPUT/evaluate.resume.jsonl`` holds the partial results of
an interrupted run, which the same command resumes. See docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy

from deepfill_tf.errors import ConfigError, InputError
from deepfill_tf.evaluation import report, runner
from deepfill_tf.evaluation.metrics import InceptionFeatures, fid_from_features
from deepfill_tf.evaluation.report import compare_reports
from deepfill_tf.evaluation.runner import BASELINES, baseline_method, load_model_method
from deepfill_tf.evaluation.suites import SUITES, generate_suite, load_suite, write_suite
from deepfill_tf.fileio import write_atomic


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="PATH",
        help="model checkpoint (folder or prefix) of any family; repeatable",
    )
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME",
        help="baseline opencv_telea | opencv_ns | mean_fill, or the family the checkpoint(s) "
        "must hold; repeatable",
    )
    parser.add_argument("--data", help="image folder, .flist, glob, or tfds:NAME[:SPLIT]")
    parser.add_argument(
        "--masks",
        nargs="+",
        metavar="SUITE",
        help="suite folders (with manifest.json) or names: box center freeform irregular "
        "thin medium thick",
    )
    parser.add_argument(
        "--mask-count",
        type=int,
        metavar="N",
        help="masks per generated suite (irregular: per bucket and border class); default: "
        "as many as images (irregular: enough to cover them, at least 1)",
    )
    parser.add_argument("--size", type=int, default=256, help="square side in pixels (256)")
    parser.add_argument(
        "--resize-mode",
        choices=["crop", "scale-crop", "resize"],
        default="crop",
        help="crop: centred window (default); scale-crop: shorter side to --size, then centred "
        "window; resize: whole image to --size x --size",
    )
    parser.add_argument("--output", help="report folder (created)")
    parser.add_argument(
        "--raw",
        action="store_true",
        help="also score the raw network output (raw_* columns), not only the composite",
    )
    parser.add_argument(
        "--compare", nargs="+", metavar="DIR", help="put these report folders side by side"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of generated suites (0)")
    parser.add_argument(
        "--inception-weights",
        metavar="FILE",
        help="local Keras InceptionV3 (include_top=False) weights: turns FID on",
    )
    parser.add_argument("--batch-size", type=int, default=4, help="pairs per batch (4)")


def _software() -> dict:
    # Loaded on use: it imports TensorFlow, which --help and the input checks must not wait for.
    import tensorflow

    try:
        from importlib.metadata import version

        ours = version("deepfill_tf")
    except Exception:  # noqa: BLE001
        ours = "unknown"
    return {
        "deepfill_tf": ours,
        "tensorflow": tensorflow.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }


def _compare(args) -> int:
    text = compare_reports(args.compare)
    print(text, end="")
    if args.output:
        os.makedirs(args.output, exist_ok=True)
        write_atomic(os.path.join(args.output, "compare.md"), text)
    return 0


def _methods(args):
    baselines = [m for m in args.model if m in BASELINES]
    families = [m for m in args.model if m not in BASELINES]
    if families and not args.checkpoint:
        raise ConfigError(
            f"--model {families[0]} is not a baseline ({', '.join(BASELINES)}) and no "
            "--checkpoint was given for it"
        )
    if len(families) not in (0, 1, len(args.checkpoint)):
        raise ConfigError(
            f"{len(families)} family --model values for {len(args.checkpoint)} checkpoints: "
            "give one for all, or one per --checkpoint"
        )
    methods = []
    for i, ckpt in enumerate(args.checkpoint):
        family = families[i] if len(families) > 1 else (families[0] if families else "auto")
        methods.append(load_model_method(ckpt, family))
    methods += [baseline_method(b) for b in baselines]
    names = [m.name for m in methods]
    for i, m in enumerate(methods):  # two checkpoints with the same folder name
        if names.count(m.name) > 1:
            m.name = f"{m.name}#{i}"
    return methods


def _suites(args, n_images: int):
    suites, generated = [], []
    for spec in args.masks:
        if os.path.isdir(spec):
            suites.append(load_suite(spec, args.size))
        elif spec in SUITES:
            count = args.mask_count or (
                max(1, -(-n_images // 12)) if spec == "irregular" else n_images
            )
            suite = generate_suite(spec, args.size, count, args.seed)
            suites.append(suite)
            generated.append(suite)
        else:
            raise InputError(
                f"--masks {spec}: neither a suite folder nor a suite name ({', '.join(SUITES)})"
            )
    names = [s.name for s in suites]
    if len(set(names)) != len(names):
        raise ConfigError(f"--masks lists suite {names[0]!r} twice; give each suite once")
    return suites, generated


def check_inputs(args) -> None:
    """Cheap checks of flags and paths, before TensorFlow is imported (also run by ``run``)."""

    if args.compare:
        for folder in args.compare:
            if not os.path.isfile(os.path.join(folder, "results.json")):
                raise InputError(f"--compare {folder}: no results.json (not an evaluation report)")
        return
    for flag in ("data", "masks", "output"):
        if not getattr(args, flag):
            raise ConfigError(f"--{flag} is required (or use --compare DIR ...)")
    if not args.checkpoint and not args.model:
        raise ConfigError("give at least one --checkpoint or --model baseline")
    if args.size < 16:
        raise ConfigError(f"--size must be at least 16, got {args.size}")
    if args.mask_count is not None and args.mask_count < 1:
        raise ConfigError(f"--mask-count must be at least 1, got {args.mask_count}")
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {args.batch_size}")
    if os.path.exists(args.output) and not os.path.isdir(args.output):
        raise InputError(f"--output {args.output} exists and is not a folder")
    for spec in args.masks:
        if not os.path.isdir(spec) and spec not in SUITES:
            raise InputError(
                f"--masks {spec}: neither a suite folder nor a suite name ({', '.join(SUITES)})"
            )
    if args.inception_weights and not os.path.isfile(args.inception_weights):
        raise InputError(
            f"--inception-weights {args.inception_weights}: no such file (FID needs a local "
            "Keras InceptionV3 weights file; nothing is downloaded)"
        )


def run(args) -> int:
    check_inputs(args)
    if args.compare:
        return _compare(args)

    # Loaded on use: it imports TensorFlow, which --help and the input checks must not wait for.
    import numpy as np

    # Everything that can be wrong is checked before anything is written.
    features = InceptionFeatures(args.inception_weights) if args.inception_weights else None
    data = runner.open_data(args.data, args.size)
    suites, generated = _suites(args, len(data.names))
    methods = _methods(args)

    os.makedirs(args.output, exist_ok=True)
    for suite in generated:
        write_suite(suite, os.path.join(args.output, "masks", suite.name))
    settings = {
        "data": args.data,
        "data_sha256": data.fingerprint(),
        "images": len(data.names),
        "size": args.size,
        "resize_mode": args.resize_mode,
        "seed": args.seed,
        "raw": bool(args.raw),
        "batch_size": args.batch_size,
        "suites": {s.name: s.set_sha256 for s in suites},
        "methods": {m.name: m.checkpoint_sha256 or m.label for m in methods},
        "fid": bool(features),
    }
    start = time.time()
    result = runner.run_evaluation(
        data=data,
        suites=suites,
        methods=methods,
        size=args.size,
        resize_mode=args.resize_mode,
        output=args.output,
        batch_size=args.batch_size,
        raw=args.raw,
        features=features,
        settings=settings,
    )
    wall = time.time() - start
    records = result["records"]
    aggregates = report.aggregate(records)

    fid, fid_network = {}, None
    if features is not None:
        fid_network = features.label
        for suite in suites:
            real = result["features"].get((suite.name, "__real__"))
            if real is None or len(real) < 2:
                continue
            for m in methods:
                fake = result["features"][(suite.name, m.name)]
                fid.setdefault(suite.name, {})[m.name] = fid_from_features(fake, real)

    sheets = {}
    ref = next((m for m in methods if m.kind == "model"), methods[0])
    for suite in suites:
        rows = sorted(
            (r for r in records if r["suite"] == suite.name and r["method"] == ref.name),
            key=lambda r: (-(r["psnr_hole"] if np.isfinite(r["psnr_hole"]) else -1e9), r["pair"]),
        )
        if not rows:
            continue
        picks = [("best", rows[0]), ("median", rows[len(rows) // 2]), ("worst", rows[-1])]
        cases = []
        for label, r in picks:
            image, mask, outs = runner.pair_outputs(
                data, suite, methods, r["pair"], args.size, args.resize_mode
            )
            cases.append((f"{label}\n{r['psnr_hole']:.1f} dB", image, mask, outs, r))
        sheets[suite.name] = report.contact_sheet(cases, [m.name for m in methods])

    total = sum(result["pairs_per_method"].values())
    results = {
        "format": "deepfill_tf evaluation report",
        "command": " ".join(["deepfill-tf", *sys.argv[1:]]),
        "arguments": dict(vars(args)),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "software": _software(),
        "settings": {**settings, "pairing": "pair k = image k mod I, mask k mod M, k < max(I, M)"},
        "suites": {
            s.name: {
                "version": s.version,
                "directory": s.directory,
                "masks": len(s.entries),
                "pairs": result["pairs_per_method"][s.name],
                "seed": s.seed,
                "parameters": s.parameters,
                "set_sha256": s.set_sha256,
            }
            for s in suites
        },
        "methods": {m.name: m.describe() for m in methods},
        "metrics": {
            k: {"higher_is_better": v[0], "unit": v[1], "definition": v[2]}
            for k, v in report.METRICS.items()
        },
        "aggregates": aggregates,
        "fid": fid,
        "fid_network": fid_network,
        "timing": {
            "images_per_second": {
                m.name: total / s if s > 0 else float("nan")
                for m, s in ((m, result["seconds"][m.name]) for m in methods)
            },
            "inference_seconds": result["seconds"],
            "pairs_evaluated": total * len(methods),
            "wall_seconds": wall,
            "overall_per_second": total * len(methods) / max(wall, 1e-9),
            "note": "images_per_second: batched inference only, summed over all batches "
            "(also those of an earlier, resumed run); wall time: this invocation",
        },
    }
    files = report.write_report(args.output, results, records, sheets)
    runner.clear_resume(args.output)
    print(f"wrote {', '.join(files)} to {args.output}")
    return 0
