"""`deepfill-tf ui` in a real headless Chromium (Selenium + the system chromedriver).

Opens the page, loads the bundled example photo through the file picker, paints a stroke with
real mouse events, runs the bundled demo model, downloads the result and checks that pixels
outside the stroke are unchanged and pixels inside changed; then keeps editing on the result
(a second stroke, undone with Ctrl+Z). A screenshot goes to ``out/ui/ui.png``; with
``DEEPFILL_UI_SCREENSHOT=update`` also to ``docs/images/ui.png`` (the README's picture).

Skips only where no Chromium / chromedriver is installed (Debian: ``apt-get install chromium
chromium-driver``; ``.ci/run`` does that on CI).
"""

from __future__ import annotations

import os
import shutil
import threading
import time

import numpy as np
import pytest
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHOTO = os.path.join(REPO, "examples", "demo", "coffee.png")
DEMO = os.path.join(REPO, "checkpoints", "demo")
BRUSH = 24  # the page's default brush size, image pixels
STROKE_Y, STROKE_X0, STROKE_X1 = 64, 30, 98  # image pixels of the painted line


def _find(*names):
    return next((p for p in map(shutil.which, names) if p), None)


CHROMIUM = _find("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMEDRIVER = _find("chromedriver")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not CHROMIUM or not CHROMEDRIVER:
        pytest.skip(
            "no Chromium + chromedriver installed (Debian: apt-get install chromium"
            " chromium-driver; .ci/run installs them on CI)"
        )
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (the test extra)")
    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,800",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(options=options, service=service)
    driver.downloads = downloads
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def server():
    from deepfill_tf.ui.models import load_models, warm_up
    from deepfill_tf.ui.server import create_app, make_server, server_url

    models = load_models([DEMO], log=lambda _: None)
    warm_up(models[0])  # as deepfill-tf ui does: the page's run shows the steady-state time
    srv = make_server(create_app(models), "127.0.0.1", 0, threads=4)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    yield server_url(srv)
    srv.close()


def _wait(driver, condition, what, timeout=120, expect_error=False):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        error = driver.find_element("id", "error")
        if not expect_error and error.is_displayed():
            raise AssertionError(f"the page shows an error while waiting for {what}: {error.text}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _paint(driver, x0, y0, x1, y1, steps=12):
    """A stroke with real mouse events from image pixel (x0, y0) to (x1, y1)."""
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    # Where the (zoomed, panned) canvas is in the window, in CSS pixels.
    left, top, width = driver.execute_script(
        "const r = document.getElementById('view').getBoundingClientRect();"
        "return [r.left, r.top, r.width];"
    )
    scale = width / 128.0
    actions = ActionBuilder(driver, duration=20)  # ms per move
    mouse = actions.pointer_action
    mouse.move_to_location(round(left + x0 * scale), round(top + y0 * scale)).pointer_down()
    for i in range(1, steps + 1):
        x = x0 + (x1 - x0) * i / steps
        y = y0 + (y1 - y0) * i / steps
        mouse.move_to_location(round(left + x * scale), round(top + y * scale))
    mouse.pointer_up()
    actions.perform()


def _hole_pixels(driver) -> int:
    return driver.execute_script(
        "const d = state.layers.hole.getContext('2d').getImageData(0, 0, 128, 128).data;"
        "let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 127; return n;"
    )


def test_paint_run_download_in_chromium(browser, server):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    driver = browser
    driver.get(server)
    _wait(driver, lambda: "model(s) loaded" in driver.find_element("id", "status").text, "models")
    options = driver.find_elements("css selector", "#model option")
    assert [o.text for o in options] == ["demo \u2014 DeepFill v2"]

    driver.find_element("id", "open-file").send_keys(PHOTO)
    _wait(driver, lambda: "128\u00d7128" in driver.find_element("id", "status").text, "the photo")

    _paint(driver, STROKE_X0, STROKE_Y, STROKE_X1, STROKE_Y)
    painted = _hole_pixels(driver)
    assert (
        0.8 * BRUSH * (STROKE_X1 - STROKE_X0)
        < painted
        < 1.3 * BRUSH * (STROKE_X1 - STROKE_X0 + BRUSH)
    )

    driver.find_element("id", "run").click()
    link = driver.find_element("id", "download")
    _wait(driver, lambda: "disabled" not in link.get_attribute("class"), "the result")
    assert "done in" in driver.find_element("id", "status").text
    assert _hole_pixels(driver) == 0  # layers cleared: editing goes on on the result

    link.click()
    target = driver.downloads / "coffee_inpainted.png"
    _wait(driver, lambda: target.exists() and target.stat().st_size > 0, "the download", 30)
    time.sleep(0.2)
    result = np.asarray(Image.open(target).convert("RGB")).astype(int)
    photo = np.asarray(Image.open(PHOTO).convert("RGB")).astype(int)
    assert result.shape == photo.shape

    yy, xx = np.mgrid[:128, :128]
    # Distance of each pixel to the painted segment.
    dx = np.maximum(np.maximum(STROKE_X0 - xx, xx - STROKE_X1), 0)
    distance = np.hypot(dx, yy - STROKE_Y)
    changed = np.any(result != photo, axis=-1)
    outside = distance > BRUSH / 2 + 3  # margin: the canvas stroke is a little wider than ideal
    inside = distance < BRUSH / 2 - 3
    assert not changed[outside].any(), f"{changed[outside].sum()} pixels outside the stroke changed"
    assert changed[inside].mean() > 0.9, f"only {changed[inside].mean():.0%} of the stroke changed"
    assert np.abs(result - photo)[inside].mean() > 5

    # Keep editing: a second stroke on the result, undone and redone from the keyboard.
    _paint(driver, 20, 30, 60, 40)
    assert _hole_pixels(driver) > 0
    ActionChains(driver).key_down(Keys.CONTROL).send_keys("z").key_up(Keys.CONTROL).perform()
    assert _hole_pixels(driver) == 0
    ActionChains(driver).key_down(Keys.CONTROL).key_down(Keys.SHIFT).send_keys("z").key_up(
        Keys.SHIFT
    ).key_up(Keys.CONTROL).perform()
    assert _hole_pixels(driver) > 0

    os.makedirs(os.path.join(REPO, "out", "ui"), exist_ok=True)
    driver.save_screenshot(os.path.join(REPO, "out", "ui", "ui.png"))
    if os.environ.get("DEEPFILL_UI_SCREENSHOT") == "update":
        driver.save_screenshot(os.path.join(REPO, "docs", "images", "ui.png"))


def test_errors_are_shown_in_the_page(browser, server):
    driver = browser
    driver.get(server)
    _wait(driver, lambda: "model(s) loaded" in driver.find_element("id", "status").text, "models")
    driver.find_element("id", "run").click()
    error = driver.find_element("id", "error")
    assert error.is_displayed() and "open an image first" in error.text
    # A mask of another size is refused with the sizes named.
    driver.find_element("id", "open-file").send_keys(PHOTO)
    _wait(driver, lambda: "128\u00d7128" in driver.find_element("id", "status").text, "the photo")
    small = os.path.join(str(browser.downloads), "small_mask.png")
    Image.fromarray(np.zeros((40, 50), np.uint8)).save(small)
    driver.find_element("id", "mask-file").send_keys(small)
    _wait(driver, error.is_displayed, "the error", expect_error=True)
    assert "mask is 50\u00d740 but the image is 128\u00d7128" in error.text
    # An answer of the server (here 503 from a busy model) is shown as it says.
    driver.execute_script(
        "window.fetch = async () => new Response(JSON.stringify({error: \"model 'demo' is busy\"}),"
        " {status: 503, headers: {'Content-Type': 'application/json'}});"
    )
    driver.find_element("id", "error-close").click()
    _paint(driver, 40, 40, 80, 40)
    driver.find_element("id", "run").click()
    _wait(driver, error.is_displayed, "the busy message", expect_error=True)
    assert error.text.startswith("busy: model 'demo' is busy")
    assert not driver.find_element("id", "run").get_attribute("disabled")


@pytest.fixture(scope="module")
def fake_server():
    """Two stand-in models (no TensorFlow) that record what the page sends."""
    from deepfill_tf.ui.models import COLOR, GUIDE, SKETCH, Model
    from deepfill_tf.ui.server import create_app, make_server, server_url

    class Received(list):
        release: threading.Event

    received = Received()

    def record(image, hole_mask, **extras):
        received.append({"image": image, "mask": hole_mask, **extras})
        out = image.copy()
        out[hole_mask > 0.5] = 255 - out[hole_mask > 0.5]
        return out

    release = threading.Event()

    def slow(image, hole_mask, **extras):
        release.wait(60)
        return record(image, hole_mask, **extras)

    models = [
        Model("faces", "scfegan", "SC-FEGAN", (SKETCH, COLOR), (), record),
        Model("edges", "deepfill_v2", "DeepFill v2 (guided)", (GUIDE,), (GUIDE,), record),
        Model("slow", "fake", "Slow", (), (), slow),
    ]
    srv = make_server(create_app(models), "127.0.0.1", 0, threads=4)
    threading.Thread(target=srv.run, daemon=True).start()
    received.release = release
    yield server_url(srv), received
    release.set()
    srv.close()


def _select_model(driver, name):
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("id", "model")).select_by_value(name)


def test_sketch_colour_and_edge_layers_zoom_pan_compare(browser, fake_server):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
    from selenium.webdriver.common.keys import Keys

    url, received = fake_server
    driver = browser
    driver.get(url)
    _wait(driver, lambda: "model(s) loaded" in driver.find_element("id", "status").text, "models")
    layer_button = lambda name: driver.find_element("css selector", f"[data-layer={name}]")  # noqa: E731
    assert layer_button("sketch").is_displayed() and layer_button("color").is_displayed()
    assert not layer_button("edge").is_displayed()
    driver.find_element("id", "open-file").send_keys(PHOTO)
    _wait(driver, lambda: "128\u00d7128" in driver.find_element("id", "status").text, "the photo")

    _paint(driver, 20, 60, 108, 60)  # the hole
    layer_button("sketch").click()
    _paint(driver, 64, 40, 64, 80)  # a vertical sketch line, partly outside the hole
    driver.execute_script(
        "const c = document.getElementById('color'); c.value = '#00ff00';"
        "c.dispatchEvent(new Event('input'));"
    )
    _paint(driver, 30, 60, 50, 60)
    driver.find_element("id", "run").click()
    _wait(
        driver,
        lambda: len(received) == 1 and "done in" in driver.find_element("id", "status").text,
        "the run",
    )
    sent = received[0]
    assert set(sent) == {"image", "mask", "sketch", "color"}
    assert sent["mask"][60, 64] == 1 and sent["mask"][10, 64] == 0
    assert (sent["sketch"][70, 64] == 255).all() and (sent["sketch"][70, 20] == 0).all()
    assert tuple(sent["color"][60, 40]) == (0, 255, 0) and tuple(sent["color"][60, 90]) == (0, 0, 0)

    # Compare: holding C shows the image before the run.
    view_pixel = (
        "return Array.from(view.getContext('2d').getImageData(64, 60, 1, 1).data.slice(0, 3));"
    )
    after = driver.execute_script(view_pixel)
    ActionChains(driver).key_down("c").perform()
    driver.execute_script("return new Promise(r => requestAnimationFrame(() => r()))")
    before = driver.execute_script(view_pixel)
    ActionChains(driver).key_up("c").perform()
    photo = np.asarray(Image.open(PHOTO).convert("RGB"))
    assert before == photo[60, 64].tolist() and after == (255 - photo[60, 64]).tolist()

    # Zoom with the wheel, pan with Space + drag, fit with 0.
    scale = driver.execute_script("return state.scale")
    view = driver.find_element("id", "view")
    ActionChains(driver).scroll_from_origin(ScrollOrigin.from_element(view), 0, -300).perform()
    zoomed = driver.execute_script("return state.scale")
    assert zoomed > scale * 1.2
    tx = driver.execute_script("return state.tx")
    ActionChains(driver).key_down(Keys.SPACE).move_to_element(view).click_and_hold().move_by_offset(
        -40, 0
    ).release().key_up(Keys.SPACE).perform()
    assert abs(driver.execute_script("return state.tx") - (tx - 40)) < 2
    assert _hole_pixels(driver) == 0  # panning painted nothing
    ActionChains(driver).send_keys("0").perform()
    assert abs(driver.execute_script("return state.scale") - scale) < 1e-6

    # The guided model: only the edge layer, sent as `guide` (black when nothing is drawn).
    _select_model(driver, "edges")
    assert layer_button("edge").is_displayed() and not layer_button("sketch").is_displayed()
    _paint(driver, 20, 30, 60, 30)
    driver.find_element("id", "run").click()
    _wait(driver, lambda: len(received) == 2, "the second run")
    assert set(received[1]) == {"image", "mask", "guide"} and not received[1]["guide"].any()


def test_brush_keys_eraser_clear_and_busy_indicator(browser, fake_server):
    from selenium.webdriver.common.action_chains import ActionChains

    url, received = fake_server
    driver = browser
    driver.get(url)
    _wait(driver, lambda: "model(s) loaded" in driver.find_element("id", "status").text, "models")
    driver.find_element("id", "open-file").send_keys(PHOTO)
    _wait(driver, lambda: "128\u00d7128" in driver.find_element("id", "status").text, "the photo")
    size = lambda: int(driver.find_element("id", "size-value").text)  # noqa: E731
    ActionChains(driver).send_keys("]").perform()
    assert size() > BRUSH
    ActionChains(driver).send_keys("[[").perform()
    assert size() < BRUSH

    _paint(driver, 20, 64, 108, 64)
    full = _hole_pixels(driver)
    ActionChains(driver).send_keys("e").perform()  # eraser
    _paint(driver, 50, 64, 80, 64)
    erased = _hole_pixels(driver)
    assert 0 < erased < full * 0.8
    ActionChains(driver).send_keys("b").perform()
    driver.find_element("id", "clear").click()
    assert _hole_pixels(driver) == 0
    driver.find_element("id", "undo").click()
    assert _hole_pixels(driver) == erased

    from selenium.webdriver.support.ui import Select

    hd = Select(driver.find_element("id", "hd"))
    assert [o.get_attribute("value") for o in hd.options] == ["original", "resize", "crop"]
    assert hd.first_selected_option.get_attribute("value") == "crop"  # the CLI's default
    _select_model(driver, "slow")
    driver.find_element("id", "run").click()
    busy = driver.find_element("id", "busy")
    _wait(driver, busy.is_displayed, "the busy indicator", 10)
    assert driver.find_element("id", "run").get_attribute("disabled")
    received.release.set()
    _wait(driver, lambda: not busy.is_displayed(), "the end of the run", 30)
    assert "done in" in driver.find_element("id", "status").text
    assert not driver.find_element("id", "run").get_attribute("disabled")


def test_an_exif_rotated_photo_is_sent_as_shown(browser, fake_server, tmp_path):
    """The browser shows a JPEG turned by its EXIF tag, the server turns it the same way (as
    deepfill-tf inpaint), so the mask painted on it fits."""
    url, received = fake_server
    stored = np.zeros((64, 96, 3), np.uint8)  # wide as stored, tall once turned (tag 6)
    stored[:, :48] = (200, 40, 40)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "turned.jpg"
    Image.fromarray(stored).save(path, exif=exif, quality=95)
    driver = browser
    driver.get(url)
    _wait(driver, lambda: "model(s) loaded" in driver.find_element("id", "status").text, "models")
    _select_model(driver, "faces")
    driver.find_element("id", "open-file").send_keys(str(path))
    _wait(driver, lambda: "64\u00d796" in driver.find_element("id", "status").text, "the photo")
    driver.execute_script(
        "const c = state.layers.hole.getContext('2d'); c.fillStyle = '#fff';"
        " c.fillRect(10, 10, 20, 20);"
    )
    count = len(received)
    driver.find_element("id", "run").click()
    _wait(driver, lambda: len(received) > count, "the run", 30)
    sent = received[-1]
    assert sent["image"].shape == (96, 64, 3) and sent["mask"].shape == (96, 64)
    assert sent["image"][0, 32, 0] > 100 > sent["image"][95, 32, 0]  # turned: left -> top
