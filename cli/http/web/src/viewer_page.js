// The viewer of one image: a canvas drawn from the pyramid level that matches the zoom, tile by
// tile (tiles are whole chunks of the level, at least ~256 pixels a side), pan by dragging, zoom
// with the wheel or the buttons; channel toggles, display windows, z and t sliders. The view is
// kept in the URL's fragment (#t=0&z=4&zoom=1&x=0&y=0&c=1,0&w=0:4095,...), so a link shows it again.
import { limiter } from "./archive_store.js";
import { element } from "./dom.js";
import { breadcrumb, formatShape } from "./archive_page.js";
import { openImage, readPlane } from "./image.js";
import { composite, percentiles } from "./render.js";

const queue = limiter(6);
// Tiles drawn in one view at most: below the coarsest level's resolution an image without a
// pyramid would need every chunk of level 0.
const kMaxTiles = 256;
// Decoded tiles kept (least recently drawn dropped first).
const kCachedTiles = 512;
const kTileTarget = 256;

function parseHash() {
  const out = {};
  for (const part of location.hash.replace(/^#/, "").split("&")) {
    const [k, v] = part.split("=");
    if (k) out[k] = decodeURIComponent(v ?? "");
  }
  return out;
}

// Tile edge in level pixels: whole chunks, about kTileTarget pixels.
function tileEdge(chunk, size) {
  return Math.min(size, chunk * Math.max(1, Math.round(kTileTarget / chunk)));
}

class Viewer {
  constructor(image, canvas, info) {
    this.image = image;
    this.canvas = canvas;
    this.info = info;
    this.tiles = new Map(); // "level/t/z/ty/tx" -> tile
    this.version = 0; // bumps when channel settings change: tiles re-composite
    const h = parseHash();
    const num = (v, d) => (v !== undefined && v !== "" && Number.isFinite(Number(v)) ? Number(v) : d);
    this.t = Math.min(image.sizes.t - 1, Math.max(0, num(h.t, image.defaultT)));
    this.z = Math.min(image.sizes.z - 1, Math.max(0, num(h.z, Math.floor(image.sizes.z / 2))));
    if (h.c !== undefined) {
      h.c.split(",").forEach((a, i) => {
        if (image.channels[i]) image.channels[i].active = a === "1";
      });
    }
    if (h.w !== undefined) {
      h.w.split(",").forEach((w, i) => {
        const [s, e] = w.split(":").map(Number);
        if (image.channels[i] && Number.isFinite(s) && Number.isFinite(e)) {
          image.channels[i].start = s;
          image.channels[i].end = e;
        }
      });
    }
    this.pending = h.zoom !== undefined ? { zoom: num(h.zoom, 1), x: num(h.x, 0), y: num(h.y, 0) } : null;
    this.scale = 1; // canvas pixels per level-0 pixel
    this.x0 = 0; // level-0 coordinates of the canvas's top-left corner
    this.y0 = 0;
    this.placed = false; // fitted (or placed from the link) on the first resize
  }

  resize() {
    const box = this.canvas.parentElement.getBoundingClientRect();
    const ratio = window.devicePixelRatio || 1;
    this.canvas.width = Math.max(1, Math.floor(box.width * ratio));
    this.canvas.height = Math.max(1, Math.floor(box.height * ratio));
    this.canvas.style.width = `${box.width}px`;
    this.canvas.style.height = `${box.height}px`;
    if (this.pending) {
      this.scale = this.pending.zoom;
      this.x0 = this.pending.x;
      this.y0 = this.pending.y;
      this.pending = null;
    } else if (!this.placed) {
      this.fit();
    }
    this.placed = true;
    this.draw();
  }

  fit() {
    const { x, y } = this.image.sizes;
    this.scale = Math.min(this.canvas.width / x, this.canvas.height / y);
    this.x0 = (x - this.canvas.width / this.scale) / 2;
    this.y0 = (y - this.canvas.height / this.scale) / 2;
  }

  zoomAt(factor, cx, cy) {
    const px = this.x0 + cx / this.scale;
    const py = this.y0 + cy / this.scale;
    this.scale = Math.min(64, Math.max(1e-4, this.scale * factor));
    this.x0 = px - cx / this.scale;
    this.y0 = py - cy / this.scale;
    this.draw();
  }

  // The coarsest level whose pixels are no larger than a canvas pixel at this zoom.
  levelIndex() {
    let best = 0;
    this.image.levels.forEach((level, i) => {
      if (level.fx * this.scale <= 1 + 1e-9) best = i;
    });
    return best;
  }

  // The tiles of level `li` under the canvas.
  tilesOf(li) {
    const level = this.image.levels[li];
    const { axes } = this.image;
    const tw = tileEdge(level.chunks[axes.x], level.width);
    const th = tileEdge(level.chunks[axes.y], level.height);
    const left = Math.max(0, Math.floor(this.x0 / level.fx / tw));
    const top = Math.max(0, Math.floor(this.y0 / level.fy / th));
    const right = Math.min(Math.ceil(level.width / tw), Math.ceil((this.x0 + this.canvas.width / this.scale) / level.fx / tw));
    const bottom = Math.min(Math.ceil(level.height / th), Math.ceil((this.y0 + this.canvas.height / this.scale) / level.fy / th));
    const out = [];
    for (let ty = top; ty < bottom; ++ty) {
      for (let tx = left; tx < right; ++tx) {
        out.push({
          key: `${li}/${this.t}/${this.z}/${ty}/${tx}`,
          li,
          x0: tx * tw,
          y0: ty * th,
          x1: Math.min(level.width, (tx + 1) * tw),
          y1: Math.min(level.height, (ty + 1) * th),
        });
      }
    }
    return out;
  }

  tile(spec, fetch) {
    let tile = this.tiles.get(spec.key);
    if (tile) {
      this.tiles.delete(spec.key); // most recently used last
      this.tiles.set(spec.key, tile);
      return tile;
    }
    if (!fetch) return null;
    tile = { ...spec, plane: null, error: null, canvas: null, version: -1 };
    this.tiles.set(spec.key, tile);
    const level = this.image.levels[spec.li];
    const t = this.t;
    const z = this.z;
    tile.loading = queue(() => readPlane(this.image, level, t, z, spec.y0, spec.y1, spec.x0, spec.x1))
      .then((plane) => {
        tile.plane = plane;
      })
      .catch((e) => {
        tile.error = e;
        console.error(`${this.image.key}: level ${spec.li} tile ${spec.key}: ${e.message ?? e}`);
      })
      .finally(() => this.draw());
    while (this.tiles.size > kCachedTiles) this.tiles.delete(this.tiles.keys().next().value);
    return tile;
  }

  paint(ctx, tile) {
    if (!tile?.plane) return false;
    if (tile.version !== this.version) {
      const pixels = composite(tile.plane, this.image.channels);
      tile.canvas ??= document.createElement("canvas");
      tile.canvas.width = pixels.width;
      tile.canvas.height = pixels.height;
      tile.canvas.getContext("2d").putImageData(pixels, 0, 0);
      tile.version = this.version;
    }
    const level = this.image.levels[tile.li];
    // Edges rounded, not sizes, so neighbouring tiles neither overlap nor leave gaps.
    const left = Math.round((tile.x0 * level.fx - this.x0) * this.scale);
    const top = Math.round((tile.y0 * level.fy - this.y0) * this.scale);
    const right = Math.round((tile.x1 * level.fx - this.x0) * this.scale);
    const bottom = Math.round((tile.y1 * level.fy - this.y0) * this.scale);
    ctx.drawImage(tile.canvas, left, top, right - left, bottom - top);
    return true;
  }

  draw() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.drawNow();
    });
  }

  drawNow() {
    const ctx = this.canvas.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    const li = this.levelIndex();
    // Coarser levels already read fill in while the chosen one loads.
    for (let l = this.image.levels.length - 1; l > li; --l) {
      for (const spec of this.tilesOf(l)) this.paint(ctx, this.tile(spec, false));
    }
    const specs = this.tilesOf(li);
    const level = this.image.levels[li];
    let busy = false;
    let failed = 0;
    if (specs.length > kMaxTiles) {
      this.info.textContent = `level ${li}: ${specs.length} tiles in view (at most ${kMaxTiles}); zoom in`;
    } else {
      for (const spec of specs) {
        const tile = this.tile(spec, true);
        if (tile.error) ++failed;
        else if (!this.paint(ctx, tile)) busy = true;
      }
      this.info.textContent =
        `level ${li} of ${this.image.levels.length} (${level.width} × ${level.height}), ` +
        `zoom ${(this.scale * 100).toPrecision(3)} %` + (failed ? `, ${failed} tiles failed` : "");
    }
    this.canvas.dataset.level = String(li);
    this.canvas.setAttribute("aria-busy", busy ? "true" : "false");
    this.saveHash();
  }

  // Tiles of the chosen level in view, read (for auto-contrast).
  planesInView() {
    return this.tilesOf(this.levelIndex())
      .map((s) => this.tiles.get(s.key)?.plane)
      .filter(Boolean);
  }

  changed() {
    this.version++;
    this.draw();
  }

  saveHash() {
    const chs = this.image.channels;
    const r = (v) => Math.round(v * 1000) / 1000;
    const hash =
      `#t=${this.t}&z=${this.z}&zoom=${r(this.scale)}&x=${r(this.x0)}&y=${r(this.y0)}` +
      `&c=${chs.map((c) => (c.active ? 1 : 0)).join(",")}&w=${chs.map((c) => `${c.start}:${c.end}`).join(",")}`;
    if (hash !== location.hash) history.replaceState(null, "", hash);
  }
}

function slider(label, id, size, value, onInput) {
  const output = element("output", { for: id, text: `${value} / ${size - 1}` });
  const input = element("input", { type: "range", id, min: "0", max: String(size - 1), step: "1", value: String(value) });
  input.addEventListener("input", () => {
    output.textContent = `${input.value} / ${size - 1}`;
    onInput(Number(input.value));
  });
  return element("label", { class: "slider" }, element("span", { text: label }), input, output);
}

function channelControls(viewer, c) {
  const ch = viewer.image.channels[c];
  const integer = /int/.test(viewer.image.dtype);
  const step = integer ? "1" : "any";
  const toggle = element("input", { type: "checkbox", id: `channel-${c}` });
  toggle.checked = ch.active;
  toggle.addEventListener("change", () => {
    ch.active = toggle.checked;
    viewer.changed();
  });
  const start = element("input", { type: "number", id: `start-${c}`, step, value: String(ch.start), "aria-label": `${ch.label} window start` });
  const end = element("input", { type: "number", id: `end-${c}`, step, value: String(ch.end), "aria-label": `${ch.label} window end` });
  const onWindow = () => {
    const s = Number(start.value);
    const e = Number(end.value);
    if (!Number.isFinite(s) || !Number.isFinite(e)) return;
    ch.start = s;
    ch.end = e;
    viewer.changed();
  };
  start.addEventListener("input", onWindow);
  end.addEventListener("input", onWindow);
  const auto = element("button", { type: "button", id: `auto-${c}`, text: "auto", title: "0.1 - 99.9 percentiles of what is in view" });
  auto.addEventListener("click", () => {
    let lo = Infinity;
    let hi = -Infinity;
    for (const plane of viewer.planesInView()) {
      const p = percentiles(plane, plane.c >= 0 ? c : 0);
      if (p) {
        lo = Math.min(lo, p[0]);
        hi = Math.max(hi, p[1]);
      }
    }
    if (!(hi >= lo)) return;
    if (hi === lo) hi = lo + 1;
    start.value = String(lo);
    end.value = String(hi);
    onWindow();
  });
  return element(
    "fieldset",
    { class: "channel", style: `--chip: #${ch.hex}` },
    element("legend", {}, toggle, element("label", { for: `channel-${c}`, text: ch.label })),
    element("div", { class: "window" }, start, element("span", { text: "–" }), end, auto),
  );
}

export async function showViewerPage(archive, key, node, main) {
  document.body.classList.add("viewing");
  const image = await openImage(archive, key, node.ome);
  document.title = `refzarr: ${image.name}`;
  const canvas = element("canvas", { id: "view", "aria-busy": "true", "aria-label": `image ${image.name}` });
  const info = element("p", { class: "info", id: "level-info" });
  const viewer = new Viewer(image, canvas, info);
  const sidebar = element(
    "aside",
    {},
    breadcrumb(key),
    element("h1", { text: image.name }),
    element("p", { class: "shape", text: `${formatShape(image)} · ${image.dtype}` }),
  );
  if (image.sizes.z > 1) {
    sidebar.append(slider("z", "z", image.sizes.z, viewer.z, (v) => { viewer.z = v; viewer.draw(); }));
  }
  if (image.sizes.t > 1) {
    sidebar.append(slider("t", "t", image.sizes.t, viewer.t, (v) => { viewer.t = v; viewer.draw(); }));
  }
  image.channels.forEach((_, c) => sidebar.append(channelControls(viewer, c)));
  const zoom = element("div", { class: "zoom" });
  const button = (text, title, fn) => {
    const b = element("button", { type: "button", text, title });
    b.addEventListener("click", fn);
    zoom.append(b);
  };
  button("fit", "whole image", () => { viewer.fit(); viewer.draw(); });
  button("1:1", "one image pixel per screen pixel", () => viewer.zoomAt(1 / viewer.scale, canvas.width / 2, canvas.height / 2));
  button("+", "zoom in", () => viewer.zoomAt(2, canvas.width / 2, canvas.height / 2));
  button("−", "zoom out", () => viewer.zoomAt(0.5, canvas.width / 2, canvas.height / 2));
  sidebar.append(zoom, info);
  main.append(sidebar, element("div", { class: "stage" }, canvas));

  let drag = null;
  canvas.addEventListener("pointerdown", (e) => {
    drag = { x: e.clientX, y: e.clientY };
    canvas.setPointerCapture(e.pointerId);
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const ratio = window.devicePixelRatio || 1;
    viewer.x0 -= ((e.clientX - drag.x) * ratio) / viewer.scale;
    viewer.y0 -= ((e.clientY - drag.y) * ratio) / viewer.scale;
    drag = { x: e.clientX, y: e.clientY };
    viewer.draw();
  });
  canvas.addEventListener("pointerup", () => { drag = null; });
  canvas.addEventListener(
    "wheel",
    (e) => {
      e.preventDefault();
      const ratio = window.devicePixelRatio || 1;
      const box = canvas.getBoundingClientRect();
      viewer.zoomAt(Math.pow(2, -e.deltaY / 300), (e.clientX - box.left) * ratio, (e.clientY - box.top) * ratio);
    },
    { passive: false },
  );
  new ResizeObserver(() => viewer.resize()).observe(canvas.parentElement);
  // The viewer writes its fragment with replaceState, which fires no event: a hashchange is a new
  // view asked for (an edited or followed link).
  window.addEventListener("hashchange", () => location.reload());
}
