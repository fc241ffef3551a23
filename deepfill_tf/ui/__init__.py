"""``deepfill-tf ui``: a local web page to paint a hole (or a sketch) and inpaint it.

* ``models``: the loaded checkpoints, each behind a one-at-a-time gate with a bounded queue.
* ``uploads``: decoding uploaded bytes (never paths) with byte and pixel limits.
* ``server``: the Flask app (page + REST API ``/api/v1``) and the waitress server.
* ``openapi``: the machine-readable API description served at ``/api/v1/openapi.json``.
* ``static/``: the page, plain HTML / JS / CSS with no build step and nothing from a CDN.
"""
