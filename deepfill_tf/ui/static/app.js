// deepfill-tf ui: paint a hole (and, per model, a sketch / colour / edge layer), send it to
// POST /api/v1/inpaint, show the result and keep editing on it. Plain JS, no dependencies.
//
// Every layer is a canvas of the image's own size; strokes are drawn in image pixels and sent
// as binary PNGs (a pixel counts when its painted alpha is > 127): the hole as white on black
// (the server's mask convention: white = hole), sketch and edge as white on black, colour
// strokes in their colour on black. The image itself is sent as the bytes of the opened file
// (or of the last result), so the server decodes exactly what `deepfill-tf inpaint` would
// (EXIF orientation applied by both, as the browser shows the photo).
"use strict";

const $ = (id) => document.getElementById(id);
const LAYERS = ["hole", "sketch", "color", "edge"];
const EXTRA_OF_LAYER = { sketch: "sketch", color: "color", edge: "guide" };
const TINT = { hole: "rgba(255, 40, 60, 0.55)", edge: "rgba(0, 230, 255, 0.9)" };
const HISTORY_LIMIT = 30;

const state = {
  models: [],
  limits: null,
  image: null, // canvas holding the current image (natural size)
  imageBlob: null, // bytes sent as `image`
  imageName: "image",
  before: null, // canvas: the image before the last run (compare)
  layers: {}, // name -> canvas
  layer: "hole",
  erasing: false,
  size: 24,
  scale: 1, tx: 0, ty: 0,
  history: [], future: [],
  stroke: null, // {ctx, last: [x, y]}
  pan: null, // {x, y, tx, ty}
  spaceDown: false,
  comparing: false,
  busy: false,
  resultUrl: null,
};

const view = $("view");
const viewCtx = view.getContext("2d");
const viewport = $("viewport");
const stage = $("stage");
const cursor = $("cursor");

// ---------------------------------------------------------------------------------- messages
function showError(message) {
  $("error-text").textContent = message;
  $("error").hidden = false;
}
function clearError() { $("error").hidden = true; }
function setStatus(text) { $("status").textContent = text; }
$("error-close").addEventListener("click", clearError);

// ---------------------------------------------------------------------------------- canvases
function newCanvas(w, h) {
  const c = document.createElement("canvas");
  c.width = w; c.height = h;
  return c;
}
function copyCanvas(src) {
  const c = newCanvas(src.width, src.height);
  c.getContext("2d").drawImage(src, 0, 0);
  return c;
}
function layerData(name) {
  const c = state.layers[name];
  return c.getContext("2d").getImageData(0, 0, c.width, c.height);
}
// Undo snapshots keep only the bounding box of a layer's painted pixels (null: nothing
// painted), so a long history of strokes on a large photo stays small.
function snapshot(name) {
  const c = state.layers[name];
  const ctx = c.getContext("2d");
  const { width: w, height: h } = c;
  const d = ctx.getImageData(0, 0, w, h).data;
  let x0 = w, y0 = h, x1 = -1, y1 = -1;
  for (let y = 0; y < h; y++) {
    const row = y * w * 4;
    for (let x = 0; x < w; x++) {
      if (d[row + 4 * x + 3]) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        y1 = y;
      }
    }
  }
  if (x1 < 0) return null;
  return { x: x0, y: y0, data: ctx.getImageData(x0, y0, x1 - x0 + 1, y1 - y0 + 1) };
}
function putSnapshot(name, snap) {
  const c = state.layers[name];
  const ctx = c.getContext("2d");
  ctx.clearRect(0, 0, c.width, c.height);
  if (snap) ctx.putImageData(snap.data, snap.x, snap.y);
}
function layerIsEmpty(name) {
  const d = layerData(name).data;
  for (let i = 3; i < d.length; i += 4) if (d[i] > 127) return false;
  return true;
}

// Binary PNG of a layer on black: painted (alpha > 127) pixels keep their colour (white for
// hole / sketch / edge), the rest are black.
function layerPng(name) {
  const src = layerData(name);
  const out = new ImageData(src.width, src.height);
  const s = src.data, o = out.data;
  for (let i = 0; i < s.length; i += 4) {
    const on = s[i + 3] > 127;
    o[i] = on ? s[i] : 0; o[i + 1] = on ? s[i + 1] : 0; o[i + 2] = on ? s[i + 2] : 0;
    o[i + 3] = 255;
  }
  const c = newCanvas(src.width, src.height);
  c.getContext("2d").putImageData(out, 0, 0);
  return canvasPng(c);
}

// ---------------------------------------------------------------------------------- drawing
let renderQueued = false;
function render() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => { renderQueued = false; renderNow(); });
}
const tintCanvas = newCanvas(1, 1);
function renderNow() {
  if (!state.image) return;
  const { width: w, height: h } = state.image;
  viewCtx.globalCompositeOperation = "source-over";
  viewCtx.globalAlpha = 1;
  viewCtx.clearRect(0, 0, w, h);
  if (state.comparing && state.before) {
    viewCtx.drawImage(state.before, 0, 0);
    return;
  }
  viewCtx.drawImage(state.image, 0, 0);
  if (tintCanvas.width !== w || tintCanvas.height !== h) { tintCanvas.width = w; tintCanvas.height = h; }
  const tctx = tintCanvas.getContext("2d");
  for (const name of ["sketch", "color", "edge", "hole"]) {
    if (!layerVisible(name)) continue;
    const layer = state.layers[name];
    if (TINT[name]) {
      tctx.globalCompositeOperation = "source-over";
      tctx.clearRect(0, 0, w, h);
      tctx.drawImage(layer, 0, 0);
      tctx.globalCompositeOperation = "source-in";
      tctx.fillStyle = TINT[name];
      tctx.fillRect(0, 0, w, h);
      viewCtx.drawImage(tintCanvas, 0, 0);
    } else {
      viewCtx.drawImage(layer, 0, 0);
    }
  }
}
function layerVisible(name) {
  return name === "hole" || currentExtras().includes(EXTRA_OF_LAYER[name]);
}

function toImage(ev) {
  const r = view.getBoundingClientRect();
  return [(ev.clientX - r.left) * view.width / r.width, (ev.clientY - r.top) * view.height / r.height];
}

function strokeStyle() {
  return state.layer === "color" ? $("color").value : "#ffffff";
}

function beginStroke(ev) {
  const name = state.layer;
  pushHistory({ layers: { [name]: snapshot(name) } });
  const ctx = state.layers[name].getContext("2d");
  ctx.globalCompositeOperation = state.erasing ? "destination-out" : "source-over";
  ctx.strokeStyle = ctx.fillStyle = strokeStyle();
  ctx.lineWidth = state.size;
  ctx.lineCap = ctx.lineJoin = "round";
  const [x, y] = toImage(ev);
  ctx.beginPath();
  ctx.arc(x, y, state.size / 2, 0, 2 * Math.PI);
  ctx.fill();
  state.stroke = { ctx, last: [x, y] };
  render();
}
function continueStroke(ev) {
  const { ctx, last } = state.stroke;
  const events = ev.getCoalescedEvents ? ev.getCoalescedEvents() : [ev];
  for (const e of events.length ? events : [ev]) {
    const [x, y] = toImage(e);
    ctx.beginPath();
    ctx.moveTo(last[0], last[1]);
    ctx.lineTo(x, y);
    ctx.stroke();
    state.stroke.last = [x, y];
  }
  render();
}

// ---------------------------------------------------------------------------------- history
// An entry holds what to put back: {image?: canvas, before?: canvas|null, blob?, layers: {name: snapshot}}.
function capture(entry) {
  const now = { layers: {} };
  if ("image" in entry) {
    now.image = state.image; now.before = state.before; now.blob = state.imageBlob;
  }
  for (const name of Object.keys(entry.layers)) now.layers[name] = snapshot(name);
  return now;
}
function restore(entry) {
  if ("image" in entry) {
    state.image = entry.image; state.before = entry.before; state.imageBlob = entry.blob;
    updateResultControls();
  }
  for (const [name, snap] of Object.entries(entry.layers)) putSnapshot(name, snap);
  render();
}
function pushHistory(entry) {
  state.history.push(entry);
  if (state.history.length > HISTORY_LIMIT) state.history.shift();
  state.future = [];
  updateHistoryButtons();
}
function undo() {
  if (!state.history.length || state.busy) return;
  const entry = state.history.pop();
  state.future.push(capture(entry));
  restore(entry);
  updateHistoryButtons();
}
function redo() {
  if (!state.future.length || state.busy) return;
  const entry = state.future.pop();
  state.history.push(capture(entry));
  restore(entry);
  updateHistoryButtons();
}
function updateHistoryButtons() {
  $("undo").disabled = !state.history.length;
  $("redo").disabled = !state.future.length;
}
function clearLayers() {
  if (!state.image) return;
  const layers = {};
  for (const name of LAYERS) {
    const snap = snapshot(name);
    if (snap) layers[name] = snap;
  }
  if (!Object.keys(layers).length) return;
  pushHistory({ layers });
  for (const name of Object.keys(layers)) {
    const c = state.layers[name];
    c.getContext("2d").clearRect(0, 0, c.width, c.height);
  }
  render();
}

// ---------------------------------------------------------------------------------- view
function applyTransform() {
  stage.style.transform = `translate(${state.tx}px, ${state.ty}px) scale(${state.scale})`;
  view.classList.toggle("pixelated", state.scale >= 2);
  cursor.style.width = cursor.style.height = `${state.size * state.scale}px`;
}
function fit() {
  if (!state.image) return;
  const vw = viewport.clientWidth, vh = viewport.clientHeight;
  const { width: w, height: h } = state.image;
  state.scale = Math.min((vw - 20) / w, (vh - 20) / h, 8);
  state.tx = (vw - w * state.scale) / 2;
  state.ty = (vh - h * state.scale) / 2;
  applyTransform();
}
function zoomAt(factor, cx, cy) {
  const s = Math.min(Math.max(state.scale * factor, 0.05), 32);
  state.tx = cx - (cx - state.tx) * (s / state.scale);
  state.ty = cy - (cy - state.ty) * (s / state.scale);
  state.scale = s;
  applyTransform();
}
function zoomCenter(factor) { zoomAt(factor, viewport.clientWidth / 2, viewport.clientHeight / 2); }

// ---------------------------------------------------------------------------------- images
async function decodeBlob(blob) {
  const bitmap = await createImageBitmap(blob);
  const c = newCanvas(bitmap.width, bitmap.height);
  c.getContext("2d").drawImage(bitmap, 0, 0);
  bitmap.close();
  return c;
}

function canvasPng(canvas) {
  return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
}

async function openImage(file) {
  if (!file) return;
  clearError();
  let canvas;
  try {
    canvas = await decodeBlob(file);
  } catch (e) {
    showError(`${file.name}: the browser cannot read this file as an image`);
    return;
  }
  // The file's own bytes are sent: the server decodes them as `deepfill-tf inpaint` does,
  // turned by their EXIF orientation as the browser shows them.
  state.image = canvas;
  state.imageBlob = file;
  state.imageName = (file.name || "image").replace(/\.[^.]*$/, "");
  state.before = null;
  state.layers = {};
  for (const name of LAYERS) state.layers[name] = newCanvas(canvas.width, canvas.height);
  state.history = []; state.future = [];
  view.width = canvas.width; view.height = canvas.height;
  $("hint").hidden = true;
  updateHistoryButtons();
  updateResultControls();
  fit();
  render();
  const pixels = canvas.width * canvas.height;
  const limit = state.limits && state.limits.max_pixels;
  setStatus(`${file.name}: ${canvas.width}\u00d7${canvas.height}` +
    (limit && pixels > limit ? ` (over this server's limit of ${limit} pixels)` : ""));
}

async function openMask(file) {
  if (!file) return;
  if (!state.image) { showError("open an image before its mask"); return; }
  let mask;
  try {
    mask = await decodeBlob(file);
  } catch (e) {
    showError(`${file.name}: the browser cannot read this file as an image`);
    return;
  }
  const { width: w, height: h } = state.image;
  if (mask.width !== w || mask.height !== h) {
    showError(`mask is ${mask.width}\u00d7${mask.height} but the image is ${w}\u00d7${h}`);
    return;
  }
  clearError();
  pushHistory({ layers: { hole: snapshot("hole") } });
  // As the server reads mask files: a hole where the blue channel is > 127.5.
  const src = mask.getContext("2d").getImageData(0, 0, w, h).data;
  const out = new ImageData(w, h);
  for (let i = 0; i < src.length; i += 4) {
    const on = src[i + 2] > 127.5;
    out.data[i] = out.data[i + 1] = out.data[i + 2] = 255;
    out.data[i + 3] = on ? 255 : 0;
  }
  state.layers.hole.getContext("2d").putImageData(out, 0, 0);
  setStatus(`mask ${file.name} loaded`);
  render();
}

// ---------------------------------------------------------------------------------- models
function currentModel() {
  return state.models.find((m) => m.name === $("model").value) || null;
}
function currentExtras() {
  const m = currentModel();
  return m ? m.extras : [];
}
function updateLayerButtons() {
  const extras = currentExtras();
  for (const button of document.querySelectorAll("#layers [data-layer]")) {
    const name = button.dataset.layer;
    button.hidden = name !== "hole" && !extras.includes(EXTRA_OF_LAYER[name]);
  }
  $("color").hidden = !extras.includes("color");
  if (state.layer !== "hole" && !extras.includes(EXTRA_OF_LAYER[state.layer])) selectLayer("hole");
  render();
}
function selectLayer(name) {
  state.layer = name;
  for (const button of document.querySelectorAll("#layers [data-layer]")) {
    button.classList.toggle("active", button.dataset.layer === name);
  }
}
async function loadModels() {
  try {
    const response = await fetch("/api/v1/models");
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
    state.models = body.models;
    state.limits = body.limits;
    const select = $("model");
    select.textContent = "";
    for (const m of body.models) {
      const option = document.createElement("option");
      option.value = m.name;
      option.textContent = `${m.name} \u2014 ${m.label}`;
      select.append(option);
    }
    const hd = $("hd");
    hd.textContent = "";
    const labels = { crop: "crop around holes", resize: "resize", original: "full size" };
    for (const name of body.hd_strategy.strategies) {
      const option = document.createElement("option");
      option.value = name;
      option.textContent = labels[name] || name;
      option.selected = name === body.hd_strategy.default;
      hd.append(option);
    }
    $("hd-label").title = `How photos longer than ${body.hd_strategy.trigger} px run` +
      " (as deepfill-tf inpaint --hd-strategy); smaller ones always run whole";
    updateLayerButtons();
    setStatus(`${body.models.length} model(s) loaded. Open an image to start.`);
  } catch (e) {
    showError(`cannot list the models: ${e.message}`);
  }
}

// ---------------------------------------------------------------------------------- run
function setBusy(busy) {
  state.busy = busy;
  document.body.classList.toggle("busy", busy);
  $("busy").hidden = !busy;
  $("run").disabled = busy;
  viewport.setAttribute("aria-busy", String(busy));
}

async function errorMessage(response) {
  const text = await response.text();
  let message = text;
  try { message = JSON.parse(text).error || text; } catch (e) { /* a plain-text answer */ }
  if (response.status === 503) return `busy: ${message}`;
  return `${message || response.statusText} (HTTP ${response.status})`;
}

async function run() {
  if (state.busy) return;
  if (!state.image) { showError("open an image first"); return; }
  const model = currentModel();
  if (!model) { showError("no model is loaded"); return; }
  if (layerIsEmpty("hole")) { showError("paint the hole first (or load a mask file)"); return; }
  clearError();
  setBusy(true);
  setStatus(`inpainting with ${model.name}\u2026`);
  const started = performance.now();
  try {
    const form = new FormData();
    form.append("model", model.name);
    if ($("hd").value) form.append("hd_strategy", $("hd").value);
    form.append("image", state.imageBlob, state.imageBlob.name || `${state.imageName}.png`);
    form.append("mask", await layerPng("hole"), "mask.png");
    for (const name of ["sketch", "color", "edge"]) {
      const extra = EXTRA_OF_LAYER[name];
      if (model.extras.includes(extra)) form.append(extra, await layerPng(name), `${extra}.png`);
    }
    let bytes = 0;
    for (const value of form.values()) bytes += value.size || value.length || 0;
    const limit = state.limits && state.limits.max_upload_bytes;
    if (limit && bytes > limit) {
      throw new Error(`upload too large: ${bytes} bytes, this server accepts at most ${limit}` +
        " per request (start it with a larger --max-upload-mb)");
    }
    let response;
    try {
      response = await fetch("/api/v1/inpaint", { method: "POST", body: form });
    } catch (e) {
      throw new Error(`the server did not answer (${e.message}); is deepfill-tf ui still running?`);
    }
    if (!response.ok) throw new Error(await errorMessage(response));
    const blob = await response.blob();
    const result = await decodeBlob(blob);
    // One undo step brings back the image and the layers as they were before the run.
    // (Only the painted layers are kept: the others are empty before and after the run.)
    const layers = {};
    for (const name of LAYERS) {
      const snap = snapshot(name);
      if (snap) layers[name] = snap;
    }
    pushHistory({ image: state.image, before: state.before, blob: state.imageBlob, layers });
    state.before = state.image;
    state.image = result;
    state.imageBlob = new File([blob], `${state.imageName}_inpainted.png`, { type: "image/png" });
    for (const name of LAYERS) {
      const c = state.layers[name];
      c.getContext("2d").clearRect(0, 0, c.width, c.height);
    }
    updateResultControls();
    render();
    const seconds = ((performance.now() - started) / 1000).toFixed(2);
    const notes = response.headers.get("X-Notes");
    setStatus(`done in ${seconds} s (server ${response.headers.get("X-Seconds")} s) with ${model.name}; ` +
      (notes ? `note: ${notes}` : "paint again to keep editing"));
  } catch (e) {
    showError(e.message);
    setStatus("failed");
  } finally {
    setBusy(false);
  }
}

function updateResultControls() {
  $("compare").disabled = !state.before;
  const link = $("download");
  if (state.resultUrl) { URL.revokeObjectURL(state.resultUrl); state.resultUrl = null; }
  if (state.before && state.imageBlob) {
    state.resultUrl = URL.createObjectURL(state.imageBlob);
    link.href = state.resultUrl;
    link.download = `${state.imageName}_inpainted.png`;
    link.classList.remove("disabled");
    link.setAttribute("aria-disabled", "false");
  } else {
    link.removeAttribute("href");
    link.classList.add("disabled");
    link.setAttribute("aria-disabled", "true");
  }
}

function setComparing(on) {
  if (on && !state.before) return;
  state.comparing = on;
  $("compare").classList.toggle("active", on);
  render();
}

// ---------------------------------------------------------------------------------- input
function setSize(size) {
  state.size = Math.min(200, Math.max(1, Math.round(size)));
  $("size").value = state.size;
  $("size-value").textContent = state.size;
  applyTransform();
}
function setErasing(on) {
  state.erasing = on;
  $("brush").classList.toggle("active", !on);
  $("eraser").classList.toggle("active", on);
}

view.addEventListener("pointerdown", (ev) => {
  if (!state.image) return;
  viewport.focus({ preventScroll: true });
  if (ev.button === 1 || ev.button === 2 || state.spaceDown) return; // panning (viewport)
  if (ev.button !== 0 || state.busy || state.comparing) return;
  ev.preventDefault();
  view.setPointerCapture(ev.pointerId);
  beginStroke(ev);
});
view.addEventListener("pointermove", (ev) => { if (state.stroke) continueStroke(ev); });
const endStroke = () => { state.stroke = null; };
view.addEventListener("pointerup", endStroke);
view.addEventListener("pointercancel", endStroke);
view.addEventListener("lostpointercapture", endStroke);

viewport.addEventListener("pointerdown", (ev) => {
  if (!(ev.button === 1 || ev.button === 2 || (ev.button === 0 && state.spaceDown))) return;
  ev.preventDefault();
  viewport.setPointerCapture(ev.pointerId);
  state.pan = { x: ev.clientX, y: ev.clientY, tx: state.tx, ty: state.ty };
  viewport.classList.add("panning");
});
viewport.addEventListener("pointermove", (ev) => {
  const r = viewport.getBoundingClientRect();
  cursor.hidden = !state.image || state.spaceDown || !!state.pan;
  cursor.style.left = `${ev.clientX - r.left - (state.size * state.scale) / 2}px`;
  cursor.style.top = `${ev.clientY - r.top - (state.size * state.scale) / 2}px`;
  if (!state.pan) return;
  state.tx = state.pan.tx + ev.clientX - state.pan.x;
  state.ty = state.pan.ty + ev.clientY - state.pan.y;
  applyTransform();
});
viewport.addEventListener("pointerup", () => { state.pan = null; viewport.classList.remove("panning"); });
viewport.addEventListener("pointerleave", () => { cursor.hidden = true; });
viewport.addEventListener("contextmenu", (ev) => ev.preventDefault());
viewport.addEventListener("wheel", (ev) => {
  if (!state.image) return;
  ev.preventDefault();
  const r = viewport.getBoundingClientRect();
  zoomAt(Math.exp(-ev.deltaY * 0.0015), ev.clientX - r.left, ev.clientY - r.top);
}, { passive: false });

// Drag and drop an image file anywhere on the page.
for (const type of ["dragenter", "dragover"]) {
  document.addEventListener(type, (ev) => { ev.preventDefault(); viewport.classList.add("dragover"); });
}
document.addEventListener("dragleave", () => viewport.classList.remove("dragover"));
document.addEventListener("drop", (ev) => {
  ev.preventDefault();
  viewport.classList.remove("dragover");
  const file = ev.dataTransfer && ev.dataTransfer.files[0];
  if (file) openImage(file);
});

$("open-file").addEventListener("change", (ev) => { openImage(ev.target.files[0]); ev.target.value = ""; });
$("mask-file").addEventListener("change", (ev) => { openMask(ev.target.files[0]); ev.target.value = ""; });
$("model").addEventListener("change", updateLayerButtons);
for (const button of document.querySelectorAll("#layers [data-layer]")) {
  button.addEventListener("click", () => selectLayer(button.dataset.layer));
}
$("color").addEventListener("input", () => selectLayer("color"));
$("brush").addEventListener("click", () => setErasing(false));
$("eraser").addEventListener("click", () => setErasing(true));
$("size").addEventListener("input", (ev) => setSize(Number(ev.target.value)));
$("undo").addEventListener("click", undo);
$("redo").addEventListener("click", redo);
$("clear").addEventListener("click", clearLayers);
$("zoom-in").addEventListener("click", () => zoomCenter(1.25));
$("zoom-out").addEventListener("click", () => zoomCenter(0.8));
$("zoom-fit").addEventListener("click", fit);
$("run").addEventListener("click", run);
$("compare").addEventListener("pointerdown", () => setComparing(true));
for (const type of ["pointerup", "pointerleave"]) {
  $("compare").addEventListener(type, () => setComparing(false));
}
window.addEventListener("resize", () => { if (state.image) fit(); });

document.addEventListener("keydown", (ev) => {
  const tag = ev.target.tagName;
  if ((tag === "INPUT" && ev.target.type !== "range") || tag === "SELECT") return;
  const key = ev.key.toLowerCase();
  const ctrl = ev.ctrlKey || ev.metaKey;
  if (ctrl && key === "z") { ev.preventDefault(); if (ev.shiftKey) redo(); else undo(); }
  else if (ctrl && key === "y") { ev.preventDefault(); redo(); }
  else if (ctrl && key === "enter") { ev.preventDefault(); run(); }
  else if (ctrl) return;
  else if (ev.key === "[") setSize(state.size - Math.max(1, Math.round(state.size * 0.15)));
  else if (ev.key === "]") setSize(state.size + Math.max(1, Math.round(state.size * 0.15)));
  else if (key === "b") setErasing(false);
  else if (key === "e") setErasing(true);
  else if (key === "c" && !ev.repeat) setComparing(true);
  else if (key === "0") fit();
  else if (key === "+" || key === "=") zoomCenter(1.25);
  else if (key === "-") zoomCenter(0.8);
  else if (key === " ") {
    ev.preventDefault();
    state.spaceDown = true;
    viewport.classList.add("pan-ready");
  }
});
document.addEventListener("keyup", (ev) => {
  const key = ev.key.toLowerCase();
  if (key === "c") setComparing(false);
  if (key === " ") { state.spaceDown = false; viewport.classList.remove("pan-ready"); }
});

setSize(state.size);
updateHistoryButtons();
loadModels();
