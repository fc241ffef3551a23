"""The OpenAPI 3.1 description of the ``deepfill-tf ui`` REST API (``/api/v1/openapi.json``)."""

from __future__ import annotations

from deepfill_tf.inference.hd_strategy import STRATEGIES, HDOptions
from deepfill_tf.ui.models import Model

_ERROR = {
    "description": "",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"error": {"type": "string"}},
                "required": ["error"],
            }
        }
    },
}


def _error(description: str) -> dict:
    return {**_ERROR, "description": description}


def _file(description: str) -> dict:
    return {"type": "string", "format": "binary", "description": description}


def openapi_document(models: list[Model], limits: dict) -> dict:
    """The API description, with the loaded model names and the server's limits filled in."""
    names = [m.name for m in models]
    form = {
        "type": "object",
        "required": ["image", "mask"],
        "properties": {
            "image": _file(
                "The photo: PNG, JPEG, BMP, WebP or TIFF; grayscale, RGBA (alpha dropped) and"
                f" 16-bit are converted to 8-bit RGB. At most {limits['max_pixels']} pixels."
            ),
            "mask": _file(
                "The hole, same size as the image: white = hole (a pixel is a hole when its"
                " blue channel, or its gray value, is > 127.5)."
            ),
            "model": {
                "type": "string",
                "enum": names,
                "default": names[0],
                "description": "A loaded model (GET /api/v1/models).",
            },
            "hd_strategy": {
                "type": "string",
                "enum": list(STRATEGIES),
                "default": HDOptions().strategy,
                "description": (
                    "How a photo whose long side exceeds"
                    f" {HDOptions().trigger} px runs, as `deepfill-tf inpaint --hd-strategy`:"
                    " crop (a crop around each hole at full size), resize (scaled down, hole"
                    " pasted back) or original (the whole image at full size)."
                ),
            },
        },
    }
    for model in models:  # the extra inputs of the loaded families
        for extra in model.extras:
            takers = [m.name for m in models if extra in m.extras]
            needed = [m.name for m in models if extra in m.required]
            help_text = model.extras_help.get(extra, extra)
            form["properties"].setdefault(
                extra,
                _file(
                    f"{help_text}; same size as the image. Taken by {', '.join(takers)}"
                    + (f"; required by {', '.join(needed)}." if needed else ".")
                ),
            )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "deepfill-tf ui",
            "version": "1",
            "description": (
                "Inpaint images with the models a `deepfill-tf ui` server has loaded. Each"
                " model runs one request at a time; a few more may wait, and beyond that the"
                f" server answers 503. Uploads: at most {limits['max_upload_bytes']} bytes per"
                " request."
            ),
        },
        "paths": {
            "/api/v1/models": {
                "get": {
                    "summary": "The loaded models and the server's limits",
                    "responses": {
                        "200": {
                            "description": "Models (name, family, label, extra inputs) and"
                            " limits (max_upload_bytes, max_pixels).",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
            "/api/v1/inpaint": {
                "post": {
                    "summary": "Fill the hole of an image",
                    "description": (
                        "The result has the image's size; pixels outside the hole are the"
                        " input's, unchanged. The same pixels as `deepfill-tf inpaint` for the"
                        " same files."
                    ),
                    "requestBody": {
                        "required": True,
                        "content": {"multipart/form-data": {"schema": form}},
                    },
                    "responses": {
                        "200": {
                            "description": "The inpainted image (RGB PNG). Headers: X-Model,"
                            " X-Seconds (server time), X-Notes (one-line notes, when any).",
                            "content": {
                                "image/png": {"schema": {"type": "string", "format": "binary"}}
                            },
                        },
                        "400": _error("A field is missing or unknown, or a file is not an image."),
                        "403": _error("Cross-origin request, or a Host that is not localhost."),
                        "404": _error("The model is not loaded."),
                        "413": _error("The request is larger than max_upload_bytes."),
                        "422": _error(
                            "An image has more than max_pixels pixels, the mask (or an extra)"
                            " has another size, or the image is too small for the model."
                        ),
                        "503": _error("The model is busy and its queue is full; retry shortly."),
                        "500": _error("Internal error; the server keeps serving."),
                    },
                }
            },
        },
    }
