"""Shared parts of the benchmark scripts: machine description and the original-code anchor.

Pure Python (no TensorFlow), so that a script's child process running under ANOTHER
interpreter (the original DeepFill's virtual environment) can import it too.

Speed differs from one machine of a kind to the next (the CPU model changes between
sessions), so a claim against the original DeepFill code holds only as a ratio measured on
the same machine in the same run. ``OriginalBench`` finds what that needs: git mirrors of
JiahuiYu/generative_inpainting (tags/branches v1.0.0, v2.0.0) and JiahuiYu/neuralgym, the
project's ``tools/original_bench`` (which extracts and runs the original TF1 graphs at run
time; nothing of the original code is stored in this repository) and a Python with TF 2.x +
tf_keras + tf-slim to run them. Without all of them the scripts print absolute figures and
say that no ratio was measured.
"""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The shared tool directory beside the project (a checkout of the project's shared facts).
DEFAULT_ORIGINAL_BENCH = REPO.parent / "shared" / "tools" / "original_bench"
# CPU flags that decide TensorFlow / oneDNN kernel choice, shown in the header.
KEY_FLAGS = re.compile(r"^(avx\w*|fma|f16c|amx\w*|sse4_2|vnni\w*|avx512\w*)$")


def cpu_info() -> dict:
    """CPU model, all flags and the performance-relevant ones, from /proc/cpuinfo.

    Returns ``{"model": str, "cores": int, "key_flags": [..], "flags": [..]}`` (model
    "unknown" where /proc/cpuinfo is missing).
    """
    model, flags = "unknown", []
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model == "unknown":
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = value.split()
    return {
        "model": model,
        "cores": os.cpu_count(),
        "key_flags": [f for f in flags if KEY_FLAGS.match(f)],
        "flags": flags,
    }


def loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def machine() -> dict:
    """Machine description for the JSON results and the header line."""
    return {
        "cpu": cpu_info(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset (TF default on x86: on)"),
    }


def header(info: dict) -> str:
    cpu = info["cpu"]
    return (
        f"CPU: {cpu['model']}, {cpu['cores']} cores; flags: {' '.join(cpu['key_flags'])}\n"
        f"{info['platform']}, Python {info['python']}, oneDNN {info['onednn']}"
    )


@dataclass
class OriginalBench:
    """Where the original DeepFill graphs come from, or why they cannot be timed."""

    python: str | None
    repo: str | None
    neuralgym: str | None
    tool: str | None

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument(
            "--original-python",
            default=os.environ.get("ORIGINAL_PYTHON"),
            help="Python with tensorflow, tf_keras, tf-slim (e.g. ../orig-venv/bin/python;"
            " env ORIGINAL_PYTHON); with the mirrors below the original graphs are timed in"
            " the same run",
        )
        parser.add_argument(
            "--original-repo",
            default=os.environ.get("DEEPFILL_REPO"),
            help="git mirror of JiahuiYu/generative_inpainting (env DEEPFILL_REPO)",
        )
        parser.add_argument(
            "--neuralgym-repo",
            default=os.environ.get("NEURALGYM_REPO"),
            help="git mirror of JiahuiYu/neuralgym (env NEURALGYM_REPO)",
        )
        parser.add_argument(
            "--original-bench",
            default=os.environ.get("ORIGINAL_BENCH") or str(DEFAULT_ORIGINAL_BENCH),
            help="directory of bench_original.py and deepfill/tf1_shim.py"
            f" (default {DEFAULT_ORIGINAL_BENCH})",
        )

    @classmethod
    def from_args(cls, args) -> OriginalBench:
        return cls(args.original_python, args.original_repo, args.neuralgym_repo,
                   args.original_bench)  # fmt: skip

    def missing(self) -> str | None:
        """Why the original cannot be timed (one line), or None when it can."""
        if not self.python:
            return "no --original-python given"
        if not Path(self.python).exists():
            return f"--original-python {self.python} does not exist"
        for flag, path in (("--original-repo", self.repo), ("--neuralgym-repo", self.neuralgym)):
            if not path:
                return f"no {flag} given"
            if not Path(path).exists():
                return f"{flag} {path} does not exist"
        if not self.tool or not (Path(self.tool) / "bench_original.py").is_file():
            return f"no bench_original.py in --original-bench {self.tool}"
        return None

    @property
    def script(self) -> str:
        return str(Path(self.tool) / "bench_original.py")

    @property
    def shim_dir(self) -> str:
        return str(Path(self.tool) / "deepfill")

    def commits(self) -> dict:
        out = {}
        for name, repo, refs in (
            ("generative_inpainting", self.repo, ("v1.0.0", "v2.0.0")),
            ("neuralgym", self.neuralgym, ("HEAD",)),
        ):
            for ref in refs:
                proc = subprocess.run(
                    ["git", "-C", repo, "rev-parse", ref], capture_output=True, text=True
                )
                out[f"{name}@{ref}"] = proc.stdout.strip() or proc.stderr.strip()[:100]
        return out

    def env(self) -> dict:
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        env["DEEPFILL_REPO"], env["NEURALGYM_REPO"] = self.repo, self.neuralgym
        env.pop("PYTHONPATH", None)  # the original's interpreter must not see our venv
        return env


def run_child(cmd: list[str], marker: str, env: dict | None = None, timeout: float = 3600):
    """Run ``cmd``; return (result dict parsed from the line starting with ``marker``, or an
    ``{"error": ...}`` dict) with ``wall_s`` (process start to exit), ``cpu_s`` (the child's
    user + system time) and the load averages before and after added."""
    before, t0 = loadavg(), time.perf_counter()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [x for x in proc.stdout.splitlines() if x.startswith(marker)]
    if proc.returncode or not lines:
        tail = [s for s in proc.stderr.strip().splitlines() if s.strip()] or ["no output"]
        result = {"error": f"exit {proc.returncode}: {tail[-1][:300]}"}
    else:
        result = json.loads(lines[-1][len(marker) :])
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    result.update(
        process_wall_s=wall,
        process_cpu_s=cpu,
        process_cpu_over_wall=cpu / wall if wall > 0 else None,
        loadavg_before=before,
        loadavg_after=loadavg(),
    )
    return result
