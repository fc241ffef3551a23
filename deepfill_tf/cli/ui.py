"""``deepfill-tf ui``: serve a local web page to paint a hole (or a sketch) and inpaint it.

  deepfill-tf ui --checkpoint CKPT [--checkpoint CKPT2 ...] [--host 127.0.0.1] [--port 8080]

Each checkpoint is loaded once and traced once; the page and the REST API (``/api/v1``, see
``deepfill_tf.ui.server``) use them until Ctrl+C. Binds to 127.0.0.1 unless told otherwise;
for another machine use SSH port forwarding rather than ``--host 0.0.0.0``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import sys

from deepfill_tf.errors import InputError
from deepfill_tf.ui.models import load_models, warm_up


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from deepfill_tf.ui.server import DEFAULT_MAX_PIXELS, DEFAULT_MAX_UPLOAD_BYTES  # no TF

    parser.add_argument(
        "--checkpoint",
        action="append",
        required=True,
        help="checkpoint directory or prefix (repeat for more models; any family that inpaints)",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 = any free)")
    parser.add_argument(
        "--max-upload-mb",
        type=float,
        default=DEFAULT_MAX_UPLOAD_BYTES / 2**20,
        help=f"largest request in MB (default {DEFAULT_MAX_UPLOAD_BYTES / 2**20:g})",
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help=f"largest image in pixels, width x height (default {DEFAULT_MAX_PIXELS} = 4096x4096)",
    )
    parser.add_argument(
        "--queue-size",
        type=int,
        default=2,
        help="requests that may wait per model while one runs; more get 503 (default 2)",
    )


def _listen_error(host: str, port: int, error: OSError) -> InputError:
    return InputError(
        f"cannot listen on {host}:{port} ({error.strerror or error}); pick another --port"
    )


def _check_port(host: str, port: int) -> None:
    """Fail at once, not after loading the models, when the address cannot be bound."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as waitress does
            probe.bind(address)
    except OSError as e:
        raise _listen_error(host, port, e) from None


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def check_inputs(args) -> None:
    """Before TensorFlow: the numbers, the checkpoints' existence and a free address."""
    if args.max_upload_mb <= 0 or args.max_pixels <= 0 or args.queue_size < 0:
        raise InputError("--max-upload-mb and --max-pixels must be > 0, --queue-size >= 0")
    if not 0 <= args.port <= 65535:
        raise InputError(f"--port {args.port}: not a port number (0-65535)")
    for checkpoint in args.checkpoint:
        folder = os.path.dirname(os.path.abspath(checkpoint))
        if not os.path.exists(checkpoint) and not os.path.isdir(folder):
            raise InputError(f"checkpoint not found: {checkpoint} (no folder {folder})")
    _check_port(args.host, args.port)  # before the (slow) model loading


def run(args) -> int:
    # Loaded on use: it imports OpenCV, which only the commands that need it should pay for.
    from deepfill_tf.ui.server import create_app, is_loopback, make_server, server_url

    models = load_models(args.checkpoint, queue_size=args.queue_size)
    for model in models:
        warm_up(model)
    max_upload = int(args.max_upload_mb * 1024 * 1024)
    loopback = is_loopback(args.host)
    app = create_app(
        models, max_upload_bytes=max_upload, max_pixels=args.max_pixels, loopback_only=loopback
    )
    threads = max(4, len(models) * (args.queue_size + 1) + 2)
    try:
        server = make_server(
            app, args.host, args.port, threads=threads, max_body=max_upload + 256 * 1024
        )
    except OSError as e:
        raise _listen_error(args.host, args.port, e) from None
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("waitress").setLevel(logging.WARNING)
    if not loopback:
        print(
            f"deepfill-tf ui: warning: listening on {args.host}: anyone who can reach this"
            " machine can use the page (there is no login). Prefer the default 127.0.0.1 with"
            " SSH port forwarding (ssh -L 8080:127.0.0.1:8080 host).",
            file=sys.stderr,
        )
    print(f"deepfill-tf ui: serving {server_url(server)} (Ctrl+C to stop)", flush=True)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill`, `docker stop`: stop as on Ctrl+C
    try:
        server.run()  # returns on Ctrl+C (waitress catches KeyboardInterrupt)
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    with contextlib.suppress(BrokenPipeError):  # the terminal may be gone already
        print("deepfill-tf ui: stopped", flush=True)
    return 0
