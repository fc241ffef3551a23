"""`deepfill-tf ui`'s REST API in-process: listing, parity with `deepfill-tf inpaint`, bad
input (non-image, over the byte / pixel limits, mask of another size, unknown model, queue
full, a failing model, a client that disconnects) and that the server keeps serving."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from deepfill_tf.ui.models import GUIDE, Model, model_name
from deepfill_tf.ui.server import STATIC_DIR, create_app, is_loopback, make_server

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def png(array) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(array, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def photo(h=70, w=50, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def mask_array(h=70, w=50, box=(20, 10, 45, 35)):
    m = np.zeros((h, w), np.uint8)
    if box:
        m[box[0] : box[2], box[1] : box[3]] = 255
    return m


def fill_gray(image, hole_mask, **extras):
    """A stand-in model: the hole becomes mid-gray (known pixels unchanged)."""
    out = image.copy()
    out[hole_mask > 0.5] = 128
    return out


def fake_model(name="fake", run=fill_gray, extras=(), required=(), queue_size=1) -> Model:
    return Model(name, "fake", f"Fake {name}", extras, required, run, queue_size)


def post(client, image=None, mask=None, **fields):
    data = dict(fields)
    if image is not None:
        data["image"] = (io.BytesIO(image), "image.png")
    if mask is not None:
        data["mask"] = (io.BytesIO(mask), "mask.png")
    for key, value in list(data.items()):
        if isinstance(value, bytes):
            data[key] = (io.BytesIO(value), f"{key}.png")
    return client.post("/api/v1/inpaint", data=data, content_type="multipart/form-data")


@pytest.fixture
def client():
    models = [fake_model("fake"), fake_model("guided", extras=(GUIDE,), required=(GUIDE,))]
    app = create_app(models, max_upload_bytes=200_000, max_pixels=100 * 100)
    return app.test_client()


def test_models_lists_every_loaded_model_with_its_inputs_and_limits(client):
    body = client.get("/api/v1/models").get_json()
    assert [m["name"] for m in body["models"]] == ["fake", "guided"]
    assert body["models"][1]["extras"] == ["guide"]
    assert body["models"][1]["required_extras"] == ["guide"]
    assert body["limits"] == {"max_upload_bytes": 200_000, "max_pixels": 10_000}
    assert body["hd_strategy"] == {
        "strategies": ["original", "resize", "crop"],
        "default": "crop",
        "trigger": 1024,
    }


def test_openapi_document_describes_both_endpoints(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) == {"/api/v1/models", "/api/v1/inpaint"}
    post_doc = doc["paths"]["/api/v1/inpaint"]["post"]
    schema = post_doc["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert schema["required"] == ["image", "mask"]
    assert schema["properties"]["model"]["enum"] == ["fake", "guided"]
    assert {"200", "400", "404", "413", "422", "503"} <= set(post_doc["responses"])
    assert "required by guided" in schema["properties"]["guide"]["description"]


def test_page_is_served_offline_with_a_strict_content_policy(client):
    page = client.get("/")
    assert page.status_code == 200 and b"/static/app.js" in page.data
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    for name in ("app.js", "style.css", "index.html"):
        assert client.get(f"/static/{name}").status_code == 200
        text = open(os.path.join(STATIC_DIR, name), encoding="utf-8").read()
        assert not re.search(r"https?://", text), f"{name} refers to another site"
    # No path outside the static folder, and no way to name a server file.
    assert client.get("/static/../server.py").status_code == 404
    assert client.get("/static/%2e%2e/server.py").status_code == 404


def test_inpaint_returns_a_png_of_the_result(client):
    image, hole = photo(), mask_array()
    response = post(client, png(image), png(hole), model="fake")
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert response.headers["X-Model"] == "fake"
    out = np.asarray(Image.open(io.BytesIO(response.data)))
    np.testing.assert_array_equal(out, fill_gray(image, hole / 255.0))
    # The first model is the default.
    assert post(client, png(image), png(hole)).headers["X-Model"] == "fake"


def test_uploads_of_several_megabytes_are_accepted():
    """Werkzeug's multipart buffer limit must not catch ordinary photo uploads."""
    client = create_app([fake_model()]).test_client()
    image = photo(1000, 1000, seed=2)  # ~3 MB of noise as PNG
    hole = mask_array(1000, 1000, (100, 100, 400, 500))
    response = post(client, png(image), png(hole))
    assert response.status_code == 200, response.get_json()
    out = np.asarray(Image.open(io.BytesIO(response.data)))
    np.testing.assert_array_equal(out, fill_gray(image, hole / 255.0))


def test_bad_inputs_get_clear_messages_and_the_server_keeps_serving(client):
    image, hole = png(photo()), png(mask_array())
    cases = [
        (dict(image=b"GIF89a not really", mask=hole), 400, "image: not an image file"),
        (dict(image=b"", mask=hole), 400, "image: the uploaded file is empty"),
        (dict(image=image, mask=b"%PDF-1.4"), 400, "mask: not an image file"),
        (dict(image=image), 400, "missing file field 'mask'"),
        (
            dict(image=image, mask=png(mask_array(40, 30))),
            422,
            "mask is 30x40 but the image is 50x70",
        ),
        (dict(image=png(photo(101, 100)), mask=hole), 422, "image: 100x101 is 10100 pixels"),
        (
            dict(image=image, mask=hole, model="nope"),
            404,
            "model 'nope' is not loaded; loaded: fake, guided",
        ),
        (
            dict(image=image, mask=hole, guide=image),
            400,
            "guide: model 'fake' (Fake fake) takes the files image, mask",
        ),
        (dict(image=image, mask=hole, model="guided"), 400, "missing file field 'guide'"),
        (dict(image=image, mask=hole, other=image), 400, "other: model 'fake' (Fake fake) takes"),
        (dict(image=image, mask=hole, seed="3"), 400, "unknown form field 'seed'"),
        (dict(image=image, mask=hole, hd_strategy="tiles"), 400, "hd_strategy 'tiles': expected"),
        (dict(image=png(photo(4, 4)), mask=png(mask_array(4, 4, None))), 200, None),
    ]
    for fields, status, message in cases:
        response = post(client, **fields)
        assert response.status_code == status, (fields.keys(), response.data[:200])
        if message:
            assert response.get_json()["error"].startswith(message), response.get_json()
    big = np.random.default_rng(1).integers(0, 256, (300, 300, 3), np.uint8)  # ~270 KB PNG
    response = post(client, png(big), hole)
    assert response.status_code == 413
    assert "at most 200000 bytes" in response.get_json()["error"]
    assert post(client, image, hole, model="guided", guide=image).status_code == 200
    assert client.get("/api/v1/nothing").get_json()["error"].startswith("Not Found")


def test_a_failing_model_answers_500_and_the_next_request_works():
    calls = []

    def flaky(image, hole_mask, **extras):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("out of memory\nsecond line")
        return fill_gray(image, hole_mask)

    client = create_app([fake_model(run=flaky)]).test_client()
    image, hole = png(photo()), png(mask_array())
    response = post(client, image, hole)
    assert response.status_code == 500
    assert response.get_json()["error"] == "internal error: RuntimeError: out of memory"
    assert post(client, image, hole).status_code == 200


def test_one_inference_at_a_time_and_a_full_queue_answers_503():
    release, running, active = threading.Event(), [], []

    def slow(image, hole_mask, **extras):
        active.append(1)
        running.append(len(active))
        release.wait(30)
        active.pop()
        return fill_gray(image, hole_mask)

    model = fake_model(run=slow, queue_size=1)
    app = create_app([model])
    image, hole = png(photo()), png(mask_array())
    statuses = []

    def request():
        statuses.append(post(app.test_client(), image, hole).status_code)

    threads = [threading.Thread(target=request) for _ in range(2)]
    for t in threads:
        t.start()
    deadline = time.time() + 10
    while model.pending < 2 and time.time() < deadline:  # one running, one waiting
        time.sleep(0.01)
    busy = post(app.test_client(), image, hole)
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"
    assert busy.get_json()["error"].startswith("model 'fake' is busy")
    assert app.test_client().get("/api/v1/models").get_json()["models"][0]["busy"] is True
    release.set()
    for t in threads:
        t.join(30)
    assert statuses == [200, 200] and running == [1, 1]  # never two at once
    assert model.pending == 0 and post(app.test_client(), image, hole).status_code == 200


def test_cross_origin_posts_and_foreign_hosts_are_refused(client):
    image, hole = png(photo()), png(mask_array())
    data = {"image": (io.BytesIO(image), "i.png"), "mask": (io.BytesIO(hole), "m.png")}
    response = client.post("/api/v1/inpaint", data=data, headers={"Origin": "http://evil.example"})
    assert response.status_code == 403 and "cross-origin" in response.get_json()["error"]
    response = client.get("/api/v1/models", headers={"Host": "evil.example:8080"})
    assert response.status_code == 403 and "localhost names" in response.get_json()["error"]
    assert client.get("/api/v1/models", headers={"Host": "127.0.0.1:8080"}).status_code == 200
    assert client.get("/api/v1/models", headers={"Host": "[::1]:8080"}).status_code == 200
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")


def test_model_names_come_from_the_checkpoint_folder(tmp_path):
    (tmp_path / "places2").mkdir()
    assert model_name(str(tmp_path / "places2"), set()) == "places2"
    assert model_name(str(tmp_path / "places2") + "/", {"places2"}) == "places2-2"
    assert model_name(str(tmp_path / "places2" / "snap-0"), set()) == "places2"
    (tmp_path / "completion.t7").write_bytes(b"")
    assert model_name(str(tmp_path / "completion.t7"), set()) == "completion"


def _raw_request(port: int, body: bytes, content_type: str, send_all=True, read=True) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        head = (
            f"POST /api/v1/inpaint HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        s.sendall(head + (body if send_all else body[: len(body) // 2]))
        if not read:
            return b""
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_a_real_server_survives_clients_that_disconnect():
    started, release = threading.Event(), threading.Event()

    def slow(image, hole_mask, **extras):
        started.set()
        release.wait(10)
        return fill_gray(image, hole_mask)

    model = fake_model(run=slow)
    server = make_server(create_app([model]), "127.0.0.1", 0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        port = server.effective_port
        boundary = "deepfill-test-boundary"
        parts = []
        for field, data in (("image", png(photo())), ("mask", png(mask_array()))):
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{field}";'
                f' filename="{field}.png"\r\nContent-Type: image/png\r\n\r\n'.encode()
                + data
                + b"\r\n"
            )
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        content_type = f"multipart/form-data; boundary={boundary}"
        # 1. Gone halfway through the upload: the app never sees the request.
        _raw_request(port, body, content_type, send_all=False, read=False)
        # 2. Gone while the model runs: the answer goes nowhere, the model is released.
        _raw_request(port, body, content_type, read=False)
        assert started.wait(10)
        release.set()
        deadline = time.time() + 10
        while model.pending and time.time() < deadline:
            time.sleep(0.01)
        assert model.pending == 0
        # 3. The next client is served.
        answer = _raw_request(port, body, content_type)
        assert answer.startswith(b"HTTP/1.1 200") and b"image/png" in answer
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/models", timeout=10) as r:
            assert r.status == 200
    finally:
        release.set()
        server.close()


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A tiny DeepFill v2 in the original TF1 layout, with random non-trivial weights."""
    from deepfill_tf.convert import tf1_variable_table, write_tf1_checkpoint
    from deepfill_tf.models.deepfill_generator import DeepFillV2Generator

    model = DeepFillV2Generator.tiny().build_for(64, 64)
    rng = np.random.default_rng(5)
    for v in model.weights:
        v.assign(rng.normal(0, 0.2, v.shape).astype("float32"))
    directory = tmp_path_factory.mktemp("tiny_v2")
    table = {k: v.numpy() for k, v in tf1_variable_table(model).items()}
    write_tf1_checkpoint(table, str(directory))
    return str(directory)


def test_same_pixels_as_deepfill_tf_inpaint(tmp_path, tiny_checkpoint):
    """JPEG photo of a size that is no multiple of 8, gray mask file: the API's PNG and the
    CLI's output file are identical."""
    from deepfill_tf.cli.main import main
    from deepfill_tf.ui.models import load_models

    Image.fromarray(photo(70, 50, seed=4)).save(tmp_path / "in.jpg", quality=90)
    Image.fromarray(mask_array(70, 50, (15, 8, 50, 30))).save(tmp_path / "mask.png")
    out = tmp_path / "cli.png"
    args = ["--checkpoint", tiny_checkpoint, "--image", tmp_path / "in.jpg"]
    assert (
        main(
            ["inpaint", *map(str, args), "--mask", str(tmp_path / "mask.png"), "--output", str(out)]
        )
        == 0
    )
    cli = np.asarray(Image.open(out))

    models = load_models([tiny_checkpoint], log=lambda _: None)
    assert models[0].family == "deepfill_v2" and models[0].extras == ()
    client = create_app(models).test_client()
    response = post(
        client, (tmp_path / "in.jpg").read_bytes(), (tmp_path / "mask.png").read_bytes()
    )
    assert response.status_code == 200, response.get_json()
    api = np.asarray(Image.open(io.BytesIO(response.data)))
    np.testing.assert_array_equal(api, cli)
    assert (api != np.asarray(Image.open(tmp_path / "in.jpg"))).any()  # the hole was filled
    # Image too small for the model: 422 naming the size; the model still serves afterwards.
    small = post(client, png(photo(4, 4)), png(mask_array(4, 4, (1, 1, 3, 3))))
    assert small.status_code == 422 and "image is 4x4" in small.get_json()["error"]
    assert (
        post(
            client, (tmp_path / "in.jpg").read_bytes(), (tmp_path / "mask.png").read_bytes()
        ).status_code
        == 200
    )


def test_large_photos_and_exif_give_the_cli_pixels(tmp_path, tiny_checkpoint):
    """A photo longer than 1024 px runs with the CLI's large-photo strategy (crop by default,
    resize on request); an EXIF-rotated JPEG is turned as the CLI turns it."""
    from deepfill_tf.cli.main import main
    from deepfill_tf.ui.models import load_models

    client = create_app(load_models([tiny_checkpoint], log=lambda _: None)).test_client()
    wide = photo(64, 1100, seed=8)
    hole = mask_array(64, 1100, (10, 40, 40, 90))
    hole[20:50, 900:1000] = 255
    Image.fromarray(wide).save(tmp_path / "wide.png")
    Image.fromarray(hole).save(tmp_path / "wide_mask.png")
    stored = photo(48, 64, seed=9)  # shown turned (EXIF 6): 48 wide, 64 tall
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "turned.jpg", exif=exif, quality=95)
    Image.fromarray(mask_array(64, 48, (10, 10, 40, 30))).save(tmp_path / "turned_mask.png")
    # The CLI in batch mode: one model load per strategy.
    (tmp_path / "jobs.txt").write_text(
        "wide.png wide_mask.png wide_crop.png\nturned.jpg turned_mask.png turned_cli.png\n"
    )
    (tmp_path / "resize.txt").write_text("wide.png wide_mask.png wide_resize.png\n")
    base = ["inpaint", "--checkpoint", tiny_checkpoint, "--flist"]
    assert main([*base, str(tmp_path / "jobs.txt")]) == 0
    assert main([*base, str(tmp_path / "resize.txt"), "--hd-strategy", "resize"]) == 0
    cases = [("wide.png", "crop", "wide_crop"), ("wide.png", "resize", "wide_resize")]
    cases += [("turned.jpg", None, "turned_cli")]
    for image, strategy, output in cases:
        mask = tmp_path / (image.split(".")[0] + "_mask.png")
        fields = {"hd_strategy": strategy} if strategy else {}
        response = post(client, (tmp_path / image).read_bytes(), mask.read_bytes(), **fields)
        assert response.status_code == 200, response.get_json()
        api = np.asarray(Image.open(io.BytesIO(response.data)))
        cli = np.asarray(Image.open(tmp_path / f"{output}.png"))
        np.testing.assert_array_equal(api, cli, err_msg=f"{image} {strategy}")
    assert api.shape == (64, 48, 3)


def test_cli_serves_the_page_and_prints_the_url(tiny_checkpoint):
    """`deepfill-tf ui --port 0` prints its URL, serves the page and the API, stops on SIGTERM."""
    command = [sys.executable, "-m", "deepfill_tf.cli.main", "ui", "--checkpoint", tiny_checkpoint]
    process = subprocess.Popen(
        [*command, "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        deadline = time.time() + 120
        while time.time() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "serving http://" in line:
                break
        match = re.search(r"serving (http://127\.0\.0\.1:\d+/)", "".join(lines))
        assert match, ("".join(lines), process.poll())
        url = match.group(1)
        assert re.search(r"loaded tiny_v2\d*: DeepFill v2", "".join(lines))
        with urllib.request.urlopen(url, timeout=10) as r:
            assert b"deepfill-tf ui" in r.read()
        with urllib.request.urlopen(url + "api/v1/models", timeout=10) as r:
            assert json.load(r)["models"][0]["family"] == "deepfill_v2"
    finally:
        process.send_signal(signal.SIGTERM)  # as `kill`; Ctrl+C (SIGINT) stops it the same way
        try:
            stdout, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert process.returncode == 0, stderr
    assert "stopped" in stdout and "warning" not in stderr


def test_cli_refuses_a_port_in_use_in_one_line(tiny_checkpoint, capsys):
    from deepfill_tf.cli.main import main

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["ui", "--checkpoint", tiny_checkpoint, "--port", str(port)])
    err = capsys.readouterr().err
    assert code == 1 and f"cannot listen on 127.0.0.1:{port}" in err and "--port" in err
    bad = [
        (["--port", "99999"], "--port 99999: not a port number"),
        (["--queue-size", "-1"], "--queue-size >= 0"),
        (["--checkpoint", "no/such/place"], "checkpoint not found: no/such/place"),
    ]
    for flags, message in bad:
        assert main(["ui", "--checkpoint", tiny_checkpoint, *flags]) == 1
        assert message in capsys.readouterr().err


def test_scfegan_sketch_and_colour_give_the_cli_pixels(tmp_path):
    """An SC-FEGAN model takes `sketch` and `color` files; same pixels as `deepfill-tf inpaint
    --sketch --color` (default seed 0 on both sides)."""
    from deepfill_tf.cli.main import main
    from deepfill_tf.convert import write_tf1_checkpoint
    from deepfill_tf.models.sc_fegan import SCFEGANGenerator
    from deepfill_tf.ui.models import load_models

    model = SCFEGANGenerator.tiny()
    model.build((1, 128, 128, 9))
    rng = np.random.default_rng(6)
    for v in model.weights:
        v.assign(rng.normal(0, 0.2, v.shape).astype("float32"))
    tables = {k: v.numpy() for k, v in model.tf1_variable_table().items()}
    write_tf1_checkpoint(tables, str(tmp_path / "faces"))
    files = {
        "image": photo(128, 128, seed=7),
        "mask": mask_array(128, 128, (30, 30, 90, 100)),
        "sketch": np.zeros((128, 128), np.uint8),
        "color": np.zeros((128, 128, 3), np.uint8),
    }
    files["sketch"][60, 35:95] = 255
    files["color"][40:50, 40:80] = (200, 40, 30)
    for name, array in files.items():
        Image.fromarray(array).save(tmp_path / f"{name}.png")
    flags = [f"--{name}={tmp_path / name}.png" for name in files]
    out = tmp_path / "cli.png"
    ckpt = str(tmp_path / "faces")
    assert main(["inpaint", "--checkpoint", ckpt, *flags, "--output", str(out)]) == 0
    models = load_models([ckpt], log=lambda _: None)
    assert models[0].extras == ("sketch", "color") and models[0].required == ()
    client = create_app(models).test_client()
    fields = {name: (tmp_path / f"{name}.png").read_bytes() for name in files}
    response = post(client, **fields)
    assert response.status_code == 200, response.get_json()
    api = np.asarray(Image.open(io.BytesIO(response.data)))
    np.testing.assert_array_equal(api, np.asarray(Image.open(out)))
    plain = post(client, fields["image"], fields["mask"])  # sketch and colour are optional
    assert plain.status_code == 200
    assert (np.asarray(Image.open(io.BytesIO(plain.data))) != api).any()
    wrong = post(client, fields["image"], fields["mask"], guide=fields["color"])
    assert wrong.status_code == 400
    assert "takes the files image, mask, sketch, color" in wrong.get_json()["error"]


def test_guided_deepfill_needs_the_edge_image_and_gives_the_cli_pixels(tmp_path):
    from deepfill_tf.cli.main import main
    from deepfill_tf.convert import tf1_variable_table, write_tf1_checkpoint
    from deepfill_tf.models.deepfill_generator import DeepFillV2Generator
    from deepfill_tf.ui.models import load_models

    model = DeepFillV2Generator.tiny(guided=True).build_for(64, 64)
    rng = np.random.default_rng(10)
    for v in model.weights:
        v.assign(rng.normal(0, 0.2, v.shape).astype("float32"))
    table = {k: v.numpy() for k, v in tf1_variable_table(model).items()}
    write_tf1_checkpoint(table, str(tmp_path / "edges"))
    edges = np.zeros((64, 72), np.uint8)
    edges[20:44, 36] = 255
    arrays = {"image": photo(64, 72, seed=11), "mask": mask_array(64, 72, (16, 20, 48, 52))}
    arrays["guide"] = edges
    for name, array in arrays.items():
        Image.fromarray(array).save(tmp_path / f"{name}.png")
    flags = [f"--{name}={tmp_path / name}.png" for name in arrays]
    ckpt, out = str(tmp_path / "edges"), tmp_path / "cli.png"
    assert main(["inpaint", "--checkpoint", ckpt, *flags, "--output", str(out)]) == 0
    models = load_models([ckpt], log=lambda _: None)
    assert models[0].extras == ("guide",) and models[0].required == ("guide",)
    client = create_app(models).test_client()
    fields = {name: (tmp_path / f"{name}.png").read_bytes() for name in arrays}
    response = post(client, **fields)
    assert response.status_code == 200, response.get_json()
    api = np.asarray(Image.open(io.BytesIO(response.data)))
    np.testing.assert_array_equal(api, np.asarray(Image.open(out)))
    missing = post(client, fields["image"], fields["mask"])
    assert (
        missing.status_code == 400 and "missing file field 'guide'" in missing.get_json()["error"]
    )
