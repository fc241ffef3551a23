"""Serving latency: the exported SavedModel's signatures vs the in-process model.

For each size, times (batch 1, median of ``--repeats`` runs after ``--warmup`` runs; the three
paths take turns so that load from other processes hits them alike):
  * ``in_process``: ``Inpainter`` (what ``deepfill-tf inpaint`` runs: uint8 arrays in and out);
  * ``serving_default``: the loaded SavedModel, PNG bytes in, PNG bytes out (decode + encode);
  * ``inpaint_tensors``: the loaded SavedModel, uint8 tensors in and out.
Prints a table and writes JSON (default ``benchmarks/results/serving.json``).

  python benchmarks/serving.py                # published width (cnum 48), 256 and 512: slow
  python benchmarks/serving.py --tiny         # tiny model (cnum 8), 64 and 128: seconds
  python benchmarks/serving.py --checkpoint CKPT

Weights are random unless ``--checkpoint`` is given (latency does not depend on them). On a
shared 2-core machine other processes inflate every number; compare rows of the same run.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny model at 64 and 128 px")
    parser.add_argument("--checkpoint", help="original-layout checkpoint (default: random weights)")
    parser.add_argument("--model", default="deepfill_v2", choices=["deepfill_v1", "deepfill_v2"])
    parser.add_argument("--sizes", type=int, nargs="+", help="square sizes (default 256 512)")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per case (>= 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs per case first")
    parser.add_argument("--output", default=os.path.join(HERE, "results", "serving.json"))
    args = parser.parse_args(argv)
    if args.repeats < 5:
        parser.error("--repeats must be at least 5")
    if args.sizes is None:
        args.sizes = [64, 128] if args.tiny else [256, 512]
    return args


def _generator(args):
    if args.checkpoint:
        from deepfill_tf.inference.loading import load_generator

        return load_generator(args.checkpoint, args.model)[0]
    from deepfill_tf.models.deepfill_generator import DeepFillV1Generator, DeepFillV2Generator

    cls = DeepFillV2Generator if args.model == "deepfill_v2" else DeepFillV1Generator
    return (cls.tiny() if args.tiny else cls()).build_for(64, 64)


def _inputs(size: int):
    """A smooth (size, size, 3) uint8 image and a (size, size) float32 hole mask (box)."""
    from PIL import Image

    rng = np.random.default_rng(size)
    coarse = rng.integers(0, 256, (size // 16 + 2, size // 16 + 2, 3), dtype=np.uint8)
    image = np.asarray(Image.fromarray(coarse).resize((size, size), Image.BILINEAR))
    mask = np.zeros((size, size), np.float32)
    mask[size // 4 : size // 2, size // 3 : 2 * size // 3] = 1
    return image, mask


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _time_interleaved(cases: dict, warmup: int, repeats: int) -> dict[str, list[float]]:
    """Milliseconds per run of each case. The cases take turns (one run of each per round), so
    a burst of load from another process hits all of them alike."""
    for fn in cases.values():
        for _ in range(warmup):
            fn()
    runs = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            runs[name].append((time.perf_counter() - start) * 1000.0)
    return runs


def main(argv=None) -> int:
    args = _parse(argv)
    load_at_start = round(os.getloadavg()[0], 2)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from deepfill_tf.export.saved_model import (
        BYTES_SIGNATURE,
        TENSORS_SIGNATURE,
        export_saved_model,
    )
    from deepfill_tf.inference.inpainter import Inpainter

    generator = _generator(args)
    inpainter = Inpainter(generator)
    with tempfile.TemporaryDirectory(prefix="deepfill_serving_bench_") as tmp:
        start = time.perf_counter()
        path = export_saved_model(generator, tmp)
        export_s = time.perf_counter() - start
        start = time.perf_counter()
        loaded = tf.saved_model.load(path)
        load_s = time.perf_counter() - start
        serve_bytes = loaded.signatures[BYTES_SIGNATURE]
        serve_tensors = loaded.signatures[TENSORS_SIGNATURE]

        results = []
        for size in args.sizes:
            image, mask = _inputs(size)
            image_bytes = tf.constant([_png(image)])
            mask_bytes = tf.constant([_png((mask * 255).astype(np.uint8))])
            image_t = tf.constant(image[None])
            mask_t = tf.constant((mask[None, ..., None] * 255).astype(np.uint8))
            cases = {
                "in_process": lambda image=image, mask=mask: inpainter(image, mask),
                BYTES_SIGNATURE: lambda a=image_bytes, b=mask_bytes: serve_bytes(
                    image_bytes=a, mask_bytes=b
                )["output_bytes"].numpy(),
                TENSORS_SIGNATURE: lambda a=image_t, b=mask_t: serve_tensors(image=a, mask=b)[
                    "output"
                ].numpy(),
            }
            for name, runs in _time_interleaved(cases, args.warmup, args.repeats).items():
                results.append(
                    {
                        "size": size,
                        "path": name,
                        "median_ms": round(statistics.median(runs), 2),
                        "min_ms": round(min(runs), 2),
                        "max_ms": round(max(runs), 2),
                        "runs_ms": [round(r, 2) for r in runs],
                    }
                )
                print(f"  {size}x{size} {name}: {statistics.median(runs):.1f} ms", file=sys.stderr)

    report = {
        "config": {
            "model": args.model,
            "cnum": int(generator.cnum),
            "tiny": bool(args.tiny),
            "checkpoint": args.checkpoint,
            "batch": 1,
            "repeats": args.repeats,
            "warmup": args.warmup,
            "export_s": round(export_s, 2),
            "load_s": round(load_s, 2),
        },
        "environment": {
            "tensorflow": tf.__version__,
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "load_average_1m_at_start": load_at_start,
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),
            "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
        },
        "results": results,
    }
    _print_table(report)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    print(f"wrote {args.output}")
    return 0


def _print_table(report) -> None:
    cfg = report["config"]
    print(
        f"{cfg['model']} cnum {cfg['cnum']}, batch 1, median of {cfg['repeats']} after "
        f"{cfg['warmup']} warm-up runs (ms); export {cfg['export_s']} s, load {cfg['load_s']} s"
    )
    env = report["environment"]
    print(
        f"TF {env['tensorflow']}, {env['cpu_count']} CPUs, 1-min load average "
        f"{env['load_average_1m_at_start']} at start, {env['load_average_1m_at_end']} at end"
    )
    paths = list(dict.fromkeys(r["path"] for r in report["results"]))
    print(f"{'size':>9} | " + " | ".join(f"{p:>16}" for p in paths) + " | serving/in-process")
    for size in dict.fromkeys(r["size"] for r in report["results"]):
        row = {r["path"]: r["median_ms"] for r in report["results"] if r["size"] == size}
        cells = " | ".join(f"{row[p]:>16.1f}" for p in paths)
        ratios = ", ".join(f"{row[p] / row['in_process']:.2f}" for p in paths[1:])
        print(f"{size:>4}x{size:<4} | {cells} | {ratios}")


if __name__ == "__main__":
    sys.exit(main())
