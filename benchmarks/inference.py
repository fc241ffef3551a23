#!/usr/bin/env python
"""Inference benchmark of the DeepFill generators (issue 2): latency, peak RSS, GFLOP/s.

A script, not a test. It prints a table and writes JSON (default
``benchmarks/results/inference.json``). Every configuration (model, size, batch, mode,
allocator) runs in its own subprocess, so peak RSS (``ru_maxrss``) and minor page faults
(``ru_minflt``) are per configuration and one failure does not stop the run.

Models run at published width (v1 cnum 32, v2 cnum 48) with random Glorot weights: timing does
not depend on weight values. Input: uniform noise in [-1, 1] (BGR, (B, S, S, 3)) and one fixed
hole mask (1, S, S, 1), 1 = hole, about 21 % hole (a box plus brush strokes), shared by the batch.

Modes:
  eager     ``g(image, mask)`` op by op.
  function  ``tf.function`` with a static input signature (one trace per shape).
  xla       ``tf.function(jit_compile=True)``; a failure is recorded as "n/a: <first line>".
  pipeline  ``deepfill_tf.inference.pipeline.inpaint_uint8`` in a tf.function: uint8 RGB in,
            uint8 RGB out, what the CLI runs (and what the original anchors measure), traced
            inside ``exact_native_gating()`` as the CLI's Inpainter traces it.

Timing: 2 warm-up calls (the first one traces / compiles), then ``--repeats`` timed calls; the
median and the minimum are reported. Outputs are fetched to NumPy inside the timed region.

The original: with ``--original-python`` and mirrors of JiahuiYu/generative_inpainting and
JiahuiYu/neuralgym (``--original-repo`` / ``--neuralgym-repo`` or DEEPFILL_REPO /
NEURALGYM_REPO), every ``pipeline`` row at batch 1 (uint8 RGB in, uint8 out: what test.py's
graph computes) is paired with the original test.py graph of the same version and size,
timed by the shared ``original_bench`` tool in its own process (``infer:vN:SIZE``: batch 1,
uint8 out, same warm-up and repeat counts). The pair runs ``--rounds`` times, alternating
which side goes first, and "x orig" is our median over the original's median of the same
round; the summary gives the ratio of the medians over rounds. Without the original, absolute
figures only, and the script says that no ratio was measured (speed differs from one machine
of this kind to the next, so no anchor from another machine is used).

GFLOP/s use REFERENCE.md's nominal forward counts (the attention skips masked patches, so it
does fewer); "%ceil" divides them by this machine's fp32 matmul rate, measured with a 3072^3
tf matmul at the start and end of the run.
A second busy process on 2 cores makes timings 2-6x slower: the load average before and after,
and per configuration the process CPU use over wall time ("cpu/wall", about 2.0 when both
cores were ours) and the cores other processes kept busy meanwhile ("others", from
/proc/stat; 0 when idle) are recorded so a reader can judge the numbers. The header and the
JSON give the CPU model and flags (/proc/cpuinfo).

Examples:
  python benchmarks/inference.py                          # everything (about 10-20 minutes)
  python benchmarks/inference.py --tiny                   # smoke run, seconds per config
  python benchmarks/inference.py --models v2 --sizes 256,512 --batches 1 --modes eager,function
  python benchmarks/inference.py --models v2 --sizes 512 --batches 1 --modes function \\
      --env-tunables                                      # glibc malloc tunables on vs off
  python benchmarks/inference.py --profile --sizes 512    # where the v2 forward spends time
  DEEPFILL_REPO=... NEURALGYM_REPO=... python benchmarks/inference.py --modes pipeline \
      --batches 1 --rounds 2 --original-python ../orig-venv/bin/python   # ratios vs original
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import itertools
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchinfo  # noqa: E402  (the benchmarks' shared helpers, pure Python)

RESULT_MARKER = "@@BENCH_RESULT@@ "
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "inference.json"
MODES = ("eager", "function", "xla", "pipeline")
GLIBC_TUNABLES = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736"
ENV_PREFIXES = (
    *("TF_ENABLE_", "TF_NUM_", "TF_XLA", "TF_ONEDNN", "TF_CPP_", "TF_INTRA", "TF_INTER"),
    *("OMP_", "KMP_", "DNNL_", "ONEDNN_", "MKL_", "GLIBC_", "MALLOC_", "XLA_"),
    "DEEPFILL_TF_",  # DEEPFILL_TF_NATIVE=0: TensorFlow's ops instead of the native kernels
)

# Forward FLOPs per image (1 MAC = 2 FLOPs) from REFERENCE.md, in GFLOP.
REFERENCE_GFLOP = {("v1", 256): 51.6, ("v1", 512): 287.0, ("v2", 256): 55.5, ("v2", 512): 283.0}
# Published widths and the --tiny widths.
WIDTH = {"v1": 32, "v2": 48}
TINY_WIDTH = {"v1": 4, "v2": 8}
TINY_SIZE = 64


# ----------------------------------------------------------------------------- helpers


def gflop_per_image(model: str, size: int) -> float:
    """Forward GFLOP of one size x size image at published width.

    Exact REFERENCE.md counts at 256 and 512; other sizes from the split that those counts
    imply: convolutions scale with the pixel count, contextual attention with its square
    (v2: 50.5 G conv + 5.06 G attention at 256; 81 G attention at 512 as REFERENCE.md says).
    """
    if (model, size) in REFERENCE_GFLOP:
        return REFERENCE_GFLOP[(model, size)]
    g256, g512 = REFERENCE_GFLOP[(model, 256)], REFERENCE_GFLOP[(model, 512)]
    attention_256 = (g512 - 4.0 * g256) / 12.0  # 4 c + 16 a = g512, c + a = g256
    conv_256 = g256 - attention_256
    r = (size / 256.0) ** 2
    return conv_256 * r + attention_256 * r * r


def hole_mask(size: int, seed: int = 0):
    """A fixed, realistic hole mask: a box plus four brush strokes, about 21 % hole.

    Drawn in normalised coordinates, so every size gets the same shape.
    Returns: (1, size, size, 1) float32 NumPy array, 1 = hole.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    c = (np.arange(size, dtype=np.float32) + 0.5) / size
    yy, xx = np.meshgrid(c, c, indexing="ij")
    hole = (np.abs(yy - 0.42) < 0.16) & (np.abs(xx - 0.55) < 0.19)  # the box, ~12 %
    for _ in range(4):  # strokes: polylines of 3 segments, radius 2-3.5 % of the side
        p = rng.uniform(0.1, 0.9, 2)
        radius = rng.uniform(0.02, 0.035)
        for _ in range(3):
            q = np.clip(p + rng.normal(0, 0.22, 2), 0.05, 0.95)
            d = q - p
            t = ((yy - p[0]) * d[0] + (xx - p[1]) * d[1]) / max(float(d @ d), 1e-9)
            t = np.clip(t, 0.0, 1.0)
            dist2 = (yy - p[0] - t * d[0]) ** 2 + (xx - p[1] - t * d[1]) ** 2
            hole |= dist2 <= radius**2
            p = q
    return hole.astype(np.float32)[None, :, :, None]


def attention_patches_masked(mask) -> float:
    """Approximate share of contextual-attention background patches that the mask zeroes.

    The attention matches 3x3 patches on the 1/8 grid (1/4 features, rate 2); a background
    patch touching the hole gets score 0, so an implementation may skip it.
    """
    import numpy as np

    m = mask[0, :, :, 0]
    n = m.shape[0] // 8
    idx = np.round(np.arange(n) * (m.shape[0] - 1) / max(n - 1, 1)).astype(int)
    m8 = m[np.ix_(idx, idx)] > 0.5
    padded = np.pad(m8, 1)
    touched = np.zeros_like(m8)
    for dy in range(3):
        for dx in range(3):
            touched |= padded[dy : dy + n, dx : dx + n]
    return float(touched.mean())


def _load_average():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def _busy_cpu_seconds():
    """CPU seconds all processes spent busy since boot (/proc/stat), or None."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    ticks = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def wait_for_idle(max_wait: float, threshold: float = 0.3, window: float = 3.0) -> float:
    """Waits (up to max_wait seconds) until other processes keep < threshold cores busy over
    a window; returns the busy cores last seen (this parent process itself is idle)."""
    deadline = time.monotonic() + max_wait
    while True:
        b0 = _busy_cpu_seconds()
        time.sleep(window)
        b1 = _busy_cpu_seconds()
        busy = 0.0 if b0 is None else (b1 - b0) / window
        if busy < threshold or time.monotonic() >= deadline:
            return busy


def _env_subset(env=None) -> dict:
    env = os.environ if env is None else env
    return {k: v for k, v in sorted(env.items()) if k.startswith(ENV_PREFIXES)}


# ----------------------------------------------------------------------------- worker


def _build_generator(model: str, tiny: bool):
    from deepfill_tf.models.deepfill_generator import DeepFillV1Generator, DeepFillV2Generator

    cls = DeepFillV1Generator if model == "v1" else DeepFillV2Generator
    cnum = (TINY_WIDTH if tiny else WIDTH)[model]
    return cls(cnum=cnum).build_for(64, 64)


def _make_runner(mode: str, g, batch: int, size: int):
    """Returns (run, traces): run() does one forward on fixed inputs and returns the outputs
    as NumPy arrays (so the timing includes the fetch); traces() is the tf.function's trace
    count (None in eager mode)."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(1)
    mask = tf.constant(hole_mask(size))
    image_spec = tf.TensorSpec((batch, size, size, 3), tf.float32)
    mask_spec = tf.TensorSpec((1, size, size, 1), tf.float32)
    if mode == "pipeline":
        from deepfill_tf.inference.pipeline import inpaint_uint8

        try:  # traced as deepfill_tf.inference.inpainter.Inpainter (the CLI) traces it
            from deepfill_tf.ops.gating import exact_native_gating
        except ImportError:  # an older deepfill_tf (a snapshot on PYTHONPATH)
            exact_native_gating = contextlib.nullcontext

        def pipeline(x, m):
            with exact_native_gating():
                return inpaint_uint8(g, x, m)

        image = tf.constant(rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8))
        fn = tf.function(
            pipeline,
            input_signature=[tf.TensorSpec((batch, size, size, 3), tf.uint8), mask_spec],
        )
    else:
        image = tf.constant(rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32))
        if mode == "eager":
            fn = g
        elif mode in ("function", "xla"):
            fn = tf.function(
                lambda x, m: g(x, m),
                input_signature=[image_spec, mask_spec],
                jit_compile=mode == "xla",
            )
        else:
            raise ValueError(f"unknown mode {mode!r}")

    def run():
        out = fn(image, mask)
        return [t.numpy() for t in tf.nest.flatten(out)]

    def traces():
        getter = getattr(fn, "experimental_get_tracing_count", None)
        return getter() if getter else None

    return run, traces


def run_config(cfg: dict) -> dict:
    """Times one configuration in this process. cfg: model, size, batch, mode, tiny, repeats,
    warmup. Returns the result row (times in ms, RSS in MB)."""
    import tensorflow as tf

    row = dict(cfg)
    row["loadavg_start"] = _load_average()
    row["tf_version"] = tf.__version__
    g = _build_generator(cfg["model"], cfg["tiny"])
    run, traces = _make_runner(cfg["mode"], g, cfg["batch"], cfg["size"])
    t0 = time.perf_counter()
    try:
        run()
    except Exception as e:  # XLA (or anything) not working here: record it, not crash
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        row.update(status="n/a", error=f"n/a: {type(e).__name__}: {first}")
        return row
    row["first_call_ms"] = (time.perf_counter() - t0) * 1e3
    for _ in range(cfg["warmup"] - 1):
        run()
    before = resource.getrusage(resource.RUSAGE_SELF)
    busy0 = _busy_cpu_seconds()
    times = []
    wall0 = time.perf_counter()
    for _ in range(cfg["repeats"]):
        t = time.perf_counter()
        run()
        times.append((time.perf_counter() - t) * 1e3)
    wall = time.perf_counter() - wall0
    after = resource.getrusage(resource.RUSAGE_SELF)
    busy1 = _busy_cpu_seconds()
    user, sys_ = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    # Cores kept busy by OTHER processes while we timed (0 on an idle machine).
    others = None if busy0 is None else max(0.0, (busy1 - busy0 - user - sys_) / wall)
    row.update(
        status="ok",
        times_ms=[round(t, 2) for t in times],
        median_ms=statistics.median(times),
        min_ms=min(times),
        traces=traces(),
        peak_rss_mb=after.ru_maxrss / 1024.0,  # Linux: KiB
        minflt_total=after.ru_minflt,
        minflt_per_run=(after.ru_minflt - before.ru_minflt) / cfg["repeats"],
        user_s_per_run=user / cfg["repeats"],
        sys_s_per_run=sys_ / cfg["repeats"],
        cpu_per_wall=(user + sys_) / wall,
        other_cores=others,
        loadavg_end=_load_average(),
    )
    return row


def matmul_ceiling(n: int = 3072, repeats: int = 5) -> dict:
    """This machine's fp32 matmul rate right now: best of ``repeats`` n x n x n tf matmuls
    (GFLOP/s, all cores), to judge the achieved GFLOP/s."""
    import tensorflow as tf

    a = tf.random.stateless_normal((n, n), seed=(1, 2))
    b = tf.random.stateless_normal((n, n), seed=(3, 4))
    mm = tf.function(lambda a, b: tf.linalg.matmul(a, b))
    best = float("inf")
    for i in range(repeats + 2):
        t = time.perf_counter()
        mm(a, b).numpy()
        if i >= 2:
            best = min(best, time.perf_counter() - t)
    return {"calibrate": True, "matmul_n": n, "matmul_gflops": 2 * n**3 / best / 1e9}


def _worker_main(cfg_json: str) -> int:
    cfg = json.loads(cfg_json)
    if cfg.get("calibrate"):
        row = matmul_ceiling()
    else:
        row = profile_v2(cfg) if cfg.get("profile") else run_config(cfg)
    print(RESULT_MARKER + json.dumps(row), flush=True)
    return 0


# ----------------------------------------------------------------------------- profile


def _op_events(logdir: str):
    """Yields (node_name, op_type, duration_ms) for every TF op kernel in a profiler trace."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    for path in Path(logdir).rglob("*.xplane.pb"):
        space = xplane_pb2.XSpace()
        space.ParseFromString(path.read_bytes())
        for plane in space.planes:
            if plane.name != "/host:CPU":
                continue
            for line in plane.lines:
                for ev in line.events:
                    md = plane.event_metadata[ev.metadata_id]
                    if md.display_name and ":" in md.name:  # "scope/node:OpType"
                        yield md.name.rsplit(":", 1)[0], md.display_name, ev.duration_ps / 1e9


def _layer_of(node: str) -> str:
    """'inpaint_net_1/contextual_attention_1/Conv2D' -> 'contextual_attention'."""
    parts = [re.sub(r"_\d+$", "", p) for p in node.split("/")]
    if parts and parts[0] == "inpaint_net":
        parts = parts[1:]
    return parts[0] if len(parts) > 1 else "(model glue)"


def profile_v2(cfg: dict) -> dict:
    """Op-level profile of the v2 forward (tf.function) at cfg["size"] and cfg["batch"].

    Kernel times from tf.profiler, summed per Keras layer and per op type, divided by the
    number of profiled runs. Ops run one at a time (inter-op parallelism 1, each op still uses
    every core), so the per-op times add up to about the wall time.
    """
    import tensorflow as tf

    tf.config.threading.set_inter_op_parallelism_threads(1)
    size, batch, runs = cfg["size"], cfg["batch"], cfg["repeats"]
    g = _build_generator("v2", cfg["tiny"])
    run, _ = _make_runner("function", g, batch, size)
    for _ in range(2):
        run()
    times = []
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        busy0, cpu0, wall0 = _busy_cpu_seconds(), time.process_time(), time.perf_counter()
        for _ in range(runs):
            t = time.perf_counter()
            run()
            times.append((time.perf_counter() - t) * 1e3)
        busy1, cpu1, wall1 = _busy_cpu_seconds(), time.process_time(), time.perf_counter()
        tf.profiler.experimental.stop()
        by_layer, by_op, by_layer_op, ca_ops = {}, {}, {}, {}
        for node, op, ms in _op_events(logdir):
            layer = _layer_of(node)
            by_layer[layer] = by_layer.get(layer, 0.0) + ms / runs
            by_op[op] = by_op.get(op, 0.0) + ms / runs
            by_layer_op[f"{layer} {op}"] = by_layer_op.get(f"{layer} {op}", 0.0) + ms / runs
            if layer == "contextual_attention":
                inner = node.split("contextual_attention", 1)[1].split("/", 1)[-1]
                key = f"{inner}:{op}"
                ca_ops[key] = ca_ops.get(key, 0.0) + ms / runs

    def top(d, n):
        return dict(sorted(d.items(), key=lambda kv: -kv[1])[:n])

    others = None if busy0 is None else (busy1 - busy0 - (cpu1 - cpu0)) / (wall1 - wall0)
    return {
        **cfg,
        "model": "v2",
        "other_cores": None if others is None else max(0.0, others),
        "median_ms": statistics.median(times),
        "times_ms": [round(t, 2) for t in times],
        "loadavg": _load_average(),
        "by_layer_ms": top(by_layer, len(by_layer)),
        "by_op_ms": top(by_op, len(by_op)),
        "by_layer_op_ms": top(by_layer_op, 40),
        "attention_top_ops_ms": top(ca_ops, 15),
    }


def _print_profile(p: dict) -> None:
    total = sum(p["by_layer_ms"].values())
    print(
        f"\nprofile v2 {p['size']}x{p['size']} batch {p['batch']} (tf.function, inter-op threads"
        f" 1): median {p['median_ms']:.0f} ms wall, {total:.0f} ms summed kernel time; load "
        f"{p['loadavg']}, "
        f"other processes kept {_fmt(p.get('other_cores'), '.2f')} cores busy"
    )
    attention = p["by_layer_ms"].get("contextual_attention", 0.0)
    print(
        f"  contextual attention {attention:.0f} ms ({100 * attention / total:.0f} %), "
        f"everything else (convs, glue) {total - attention:.0f} ms"
    )
    print("  by layer:")
    for name, ms in list(p["by_layer_ms"].items())[:14]:
        print(f"    {name:28s} {ms:8.1f} ms {100 * ms / total:5.1f} %")
    print("  by op type:")
    for name, ms in list(p["by_op_ms"].items())[:12]:
        print(f"    {name:28s} {ms:8.1f} ms {100 * ms / total:5.1f} %")
    print("  by layer and op type:")
    for name, ms in list(p["by_layer_op_ms"].items())[:16]:
        print(f"    {name:40s} {ms:8.1f} ms {100 * ms / total:5.1f} %")
    print("  inside contextual_attention (node:op):")
    for name, ms in p["attention_top_ops_ms"].items():
        print(f"    {name:40s} {ms:8.1f} ms")


# ----------------------------------------------------------------------------- parent


def spawn(cfg: dict, env: dict, timeout: float) -> dict:
    """Runs one configuration in a fresh interpreter; returns its row (or an error row)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(cfg)]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**cfg, "status": "error", "error": f"timed out after {timeout:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER) :])
    tail = [s for s in proc.stderr.strip().splitlines() if s.strip()]
    return {
        **cfg,
        "status": "error",
        "error": f"exit {proc.returncode}: {tail[-1][:200] if tail else 'no output'}",
    }


def _calibrate(env: dict, timeout: float):
    row = spawn({"calibrate": True}, env, timeout)
    return None if row.get("status") == "error" else round(row["matmul_gflops"], 1)


def add_derived(row: dict, ceiling: float | None = None) -> dict:
    """GFLOP/s against REFERENCE.md's counts (and as a share of the measured matmul
    ceiling), ms per image."""
    if row.get("status") != "ok":
        return row
    model, size, batch = row["model"], row["size"], row["batch"]
    row["ms_per_image"] = row["median_ms"] / batch
    if not row["tiny"]:
        row["gflop_per_image"] = gflop_per_image(model, size)
        row["gflops_achieved"] = row["gflop_per_image"] * batch / (row["median_ms"] / 1e3)
        if ceiling:
            row["share_of_matmul_ceiling"] = row["gflops_achieved"] / ceiling
    return row


def spawn_original(cfg: dict, bench, timeout: float) -> dict:
    """The original test.py graph of cfg's model and size, batch 1, in its own process
    (the shared tool's ``infer`` case); a row shaped like ours (mode "original")."""
    cmd = [bench.python, bench.script, "--child", "--mode", "infer", "--version", cfg["model"]]
    cmd += ["--size", str(cfg["size"]), "--warmup", str(cfg["warmup"])]
    cmd += ["--runs", str(cfg["repeats"])]
    cmd += ["--deepfill-repo", bench.repo, "--neuralgym-repo", bench.neuralgym]
    raw = benchinfo.run_child(cmd, "RESULT ", bench.env(), timeout)
    row = {**cfg, "mode": "original", "alloc": "-", "batch": 1}
    if "error" in raw:
        return {**row, "status": "error", "error": raw["error"]}
    return {
        **row,
        "status": "ok",
        "median_ms": raw["median_ms"],
        "min_ms": raw["min_ms"],
        "peak_rss_mb": raw["peak_rss_MiB"],
        "graph_build_and_init_s": raw["graph_build_and_init_s"],
        "process_cpu_over_wall": raw["process_cpu_over_wall"],
        "loadavg_start": raw["loadavg_before"],
        "loadavg_end": raw["loadavg_after"],
    }


def original_ratios(rows: list[dict]) -> list[dict]:
    """Per model and size: our pipeline (batch 1) median over the original's, per round and
    as the ratio of the medians over rounds."""
    out = []
    keys = sorted({(r["model"], r["size"]) for r in rows if r.get("mode") == "original"})
    for model, size in keys:
        ours, orig, per_round = [], [], []
        for r in sorted({x.get("round", 0) for x in rows}):
            pick = [
                x
                for x in rows
                if (x["model"], x["size"], x.get("round", 0)) == (model, size, r)
                and x.get("status") == "ok"
            ]
            a = [x["median_ms"] for x in pick if x["mode"] == "pipeline" and x["batch"] == 1]
            b = [x["median_ms"] for x in pick if x["mode"] == "original"]
            if a and b:
                ours.append(a[0])
                orig.append(b[0])
                per_round.append(round(a[0] / b[0], 3))
        if ours:
            out.append(
                {
                    "model": model,
                    "size": size,
                    "ours_ms": statistics.median(ours),
                    "original_ms": statistics.median(orig),
                    "ratio": statistics.median(ours) / statistics.median(orig),
                    "ratio_per_round": per_round,
                }
            )
    return out


def _pct(v):
    return None if v is None else 100.0 * v


def _fmt(v, spec):
    return "-" if v is None else format(v, spec)


def format_table(rows: list[dict]) -> str:
    head = (
        f"{'model':5} {'size':>4} {'b':>2} {'mode':9} {'alloc':8} {'median ms':>10} "
        f"{'min ms':>9} {'ms/img':>8} {'GFLOP/s':>8} {'%ceil':>5} {'x orig':>7} {'RSS MB':>7} "
        f"{'minflt/run':>10} {'sys s':>6} {'cpu/wall':>8} {'others':>6}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        pre = f"{r['model']:5} {r['size']:>4} {r['batch']:>2} {r['mode']:9} {r['alloc']:8} "
        if r.get("status") != "ok":
            lines.append(pre + r.get("error", "failed"))
            continue
        if r["mode"] == "original":
            lines.append(
                pre + f"{r['median_ms']:>10.1f} {r['min_ms']:>9.1f} {r['median_ms']:>8.1f} "
                f"{'-':>8} {'-':>5} {'1.00':>7} {r['peak_rss_mb']:>7.0f} {'-':>10} {'-':>6} "
                f"{_fmt(r.get('process_cpu_over_wall'), '8.2f'):>8} {'-':>6}"
            )
            continue
        lines.append(
            pre + f"{r['median_ms']:>10.1f} {r['min_ms']:>9.1f} {r['ms_per_image']:>8.1f} "
            f"{_fmt(r.get('gflops_achieved'), '8.1f'):>8} "
            f"{_fmt(_pct(r.get('share_of_matmul_ceiling')), '5.0f'):>5} "
            f"{_fmt(r.get('ratio_vs_original'), '7.2f'):>7} {r['peak_rss_mb']:>7.0f} "
            f"{r['minflt_per_run']:>10.0f} {r['sys_s_per_run']:>6.2f} {r['cpu_per_wall']:>8.2f} "
            f"{_fmt(r.get('other_cores'), '6.2f'):>6}"
        )
    return "\n".join(lines)


def machine_info() -> dict:
    def version(name):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None

    return {
        **benchinfo.machine(),
        "cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": version("tensorflow"),
        "keras": version("keras"),
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset (TF default on x86 Linux: on)"),
        "env": _env_subset(),
    }


def _csv(text: str, cast=str) -> list:
    return [cast(t) for t in text.split(",") if t.strip()]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="v1,v2", help="comma list of v1, v2")
    p.add_argument("--sizes", default="256,512", help="comma list of square sizes (x8)")
    p.add_argument("--batches", default="1,4", help="comma list of batch sizes")
    p.add_argument("--modes", default=",".join(MODES), help=f"comma list of {', '.join(MODES)}")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per config (>= 5)")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs first (>= 1)")
    p.add_argument("--tiny", action="store_true", help=f"cnum 4/8 at {TINY_SIZE} px smoke run")
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results file")
    p.add_argument("--append", action="store_true", help="add to the rows already in --output")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per config")
    p.add_argument(
        "--env-tunables",
        action="store_true",
        help="also run every config with GLIBC_TUNABLES=" + GLIBC_TUNABLES,
    )
    p.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each config wait up to SECONDS for other processes to use < 0.3 cores",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="op-level profile of the v2 forward (function mode) at each --sizes x --batches",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="with the original: times each pipeline/batch-1 row and its original counterpart"
        " are run, alternating which goes first",
    )
    benchinfo.OriginalBench.add_arguments(p)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.models = _csv(args.models)
    args.sizes = [TINY_SIZE] if args.tiny else _csv(args.sizes, int)
    args.batches = _csv(args.batches, int)
    args.modes = _csv(args.modes)
    for name, values, allowed in (("model", args.models, WIDTH), ("mode", args.modes, MODES)):
        bad = [v for v in values if v not in allowed]
        if bad:
            p.error(f"unknown {name} {bad[0]!r}; expected one of {', '.join(allowed)}")
    if any(s % 8 or s < 16 for s in args.sizes):
        p.error("sizes must be multiples of 8, at least 16")
    if args.warmup < 1 or args.repeats < 1:
        p.error("--warmup and --repeats must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        return _worker_main(args.worker)
    base_env = dict(os.environ)
    base_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    allocs = [("default", base_env)]
    if args.env_tunables:
        allocs.append(("tunables", {**base_env, "GLIBC_TUNABLES": GLIBC_TUNABLES}))

    meta = machine_info()
    meta["loadavg_before"] = _load_average()
    meta["matmul_gflops_before"] = _calibrate(base_env, args.timeout)
    meta["args"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    mask = hole_mask(max(args.sizes))
    meta["hole_fraction"] = float(mask.mean())
    meta["attention_patches_masked"] = attention_patches_masked(mask)
    meta["reference_gflop"] = {f"{m} {s}": v for (m, s), v in REFERENCE_GFLOP.items()}
    bench = benchinfo.OriginalBench.from_args(args)
    why_not = "--tiny has no original counterpart" if args.tiny else bench.missing()
    meta["original"] = None if why_not else bench.commits()
    meta["no_ratio_because"] = why_not
    print(benchinfo.header(meta))
    print(
        "original: "
        + (f"timed in this run {meta['original']}" if not why_not else f"not timed ({why_not})")
    )
    print(
        f"cpu_count {meta['cpu_count']} (affinity {meta['affinity']}), TF {meta['tensorflow']}, "
        f"Keras {meta['keras']}, oneDNN {meta['onednn']}, env {meta['env']}"
    )
    print(
        f"load average before: {meta['loadavg_before']}; fp32 matmul "
        f"{_fmt(meta['matmul_gflops_before'], '.0f')} GFLOP/s; hole "
        f"{100 * meta['hole_fraction']:.1f} % of pixels, "
        f"~{100 * meta['attention_patches_masked']:.0f} % of attention patches masked"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    doc = {"meta": meta, "earlier_runs": [], "results": [], "profiles": []}
    if args.append and args.output.exists():  # keep earlier rows; their metadata too
        old = json.loads(args.output.read_text())
        doc["earlier_runs"] = old.get("earlier_runs", []) + [old["meta"]]
        doc["results"] = old.get("results", [])
        doc["profiles"] = old.get("profiles", [])

    def save():
        args.output.write_text(json.dumps(doc, indent=1) + "\n")

    if args.profile:
        for size, batch in itertools.product(args.sizes, args.batches):
            cfg = {"profile": True, "size": size, "batch": batch}
            cfg.update(tiny=args.tiny, repeats=args.repeats)
            if args.wait_idle > 0:
                cfg["busy_cores_before"] = round(wait_for_idle(args.wait_idle), 2)
            p = spawn(cfg, base_env, args.timeout)
            doc["profiles"].append(p)
            save()
            if p.get("status") == "error":
                print(f"profile {size} batch {batch}: {p['error']}")
            else:
                _print_profile(p)
    else:
        print("\n" + "\n".join(format_table([]).splitlines()[:2]), flush=True)
        grid = itertools.product(args.models, args.sizes, args.batches, args.modes, allocs)
        new_rows = []
        for model, size, batch, mode, (alloc, env) in grid:
            cfg = {"model": model, "size": size, "batch": batch, "mode": mode, "alloc": alloc}
            cfg.update(tiny=args.tiny, repeats=args.repeats, warmup=args.warmup)
            paired = why_not is None and mode == "pipeline" and batch == 1
            for r in range(args.rounds if paired else 1):
                sides = ["ours", "original"] if paired else ["ours"]
                done = {}
                for side in sides if r % 2 == 0 else sides[::-1]:
                    if args.wait_idle > 0:
                        cfg["busy_cores_before"] = round(wait_for_idle(args.wait_idle), 2)
                    if side == "original":
                        row = spawn_original({**cfg, "round": r}, bench, args.timeout)
                    else:
                        row = spawn({**cfg, "round": r}, env, args.timeout)
                        row = add_derived(row, meta["matmul_gflops_before"])
                    done[side] = row
                    doc["results"].append(row)
                    new_rows.append(row)
                    save()
                    print(format_table([row]).splitlines()[-1], flush=True)
                ours, orig = done.get("ours"), done.get("original")
                if ours and orig and ours.get("status") == orig.get("status") == "ok":
                    ours["original_ms"] = orig["median_ms"]
                    ours["ratio_vs_original"] = ours["median_ms"] / orig["median_ms"]
    meta["loadavg_after"] = _load_average()
    meta["matmul_gflops_after"] = _calibrate(base_env, args.timeout)
    if not args.profile:
        # The matmul rate itself drifts by 10-20 % here: %ceil uses the better of the two.
        ceilings = [meta["matmul_gflops_before"], meta["matmul_gflops_after"]]
        ceiling = max((c for c in ceilings if c), default=None)
        for row in new_rows:
            add_derived(row, ceiling)
        print()
        print(format_table(doc["results"]))
        doc["original_ratios"] = original_ratios(new_rows)
        if doc["original_ratios"]:
            print("\nours (pipeline, batch 1) / original test.py graph, same run:")
            for q in doc["original_ratios"]:
                print(
                    f"  {q['model']} {q['size']}x{q['size']}: {q['ours_ms']:.0f} ms /"
                    f" {q['original_ms']:.0f} ms = {q['ratio']:.2f}x (per round"
                    f" {q['ratio_per_round']})"
                )
        else:
            print(f"\nno ratio measured: {why_not or 'no pipeline rows at batch 1'}")
    save()
    print(
        f"\nload average after: {meta['loadavg_after']}; fp32 matmul "
        f"{_fmt(meta['matmul_gflops_after'], '.0f')} GFLOP/s; results in {args.output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
