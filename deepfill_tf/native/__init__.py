"""Build and load the package's TensorFlow custom ops (``deepfill_tf/native/*.cc``).

A custom op has to be compiled against the TensorFlow it runs in, so it is built on first use
(as ``torch.utils.cpp_extension.load`` does for PyTorch), about 6 s, and cached under

    $DEEPFILL_TF_CACHE or $XDG_CACHE_HOME/deepfill_tf or ~/.cache/deepfill_tf
        /native/<name>-<key>.so

where ``key`` hashes the source, the TensorFlow version and compile flags, the compiler and
this CPU's instruction-set flags (the library is built with ``-march=native``, so a cache
shared between machines never hands one a library for another CPU). The library is written
under a temporary name and renamed, so concurrent first uses at worst build it twice.

``$CXX`` picks the compiler (default ``c++``). ``DEEPFILL_TF_NATIVE=0`` turns the native ops
off; callers then use TensorFlow's own ops (``deepfill_tf.ops.gating``). Nothing here raises on
a failed build: ``load_native_library`` returns None and ``native_status`` says why.
TensorFlow is imported on first build or load only, so the CLI checks ``native_enabled`` before
it imports TensorFlow.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import shlex
import subprocess
import tempfile
import time
from pathlib import Path

from deepfill_tf.errors import ConfigError

__all__ = [
    "NATIVE_OPS",
    "cache_dir",
    "cpu_has",
    "load_native_library",
    "native_enabled",
    "native_status",
]

# Every op type the libraries here register: a graph holding one runs only where the library is
# loaded (not in TF Serving, TFLite or ONNX), so exports check for them.
NATIVE_OPS = frozenset(
    {"DeepfillGatedElu", "DeepfillGatedEluGrad", "DeepfillMulSigmoid", "DeepfillBiasGatedElu"}
)

_SOURCES = Path(__file__).resolve().parent
_ENV_SWITCH = "DEEPFILL_TF_NATIVE"
# -mno-avx512fp16: GCC 12 cannot compile Eigen's AVX512-FP16 packet header that -march=native
# pulls in on CPUs with that extension; the kernels here use float32 only.
_FLAG_SETS = (
    ["-O3", "-march=native", "-mno-avx512fp16"],
    ["-O3", "-march=native"],
    ["-O3"],
)
# Flags a library needs on top of every set: exact_gating reproduces TensorFlow's float
# operations one by one, so the compiler may contract none of them into an FMA.
_EXTRA_FLAGS = {"exact_gating": ["-ffp-contract=off"]}
_status: dict[str, str] = {}
_log = logging.getLogger(__name__)


def native_enabled() -> bool:
    """False when ``DEEPFILL_TF_NATIVE`` is ``0`` (or ``false`` / ``off``), True when unset or
    ``1`` / ``true`` / ``on``. Other values raise ``ConfigError``."""
    value = os.environ.get(_ENV_SWITCH, "1").strip().lower()
    if value in ("1", "true", "on", ""):
        return True
    if value in ("0", "false", "off"):
        return False
    raise ConfigError(f"{_ENV_SWITCH} must be 0 or 1, got {os.environ[_ENV_SWITCH]!r}")


def cache_dir() -> Path:
    """Where built libraries are kept (see the module docstring)."""
    root = os.environ.get("DEEPFILL_TF_CACHE")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "deepfill_tf"


def native_status(name: str) -> str:
    """One line on library ``name``: where it was loaded from, or why it is not used."""
    return _status.get(name, "not loaded yet")


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return line
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _compiler() -> list[str]:
    return shlex.split(os.environ.get("CXX", "c++"))


def _key(source: bytes, flags: list[str]) -> str:
    import tensorflow as tf

    parts = [
        source,
        tf.__version__.encode(),
        " ".join(tf.sysconfig.get_compile_flags() + tf.sysconfig.get_link_flags()).encode(),
        " ".join(_compiler() + flags).encode(),
        _cpu_flags().encode(),
    ]
    return hashlib.sha256(b"\0".join(parts)).hexdigest()[:16]


def _build(source_path: Path, target: Path, flags: list[str]) -> None:
    """Compile ``source_path`` to ``target`` (atomically); raise RuntimeError with the
    compiler's first error line on failure."""
    import tensorflow as tf

    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=target.stem + ".", suffix=".so.tmp", dir=target.parent)
    os.close(fd)
    command = [
        *_compiler(),
        *flags,
        "-w",
        "-shared",
        "-fPIC",
        str(source_path),
        "-o",
        tmp,
        *tf.sysconfig.get_compile_flags(),
        *tf.sysconfig.get_link_flags(),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            lines = [
                x for x in done.stderr.splitlines() if "error" in x
            ] or done.stderr.splitlines()
            raise RuntimeError(lines[0].strip() if lines else f"exit status {done.returncode}")
        os.replace(tmp, target)
    except FileNotFoundError as e:
        raise RuntimeError(f"no C++ compiler ({e.filename})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# name -> the library loaded in this process. TensorFlow keeps a loaded library's kernels for
# the life of the process and cannot take a second copy of them (a second library registering
# the same kernels makes every use of the op fail), so a name is loaded at most once.
_loaded: dict[str, object] = {}
_failed: set[str] = set()  # names whose build or load failed in this process: not retried


def cpu_has(flag: str) -> bool:
    """True if this CPU lists ``flag`` (e.g. "avx512f") in /proc/cpuinfo."""
    return flag in _cpu_flags().split()


# Libraries that only pay off with an instruction set: not built without it.
_NEEDS = {"exact_gating": "avx512f"}


def load_native_library(name: str, warn: bool = True):
    """The loaded op library of ``deepfill_tf/native/<name>.cc`` (``tf.load_op_library``),
    built on first use; None when native ops are off, the CPU lacks what the library needs,
    or the build or load fails (``native_status`` says why; a failure is a warning, or an
    info line with ``warn=False``). Built and loaded at most once per process."""
    if not native_enabled():
        _status[name] = f"off ({_ENV_SWITCH}=0)"
        return None
    needs = _NEEDS.get(name)
    if needs and not cpu_has(needs):
        _status[name] = f"TensorFlow ops ({name} needs {needs}, which this CPU lacks)"
        return None
    if name in _loaded:
        return _loaded[name]
    if name in _failed:
        return None
    import tensorflow as tf

    source_path = _SOURCES / f"{name}.cc"
    source = source_path.read_bytes()
    flag_sets = [f + _EXTRA_FLAGS.get(name, []) for f in _FLAG_SETS]
    targets = [(f, cache_dir() / "native" / f"{name}-{_key(source, f)}.so") for f in flag_sets]
    # A library cached with any flag set is tried before any build, so a compiler that rejects
    # the first set does not fail that build again in every process.
    targets.sort(key=lambda flags_target: not flags_target[1].exists())
    errors = []
    for flags, target in targets:
        try:
            if not target.exists():
                start = time.perf_counter()
                _build(source_path, target, flags)
                _log.info("built %s in %.1f s: %s", name, time.perf_counter() - start, target)
            library = tf.load_op_library(str(target))
        except (RuntimeError, OSError, tf.errors.OpError) as e:
            errors.append(str(e).splitlines()[0] if str(e) else type(e).__name__)
            continue
        _status[name] = f"native ({target})"
        _loaded[name] = library
        return library
    _status[name] = f"TensorFlow ops (could not build {name}: {errors[-1]})"
    (_log.warning if warn else _log.info)("%s: %s", name, _status[name])
    _failed.add(name)
    return None
