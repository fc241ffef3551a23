#!/usr/bin/env python
"""Training benchmark of DeepFill v2 and v1: step time against the original, same run.

A script, not a test. It prints a table and writes JSON (default
``benchmarks/results/training.json``). Every measurement runs in its own child process.

What is timed, ours: the loop's own compiled steps (``Trainer.d_step`` / ``Trainer.g_step``)
under the strategy ``deepfill-tf train`` picks (``--strategy auto``), at published widths
(v2 cnum 48, v1 cnum 32, discriminators 64), 256x256, batch 4, on a fixed random batch (no
image decoding) with the steps' own random masks. One iteration is what the original runs
per step: v2 one D step + one G step, v1 five D steps + one G step. Each step's metrics are
fetched to NumPy inside the timed region. ``--warmup`` iterations (the first traces), then
``--iterations`` timed ones; medians are reported.

The original: with ``--original-python`` and mirrors of JiahuiYu/generative_inpainting and
JiahuiYu/neuralgym (``--original-repo`` / ``--neuralgym-repo`` or DEEPFILL_REPO /
NEURALGYM_REPO), the original train.py graphs (TF1 under ``tf.compat.v1``, extracted at run
time by the shared ``original_bench`` tool's ``tf1_shim``) are timed in the same run, with the
recipe of that tool's ``train:v2`` case for both versions (``child_original``: v2
``sess.run(d_train_op)`` then ``sess.run([g_train_op, g_loss])``; v1 five D runs, then one G
run, Adam(beta1 0.5, beta2 0.9) as v1's train.py). Ours and the original alternate (``--rounds``; the order flips every
round) and the ratio ours / original of the medians is printed per model, for the whole
iteration and for D and G separately. Without the original the script prints absolute
figures and says that no ratio was measured: there is no stored anchor, since speed differs
from one machine of this kind to the next.

Load: the machine may be shared. Each run records the load average before and after, the
CPU seconds per timed iteration (``cpu s/it``: the work done, which other processes inflate
far less than the wall time; ``cpu x`` is ours over the original's) and ``cpu/wall`` of the
timed iterations (2.0 = both of 2 cores busy the whole time; well below 2 on an idle machine
means serial sections). The JSON also has the same for each child process as a whole
(``process_cpu_over_wall``, start-up included).

Examples:
  python benchmarks/training.py --tiny                      # smoke run, ours only
  python benchmarks/training.py --models v2 --iterations 3  # absolute figures only
  DEEPFILL_REPO=... NEURALGYM_REPO=... python benchmarks/training.py \\
      --original-python ../orig-venv/bin/python --rounds 2  # ratios against the original
  python benchmarks/training.py --baseline /tmp/old         # also time the deepfill_tf in
                                                            # /tmp/old (e.g. git archive)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchinfo  # noqa: E402  (the benchmarks' shared helpers, pure Python)

RESULT_MARKER = "@@TRAIN_BENCH@@ "
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "training.json"
PUBLISHED_CNUM = {"v1": 32, "v2": 48}
D_STEPS = {"v1": 5, "v2": 1}
TARGET_RATIO = 0.8  # issue 16: v2 iteration <= 0.8x the original's


# ----------------------------------------------------------------------------- ours


def child_ours(args) -> dict:
    """Build the trainer, time the steps, return the result dict (in the child process)."""
    from deepfill_tf.training.strategy import describe_strategy, make_strategy

    strategy = make_strategy(args.strategy)
    import numpy as np
    import tensorflow as tf

    import deepfill_tf
    from deepfill_tf.config import load_config
    from deepfill_tf.training.loop import Trainer

    model = f"deepfill_{args.one}"
    size, batch = (64, 2) if args.tiny else (args.size, args.batch)
    overrides = [
        f"img_shapes=[{size}, {size}, 3]",
        f"height={size // 2}",
        f"width={size // 2}",
        f"max_delta_height={size // 8}",
        f"max_delta_width={size // 8}",
        f"batch_size={batch}",
    ]
    if not args.tiny:  # published widths (the tiny configs are tiny in width and size)
        overrides += [f"cnum={PUBLISHED_CNUM[args.one]}", "disc_cnum=64"]
    with tempfile.TemporaryDirectory(prefix="deepfill_bench_") as tmp:
        config = load_config(model + "_tiny", [f"log_dir={tmp}", *overrides])
        trainer = Trainer(config, strategy, log=lambda m: None)
        images = tf.random.stateless_uniform((batch, size, size, 3), [0, 1], -1.0, 1.0)
        dist = trainer.strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensors(images).repeat()
        )
        iterator = iter(dist)
        d_steps = int(trainer.task.d_steps)
        records, counter = [], 0
        for i in range(args.warmup + args.iterations):
            if i == args.warmup:
                r0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            d_times = []
            for _ in range(d_steps):
                t = time.perf_counter()
                values = trainer.d_step(next(iterator), trainer.seed(counter))
                {k: v.numpy() for k, v in values.items()}
                d_times.append(time.perf_counter() - t)
                counter += 1
            t = time.perf_counter()
            values = trainer.g_step(next(iterator), trainer.seed(counter))
            {k: v.numpy() for k, v in values.items()}
            g_time = time.perf_counter() - t
            counter += 1
            if i >= args.warmup:
                records.append((d_times, g_time))
        r1, w1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return _summary(records, args.one, size, batch, d_steps, cpu, w1 - w0, r1) | {
        "cnum": config.cnum,
        "disc_cnum": config.disc_cnum,
        "strategy": describe_strategy(strategy),
        "package": os.path.dirname(deepfill_tf.__file__),
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
    }


# ----------------------------------------------------------------------------- original


def child_original(args) -> dict:
    """The original train.py step of v1 or v2 (runs under the ORIGINAL's interpreter).

    The recipe of the shared tool's ``train:v2`` case, for both versions:
    ``build_graph_with_losses`` for the variables, then the D and the G graphs through
    train.py's own ``multigpu_graph_def`` (the D callback is built first, as train.py adds it
    first), one shared ``AdamOptimizer`` (lr 1e-4, beta1 0.5, beta2 0.999 for v2 / 0.9 for
    v1, as each train.py), v2's gradients through neuralgym's ``average_gradients`` (its
    MultiGPU trainers); an iteration is ``d_steps`` ``sess.run`` of the D train op (v2 1,
    v1 5: neuralgym's secondary trainer) then one of ``[g_train_op, g_loss]``. Masks come
    from the original's own mask functions every step; images are a constant random batch
    instead of the file queue. Timed here (rather than by the tool) to get D and G per step
    and the CPU time of the timed iterations.
    """
    sys.path.insert(0, args.original_bench_shim)
    import numpy as np
    import tf1_shim

    tf = tf1_shim.v1
    version = args.original_one
    original = tf1_shim.load_original(f"{version}.0.0", with_train=True)
    model = original.inpaint_model.InpaintCAModel()
    size, batch = args.size, args.batch
    config = original.config()
    sizes = {
        "batch_size": batch,
        "img_shapes": [size, size, 3],
        "height": size // 2,
        "width": size // 2,
        "max_delta_height": size // 8,
        "max_delta_width": size // 8,
    }  # v1's inpaint.yml spells its keys in capitals
    config._cfg_dict.update({k.upper() if version == "v1" else k: v for k, v in sizes.items()})
    rng = np.random.default_rng(0)
    images = tf.constant(rng.integers(0, 256, (batch, size, size, 3)).astype(np.float32))

    class FixedBatch:  # stands in for neuralgym's DataFromFNames
        def data_pipeline(self, batch_size):
            return images

    data = FixedBatch()
    if version == "v1":
        g_vars, d_vars, _ = model.build_graph_with_losses(images, config)
    else:
        g_vars, d_vars, _ = model.build_graph_with_losses(config, images)
    lr = tf.get_variable("lr", shape=[], trainable=False, initializer=tf.constant_initializer(1e-4))
    optimizer = tf.train.AdamOptimizer(lr, beta1=0.5, beta2=0.9 if version == "v1" else 0.999)
    train_ops = {}
    for kind, var_list in (("d", d_vars), ("g", g_vars)):
        with tf.variable_scope(tf.get_variable_scope(), reuse=True):
            if version == "v1":
                loss = original.train.multigpu_graph_def(
                    model, data, config, gpu_id=0, loss_type=kind
                )
                grads = optimizer.compute_gradients(loss, var_list)
            else:
                loss = original.train.multigpu_graph_def(
                    model, config, data, gpu_id=0, loss_type=kind
                )
                average = original.ng.ops.train_ops.average_gradients
                grads = average([optimizer.compute_gradients(loss, var_list)])
        train_ops[kind] = (optimizer.apply_gradients(grads), loss)
    sess = tf.Session(config=tf.ConfigProto())
    sess.run(tf.global_variables_initializer())
    records = []
    for i in range(args.warmup + args.iterations):
        if i == args.warmup:
            r0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        d_times = []
        for _ in range(D_STEPS[version]):
            t = time.perf_counter()
            sess.run(train_ops["d"][0])
            d_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        sess.run([train_ops["g"][0], train_ops["g"][1]])
        g_time = time.perf_counter() - t
        if i >= args.warmup:
            records.append((d_times, g_time))
    r1, w1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return _summary(records, version, size, batch, D_STEPS[version], cpu, w1 - w0, r1) | {
        "tensorflow": tf.__version__
    }


def _summary(records, model, size, batch, d_steps, cpu, wall, usage) -> dict:
    """Medians of per-iteration records [(d step times, g time)] (both sides alike)."""
    iterations = [sum(d) + g for d, g in records]
    return {
        "model": model,
        "size": size,
        "batch": batch,
        "d_steps": d_steps,
        "iterations": len(records),
        "d_step_s": statistics.median(t for d, _ in records for t in d) if d_steps else None,
        "d_total_s": statistics.median(sum(d) for d, _ in records),
        "g_step_s": statistics.median(g for _, g in records),
        "iteration_s": statistics.median(iterations),
        "iteration_s_all": [round(t, 3) for t in iterations],
        "timed_cpu_over_wall": cpu / wall,
        "cpu_s_per_iteration": cpu / len(records),
        "peak_rss_mb": usage.ru_maxrss / 1024.0,
    }


def run_original(model: str, args, bench: benchinfo.OriginalBench) -> dict:
    cmd = [bench.python, os.path.abspath(__file__), "--original-one", model]
    cmd += ["--size", str(args.size), "--batch", str(args.batch)]
    cmd += ["--iterations", str(args.iterations), "--warmup", str(args.warmup)]
    cmd += ["--original-bench-shim", bench.shim_dir]
    return {"side": "original", **benchinfo.run_child(cmd, RESULT_MARKER, bench.env())}


def run_ours(model: str, args, side: str = "ours", pythonpath: str | None = None) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--one", model, "--strategy", args.strategy]
    cmd += ["--size", str(args.size), "--batch", str(args.batch)]
    cmd += ["--iterations", str(args.iterations), "--warmup", str(args.warmup)]
    if args.tiny:
        cmd.append("--tiny")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return {"side": side, "model": model, **benchinfo.run_child(cmd, RESULT_MARKER, env)}


# ----------------------------------------------------------------------------- report


def _median(rows, key):
    values = [r[key] for r in rows if r.get(key) is not None and "error" not in r]
    return statistics.median(values) if values else None


def summarise(rows: list[dict], models: list[str], sides: list[str]) -> list[dict]:
    """Per model and side: medians over rounds; ratios of ours (and baseline) to original."""
    out = []
    for model in models:
        by_side = {}
        for side in sides:
            mine = [r for r in rows if r["model"] == model and r["side"] == side]
            keys = ("iteration_s", "d_step_s", "d_total_s", "g_step_s", "timed_cpu_over_wall")
            keys += ("cpu_s_per_iteration",)
            summary = {k: _median(mine, k) for k in keys}
            summary.update(
                model=model,
                side=side,
                runs=len([r for r in mine if "error" not in r]),
                process_cpu_over_wall=_median(mine, "process_cpu_over_wall"),
                errors=[r["error"] for r in mine if "error" in r],
            )
            by_side[side] = summary
        original = by_side.get("original")
        for side, summary in by_side.items():
            if side != "original" and original and original["iteration_s"] and summary["runs"]:
                for key in ("iteration_s", "d_step_s", "g_step_s", "cpu_s_per_iteration"):
                    if summary[key] and original[key]:
                        name = key[:-2] if key.endswith("_s") else key
                        summary[f"x_original_{name}"] = summary[key] / original[key]
                # per round: each of our runs against the original run next to it
                pairs = _round_pairs(rows, model, side)
                summary["x_original_per_round"] = [round(a / b, 3) for a, b in pairs]
            out.append(summary)
    return out


def _round_pairs(rows, model, side):
    pairs = []
    for r in {r["round"] for r in rows}:
        a = [x for x in rows if (x["round"], x["model"], x["side"]) == (r, model, side)]
        b = [x for x in rows if (x["round"], x["model"], x["side"]) == (r, model, "original")]
        if a and b and "error" not in a[0] and "error" not in b[0]:
            pairs.append((a[0]["iteration_s"], b[0]["iteration_s"]))
    return pairs


def _f(value, spec=".2f", suffix=""):
    return "-" if value is None else format(value, spec) + suffix


def table(summaries: list[dict]) -> str:
    head = (
        f"{'model':5} {'side':9} {'runs':>4} {'iteration':>10} {'D step':>8} {'G step':>8}"
        f" {'x orig':>7} {'D x':>6} {'G x':>6} {'cpu/wall':>9} {'cpu s/it':>8} {'cpu x':>6}"
    )
    lines = [head, "-" * len(head)]
    for s in summaries:
        lines.append(
            f"{s['model']:5} {s['side']:9} {s['runs']:>4} {_f(s['iteration_s'], '.2f', 's'):>10}"
            f" {_f(s['d_step_s'], '.2f', 's'):>8} {_f(s['g_step_s'], '.2f', 's'):>8}"
            f" {_f(s.get('x_original_iteration')):>7} {_f(s.get('x_original_d_step')):>6}"
            f" {_f(s.get('x_original_g_step')):>6} {_f(s['timed_cpu_over_wall']):>9}"
            f" {_f(s['cpu_s_per_iteration'], '.1f'):>8}"
            f" {_f(s.get('x_original_cpu_s_per_iteration')):>6}"
        )
        for e in s["errors"]:
            lines.append(f"      error: {e}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="v2,v1", help="comma list of v1, v2 (default v2,v1)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=3, help="timed iterations per run")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations first")
    parser.add_argument("--rounds", type=int, default=1, help="alternations ours / original")
    parser.add_argument("--strategy", default="auto", help="as deepfill-tf train --strategy")
    parser.add_argument("--tiny", action="store_true", help="tiny widths, 64 px, batch 2")
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        help="also time the deepfill_tf package found in DIR (PYTHONPATH=DIR), e.g. a"
        " `git archive` of an earlier commit, as side 'baseline'",
    )
    benchinfo.OriginalBench.add_arguments(parser)
    parser.add_argument("--output", type=Path, help=f"JSON file (default {DEFAULT_OUTPUT})")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child: ours, one model
    parser.add_argument("--original-one", help=argparse.SUPPRESS)  # child: original v1
    parser.add_argument("--original-bench-shim", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.tiny:
        args.iterations, args.warmup = min(args.iterations, 2), 1
    if args.one:
        print(RESULT_MARKER + json.dumps(child_ours(args)), flush=True)
        return 0
    if args.original_one:
        print(RESULT_MARKER + json.dumps(child_original(args)), flush=True)
        return 0

    info = benchinfo.machine()
    print(benchinfo.header(info))
    bench = benchinfo.OriginalBench.from_args(args)
    why_not = "--tiny has no original counterpart" if args.tiny else bench.missing()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    sides = ["ours"] + (["baseline"] if args.baseline else [])
    if why_not is None:
        sides.append("original")
        print(f"original: {bench.commits()}")
    else:
        print(f"original: not timed ({why_not}); no ratio is measured")
    print(f"load average at start: {benchinfo.loadavg()}", flush=True)

    rows = []
    for r in range(args.rounds):
        for model in models:
            order = sides if r % 2 == 0 else sides[::-1]
            for side in order:
                print(f"round {r + 1}/{args.rounds}: {model} {side} ...", file=sys.stderr)
                if side == "original":
                    row = run_original(model, args, bench)
                else:
                    row = run_ours(model, args, side, args.baseline if side == "baseline" else None)
                row["round"] = r
                rows.append(row)
                it = row.get("iteration_s")
                print(
                    f"  {model} {side:9} iteration {_f(it, '.2f', 's')} load"
                    f" {row.get('loadavg_before')} -> {row.get('loadavg_after')}"
                    + (f" error: {row['error']}" if "error" in row else ""),
                    file=sys.stderr,
                    flush=True,
                )
    summaries = summarise(rows, models, sides)
    print(table(summaries))
    for s in summaries:
        if s["model"] == "v2" and s["side"] == "ours" and s.get("x_original_iteration"):
            verdict = "meets" if s["x_original_iteration"] <= TARGET_RATIO else "misses"
            print(
                f"v2: ours / original = {s['x_original_iteration']:.2f} per iteration"
                f" ({verdict} the <= {TARGET_RATIO} target); per round"
                f" {s['x_original_per_round']}"
            )
    if why_not is not None:
        print(f"no ratio measured: {why_not}")
    print(f"load average at end: {benchinfo.loadavg()}")
    output = args.output or (None if args.tiny else DEFAULT_OUTPUT)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "benchmark": "training",
            "machine": info,
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "original": None if why_not else bench.commits(),
            "no_ratio_because": why_not,
            "summary": summaries,
            "runs": rows,
        }
        output.write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {output}")
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
