#!/usr/bin/env python
"""Start-up of ``deepfill-tf inpaint``: process start to output file, and where it goes.

A script, not a test. For each size (default 256 and 512) it

1. runs the real command ``deepfill-tf inpaint --checkpoint C --image I --mask M --output O``
   ``--runs`` times in fresh processes and reports the wall time from process start (the
   moment before ``exec``) to exit with the output file written;
2. runs the same steps in an instrumented child (same argument parser, same calls, same
   order as ``deepfill_tf.cli.inpaint.run``) and splits that time into: interpreter start,
   TensorFlow import (``quiet_tensorflow``, as the CLI), package imports, checkpoint read,
   model build, weight assignment, reading the inputs, trace (first call minus a second,
   identical call), first run (= the second call), write.

Model: by default a DeepFill v2 generator at PUBLISHED width (cnum 48) with random Glorot
weights, written once as a TF1 checkpoint in a temporary folder (timing does not depend on
weight values); ``--checkpoint`` times another one (e.g. ``checkpoints/demo``, cnum 12).
Input: a random-noise RGB PNG and a PNG mask with a centred box of half the side.

Prints a table and writes JSON (default ``benchmarks/results/startup.json``), with the CPU
model and flags and the load average (the machine may be shared: read the figures with it).

Examples:
  python benchmarks/startup.py                       # 256 and 512, published width
  python benchmarks/startup.py --sizes 512 --runs 3 --checkpoint checkpoints/demo
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

T0_ENV = "DEEPFILL_STARTUP_T0"  # wall clock (time.time()) just before the child was started
_T0 = float(os.environ.get(T0_ENV, "nan"))
_T_FIRST_LINE = time.time()  # the child's first line of Python (imports above are stdlib)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchinfo  # noqa: E402  (the benchmarks' shared helpers, pure Python)

RESULT_MARKER = "@@STARTUP@@ "
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "startup.json"
PHASES = (
    ("interpreter", "process start -> first line of Python"),
    ("cli_import", "deepfill_tf.cli.inpaint (NumPy, Pillow) + argument parsing"),
    ("tensorflow_import", "import tensorflow + device start (quiet_tensorflow, as the CLI)"),
    ("package_import", "deepfill_tf inference/CLI modules"),
    ("checkpoint_read", "read every checkpoint variable into NumPy"),
    ("model_build", "build the Keras generator (detect family, create variables)"),
    ("weights_assign", "assign the variables (strict name/shape check)"),
    ("inputs_read", "read image + mask files"),
    ("trace", "tf.function trace + graph optimisation (first call - second call)"),
    ("first_run", "one forward on the image (= the second, identical call)"),
    ("write", "encode + write the output file atomically"),
    ("exit", "until the process is gone (the console script skips TensorFlow's tear-down)"),
)


# ----------------------------------------------------------------------------- child


def child(argv: list[str]) -> dict:
    """The steps of ``deepfill-tf inpaint`` with a clock between them (in the child)."""
    marks = {"interpreter": _T_FIRST_LINE - _T0}
    t = _T_FIRST_LINE

    def lap(name):
        nonlocal t
        now = time.time()
        marks[name] = now - t
        t = now

    from deepfill_tf.cli import inpaint as cli_inpaint
    from deepfill_tf.cli.main import quiet_tensorflow

    parser = argparse.ArgumentParser()
    cli_inpaint.add_arguments(parser)
    args = parser.parse_args(argv)
    lap("cli_import")
    quiet_tensorflow()
    lap("tensorflow_import")
    from deepfill_tf.cli.families import family_options
    from deepfill_tf.cli.hd_options import apply_attention_budget, hd_options
    from deepfill_tf.convert.tf1_checkpoint import load_tf1_checkpoint, read_tf1_checkpoint
    from deepfill_tf.inference.hd_strategy import BatchedInpainter, inpaint_hd
    from deepfill_tf.inference.inpainter import Inpainter
    from deepfill_tf.inference.io import read_image, read_mask, write_image
    from deepfill_tf.inference.loading import load_inpainter
    from deepfill_tf.registry import detect_spec, get_family

    lap("package_import")
    variables = read_tf1_checkpoint(args.checkpoint)
    lap("checkpoint_read")
    spec = detect_spec(variables)
    family = get_family(spec.family)
    generator = family.build_generator(spec)
    lap("model_build")
    load_tf1_checkpoint(generator, args.checkpoint, source=variables)
    options = family_options(args)
    inpainter = family.make_inpainter(generator, spec, **options) or Inpainter(
        generator, family=family, spec=spec, **options
    )
    lap("weights_assign")
    del load_inpainter  # the CLI's load_inpainter is exactly the three steps above
    hd = hd_options(args, inpainter.family)
    apply_attention_budget(args, inpainter)
    infer = BatchedInpainter(inpainter)
    image = read_image(args.image)
    mask = read_mask(args.mask, args.mask_channel, args.mask_threshold)
    inpainter.check(image, mask, {})
    lap("inputs_read")
    t1 = time.time()
    done = inpaint_hd(infer, image, mask, hd)
    first_call = time.time() - t1
    t2 = time.time()
    again = inpaint_hd(infer, image, mask, hd)
    second_call = time.time() - t2
    assert (again.image == done.image).all()
    marks["trace"] = first_call - second_call
    marks["first_run"] = second_call
    t = time.time()
    write_image(args.output, done.image, inputs=(args.image, args.mask))
    lap("write")
    import tensorflow as tf

    return {
        "phases_s": marks,
        "printed_at_s": time.time() - _T0,
        "spec": {"family": spec.family, **dict(spec.options)},
        "tensorflow": tf.__version__,
    }


# ----------------------------------------------------------------------------- parent


def make_published_checkpoint(folder: str) -> str:
    """A DeepFill v2 generator at published width (cnum 48), random weights, as a TF1
    checkpoint in ``folder``; returns its prefix."""
    code = (
        "import sys; from deepfill_tf.models.deepfill_generator import DeepFillV2Generator;"
        "from deepfill_tf.convert.tf1_checkpoint import tf1_variable_table, write_tf1_checkpoint;"
        "g = DeepFillV2Generator(cnum=48).build_for(64, 64);"
        "print(write_tf1_checkpoint("
        "{k: v.numpy() for k, v in tf1_variable_table(g).items()}, sys.argv[1]))"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-c", code, folder], capture_output=True, text=True, env=env
    )
    if proc.returncode:
        raise SystemExit(f"could not write the published-width checkpoint: {proc.stderr[-500:]}")
    return proc.stdout.strip().splitlines()[-1]


def make_inputs(folder: str, size: int) -> tuple[str, str]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(size)
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    mask = np.zeros((size, size), np.uint8)
    mask[size // 4 : size // 4 + size // 2, size // 4 : size // 4 + size // 2] = 255
    paths = (os.path.join(folder, f"image{size}.png"), os.path.join(folder, f"mask{size}.png"))
    Image.fromarray(image).save(paths[0])
    Image.fromarray(mask).save(paths[1])
    return paths


def cli_command() -> list[str]:
    exe = Path(sys.executable).with_name("deepfill-tf")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "deepfill_tf.cli.main"]


def time_cli(argv: list[str], output: str) -> dict:
    """Process start to exit of the real ``deepfill-tf inpaint``; the output must exist."""
    if os.path.exists(output):
        os.remove(output)
    env = {**os.environ}
    before = benchinfo.loadavg()
    t0 = time.perf_counter()
    proc = subprocess.run(cli_command() + ["inpaint", *argv], capture_output=True, text=True,
                          env=env)  # fmt: skip
    wall = time.perf_counter() - t0
    if proc.returncode or not os.path.exists(output):
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}"}
    return {"wall_s": wall, "loadavg_before": before, "loadavg_after": benchinfo.loadavg()}


def time_breakdown(argv: list[str]) -> dict:
    env = {**os.environ, T0_ENV: repr(time.time())}
    t0 = time.perf_counter()
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--", *argv]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    lines = [x for x in proc.stdout.splitlines() if x.startswith(RESULT_MARKER)]
    if proc.returncode or not lines:
        tail = [s for s in proc.stderr.strip().splitlines() if s.strip()] or ["no output"]
        return {"error": f"exit {proc.returncode}: {tail[-1][:300]}"}
    result = json.loads(lines[-1][len(RESULT_MARKER) :])
    result["phases_s"]["exit"] = max(0.0, wall - result["printed_at_s"])
    # the second (untimed by the CLI) call is not part of the CLI's path
    result["total_s"] = sum(result["phases_s"].values())
    return {**result, "child_wall_s": wall}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256,512", help="comma list of square sizes")
    parser.add_argument("--runs", type=int, default=3, help="CLI runs and breakdowns per size")
    parser.add_argument("--checkpoint", help="default: a random published-width v2 checkpoint")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(RESULT_MARKER + json.dumps(child(args.rest)), flush=True)
        sys.stderr.flush()
        os._exit(0)  # as the console script ends `inpaint` (deepfill_tf.cli.main.console)
    info = benchinfo.machine()
    print(benchinfo.header(info))
    print(f"load average at start: {benchinfo.loadavg()}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="deepfill_startup_") as tmp:
        checkpoint = args.checkpoint or make_published_checkpoint(os.path.join(tmp, "ckpt"))
        for size in [int(s) for s in args.sizes.split(",") if s.strip()]:
            image, mask = make_inputs(tmp, size)
            output = os.path.join(tmp, f"out{size}.png")
            cli_argv = ["--checkpoint", checkpoint, "--image", image, "--mask", mask]
            cli_argv += ["--output", output, "--quiet"]
            cli, parts = [], []
            for _ in range(args.runs):  # alternate: CLI, instrumented child
                cli.append(time_cli(cli_argv, output))
                parts.append(time_breakdown(cli_argv[:-1]))
            row = {"size": size, "cli_runs": cli, "breakdown_runs": parts}
            ok = [r["wall_s"] for r in cli if "error" not in r]
            row["cli_wall_s_median"] = statistics.median(ok) if ok else None
            good = [p for p in parts if "error" not in p]
            if good:
                row["phases_s_median"] = {
                    name: statistics.median(p["phases_s"][name] for p in good) for name, _ in PHASES
                }
                row["breakdown_total_s_median"] = statistics.median(p["total_s"] for p in good)
            rows.append(row)
            print_row(row)
    report = {
        "benchmark": "startup",
        "machine": info,
        "checkpoint": args.checkpoint or "random DeepFill v2, cnum 48 (published width)",
        "phases": dict(PHASES),
        "results": rows,
        "loadavg_end": benchinfo.loadavg(),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n")
    print(f"load average at end: {benchinfo.loadavg()}; wrote {args.output}")
    return 0 if all(r["cli_wall_s_median"] for r in rows) else 1


def print_row(row: dict) -> None:
    size = row["size"]
    cli = row["cli_wall_s_median"]
    errors = [r["error"] for r in row["cli_runs"] + row["breakdown_runs"] if "error" in r]
    print(f"\n{size}x{size}: deepfill-tf inpaint, process start -> output file:"
          f" median {'-' if cli is None else f'{cli:.2f} s'} over {len(row['cli_runs'])} runs"
          f" (load {row['cli_runs'][-1].get('loadavg_after')})")  # fmt: skip
    for e in errors:
        print(f"  error: {e}")
    phases = row.get("phases_s_median")
    if not phases:
        return
    total = row["breakdown_total_s_median"]
    print(f"  instrumented run, median of {len(row['breakdown_runs'])}: {total:.2f} s")
    for name, what in PHASES:
        share = 100 * phases[name] / total if total else 0
        print(f"    {name:18s} {phases[name]:6.2f} s {share:4.0f} %  {what}")


if __name__ == "__main__":
    sys.exit(main())
