"""The ``deepfill-tf ui`` web app: the page and the REST API ``/api/v1``.

Endpoints (described for machines at ``GET /api/v1/openapi.json``):

* ``GET /`` the page (``static/index.html``; no build step, nothing from a CDN).
* ``GET /api/v1/models`` the loaded models, the extra inputs each takes, and the limits.
* ``POST /api/v1/inpaint`` multipart form: ``image`` and ``mask`` files (white = hole), the
  model's extra files (its family's inputs: ``guide`` for guided DeepFill v2, ``sketch`` and
  ``color`` for SC-FEGAN) and the text field ``model``. Answers the PNG of the result, the same pixels as ``deepfill-tf inpaint`` gives for
  the same files, or JSON ``{"error": "..."}`` with 400 (bad form), 403 (cross-origin or
  foreign Host), 404 (model not loaded), 413 (upload too large), 422 (pixel limit, sizes
  differ, image too small), 503 (model busy, queue full) or 500 (a bug; the server goes on).

Safety: the server reads only uploaded bytes, never a path from the client; uploads and pixel
counts are limited; each model runs one request at a time with a small bounded queue; when
bound to a loopback address it answers only requests whose Host is a loopback name (no DNS
rebinding) and refuses cross-origin POSTs.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import time
from urllib.parse import urlsplit

import numpy as np
from flask import Flask, jsonify, request, send_from_directory
from werkzeug.exceptions import HTTPException

from deepfill_tf.errors import InputError
from deepfill_tf.inference.hd_strategy import STRATEGIES, HDOptions
from deepfill_tf.inference.io import encode_png
from deepfill_tf.ui.models import BusyError, Model
from deepfill_tf.ui.openapi import openapi_document
from deepfill_tf.ui.uploads import NotAnImageError, PixelLimitError, decode_image, decode_mask

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
DEFAULT_MAX_UPLOAD_BYTES = 50 * 1024 * 1024
DEFAULT_MAX_PIXELS = 4096 * 4096  # a 12 MP phone photo fits; large ones run by --hd-strategy
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
TEXT_FIELDS = ("model", "hd_strategy")

log = logging.getLogger("deepfill_tf.ui")


class ApiError(Exception):
    """An error answered as JSON ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and "localhost"."""
    if host.strip("[]").lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _hostname(host_header: str) -> str:
    """The name part of a Host header (``localhost:8080`` -> ``localhost``, ``[::1]:80`` -> ``::1``)."""
    return (urlsplit("//" + host_header).hostname or "").lower()


def create_app(
    models: list[Model],
    *,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    loopback_only: bool = True,
) -> Flask:
    """The Flask app serving the page and the API for already loaded ``models``.

    Args:
      models: the loaded models; the first is the default when a request names none.
      max_upload_bytes: largest request body (413 above).
      max_pixels: largest width x height of any uploaded image (422 above).
      loopback_only: answer only requests whose Host header is a loopback name (set when the
        server is bound to a loopback address: protects against DNS rebinding).
    """
    if not models:
        raise ValueError("create_app needs at least one model")
    by_name = {m.name: m for m in models}
    app = Flask(__name__, static_folder=STATIC_DIR, static_url_path="/static")
    app.config["MAX_CONTENT_LENGTH"] = max_upload_bytes
    limits = {"max_upload_bytes": max_upload_bytes, "max_pixels": max_pixels}
    defaults = HDOptions()
    large_photos = {
        "strategies": list(STRATEGIES),
        "default": defaults.strategy,
        "trigger": defaults.trigger,
    }

    @app.before_request
    def _guard():
        if loopback_only and not is_loopback(_hostname(request.host)):
            raise ApiError(
                403, f"Host {request.host!r} refused: this server answers only localhost names"
            )
        origin = request.headers.get("Origin")
        if request.method == "POST" and origin and origin != "null":
            if urlsplit(origin).netloc.lower() != request.host.lower():
                raise ApiError(403, f"cross-origin request from {origin} refused")

    @app.after_request
    def _headers(response):
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' blob: data:; object-src 'none';"
            " base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
        )
        return response

    @app.errorhandler(ApiError)
    def _api_error(e: ApiError):
        response = jsonify(error=str(e))
        response.status_code = e.status
        if e.status == 503:
            response.headers["Retry-After"] = "1"
        return response

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException):
        if e.code == 413:
            message = (
                f"upload too large: this server accepts at most {max_upload_bytes} bytes per"
                " request (start it with a larger --max-upload-mb)"
            )
        else:
            message = f"{e.name}: {e.description}"
        response = jsonify(error=message)
        response.status_code = e.code or 500
        return response

    @app.errorhandler(Exception)
    def _unexpected(e: Exception):  # a bug or an exhausted resource: log it, keep serving
        log.exception("request %s %s failed", request.method, request.path)
        response = jsonify(error=f"internal error: {type(e).__name__}: {e}".splitlines()[0])
        response.status_code = 500
        return response

    @app.get("/")
    def index():
        return send_from_directory(STATIC_DIR, "index.html")

    @app.get("/api/v1/models")
    def list_models():
        return jsonify(
            models=[m.describe() for m in models], limits=limits, hd_strategy=large_photos
        )

    @app.get("/api/v1/openapi.json")
    def openapi():
        return jsonify(openapi_document(models, limits))

    @app.post("/api/v1/inpaint")
    def inpaint():
        started = time.perf_counter()
        form, files = request.form, request.files  # 413 raised here when over the limit
        name = form.get("model") or models[0].name
        model = by_name.get(name)
        if model is None:
            raise ApiError(404, f"model {name!r} is not loaded; loaded: {', '.join(by_name)}")
        for field in form:
            if field not in TEXT_FIELDS:
                raise ApiError(
                    400, f"unknown form field {field!r}; text fields: {', '.join(TEXT_FIELDS)}"
                )
        strategy = form.get("hd_strategy") or HDOptions().strategy
        if strategy not in STRATEGIES:
            raise ApiError(
                400, f"hd_strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}"
            )
        hd = HDOptions(strategy=strategy, max_pixels=max_pixels)
        accepted = ("image", "mask", *model.extras)
        for field in files:
            if field not in accepted:
                raise ApiError(
                    400,
                    f"{field}: model {name!r} ({model.label}) takes the files"
                    f" {', '.join(accepted)}",
                )
        for field in ("image", "mask", *model.required):
            if field not in files:
                raise ApiError(400, f"missing file field {field!r} (multipart/form-data)")
        try:
            image = decode_image(files["image"].read(), "image", max_pixels)
            mask = decode_mask(files["mask"].read(), "mask", max_pixels)
            extras = {
                f: decode_image(files[f].read(), f, max_pixels) for f in model.extras if f in files
            }
            _check_sizes(image, mask, extras)
            result, notes = model.inpaint(image, mask, hd, **extras)
        except BusyError as e:
            raise ApiError(503, str(e)) from None
        except PixelLimitError as e:
            raise ApiError(422, str(e)) from None
        except NotAnImageError as e:
            raise ApiError(400, str(e)) from None
        except InputError as e:  # sizes differ, image too small, ...
            raise ApiError(422, str(e)) from None
        seconds = time.perf_counter() - started
        log.info("inpaint %s %dx%d %.2f s", name, image.shape[1], image.shape[0], seconds)
        response = app.response_class(encode_png(result), mimetype="image/png")
        response.headers["X-Model"] = name
        response.headers["X-Seconds"] = f"{seconds:.3f}"
        if notes:  # e.g. a hole much wider than the model was trained on
            text = " | ".join(notes)
            response.headers["X-Notes"] = text.encode("ascii", "replace").decode()
        response.headers["Cache-Control"] = "no-store"
        return response

    return app


def _check_sizes(image: np.ndarray, mask: np.ndarray, extras: dict[str, np.ndarray]) -> None:
    h, w = image.shape[:2]
    for field, array in (("mask", mask), *extras.items()):
        if array.shape[:2] != (h, w):
            raise InputError(
                f"{field} is {array.shape[1]}x{array.shape[0]} but the image is {w}x{h}"
            )


def make_server(app: Flask, host: str, port: int, *, threads: int = 8, max_body: int = 0):
    """A waitress server for ``app`` (not yet running; call ``.run()``; ``port=0`` picks one).

    ``max_body`` (bytes) makes waitress refuse larger bodies before buffering them; the app
    answers 413 in JSON for bodies between its own limit and this one.
    """
    # Loaded on use: a heavy or optional library only this feature needs.
    from waitress import create_server

    kwargs = {"max_request_body_size": max_body} if max_body else {}
    return create_server(app, host=host, port=port, threads=threads, ident="deepfill-tf", **kwargs)


def server_url(server) -> str:
    host = server.effective_host
    if isinstance(host, str) and ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{server.effective_port}/"
