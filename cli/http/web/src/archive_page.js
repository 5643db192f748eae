// The page of a folder (or of a file, or of the archive's root): sub-folders, then every image as
// a card with a thumbnail drawn from its smallest pyramid level, then the directory's raw keys.
import { join, limiter, urlPath } from "./archive_store.js";
import { element } from "./dom.js";
import { dtypeBytes, openImage, readPlane } from "./image.js";
import { composite } from "./render.js";

// Requests at once from this page (browsers open at most 6 connections per host anyway).
const queue = limiter(6);
// A thumbnail reads the whole (t 0, middle z) plane of the smallest level; above this many values
// (all channels) the card says so instead of reading it.
const kMaxThumbnailValues = 16 * 1024 * 1024;
// Thumbnails up to this size are drawn one canvas pixel per level pixel; larger ones are scaled.
const kNativeThumbnail = 512;
const kScaledThumbnail = 256;

export function formatBytes(n) {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    ++i;
  }
  return i === 0 ? `${n} bytes` : `${n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

/// "t 1 × c 2 × z 3 × y 192 × x 256" (axis names when the image has them).
export function formatShape(image) {
  const shape = image.levels[0].shape;
  return shape.map((n, i) => (image.axisNames ? `${image.axisNames[i]} ${n}` : `${n}`)).join(" × ");
}

/// Links to each folder above `key`, the root first.
export function breadcrumb(key) {
  const nav = element("nav", { class: "crumbs", "aria-label": "path" });
  nav.append(element("a", { href: "/", text: "archive" }));
  let path = "";
  for (const part of key === "" ? [] : key.split("/")) {
    path = join(path, part);
    nav.append(" / ", element("a", { href: urlPath(path, true), text: part }));
  }
  return nav;
}

// What a directory entry is: a folder, a file (its images are its series), an image, or a key to
// list only.
async function classify(archive, key) {
  const node = await archive.node(key);
  if (!node || node.kind === "array") return { kind: "other" };
  if (node.ome.multiscales) return { kind: "image", images: [{ key, ome: node.ome }] };
  if ("bioformats2raw.layout" in node.ome) {
    // Zarr v2: the file's consolidated metadata has every series' attributes in one request.
    const consolidated = archive.format === 2 ? await archive.fetchJson(join(key, ".zmetadata")) : null;
    if (consolidated?.metadata) {
      const images = Object.entries(consolidated.metadata)
        .map(([k, v]) => [/^(\d+)\/\.zattrs$/.exec(k)?.[1], v])
        .filter(([series, attrs]) => series !== undefined && attrs.multiscales)
        .sort((a, b) => Number(a[0]) - Number(b[0]))
        .map(([series, attrs]) => ({ key: join(key, series), ome: attrs, series }));
      return { kind: "file", images };
    }
    const entries = await archive.list(key);
    const images = [];
    for (const e of entries) {
      if (!e.directory || !/^\d+$/.test(e.name)) continue;
      const series = await archive.node(join(key, e.name));
      if (series?.ome.multiscales) images.push({ key: join(key, e.name), ome: series.ome, series: e.name });
    }
    return { kind: "file", images };
  }
  return { kind: "folder" };
}

/// Draws the card's thumbnail: the smallest level, first t, middle z, channels composited with
/// their colours and windows.
async function drawThumbnail(image, canvas, note) {
  const level = image.levels[image.levels.length - 1];
  const values = level.width * level.height * image.sizes.c;
  if (values > kMaxThumbnailValues) {
    note.textContent = `no thumbnail: the smallest level is ${level.width} × ${level.height}`;
    return "none";
  }
  const z = Math.floor(image.sizes.z / 2);
  const plane = await queue(() => readPlane(image, level, 0, z, 0, level.height, 0, level.width));
  const pixels = composite(plane, image.channels);
  canvas.dataset.level = String(image.levels.length - 1);
  canvas.dataset.z = String(plane.z); // the level's own index: pyramids may downsample z
  if (level.width <= kNativeThumbnail && level.height <= kNativeThumbnail) {
    canvas.width = level.width;
    canvas.height = level.height;
    canvas.getContext("2d").putImageData(pixels, 0, 0);
  } else {
    const full = element("canvas");
    full.width = level.width;
    full.height = level.height;
    full.getContext("2d").putImageData(pixels, 0, 0);
    const f = kScaledThumbnail / Math.max(level.width, level.height);
    canvas.width = Math.max(1, Math.round(level.width * f));
    canvas.height = Math.max(1, Math.round(level.height * f));
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(full, 0, 0, canvas.width, canvas.height);
  }
  return "ready";
}

function imageCard(archive, entry, title, observer) {
  const canvas = element("canvas", { class: "thumb", width: "1", height: "1" });
  const note = element("div", { class: "note" });
  const card = element(
    "a",
    { class: "card", href: urlPath(entry.key, true), "data-key": entry.key, "aria-busy": "true" },
    element("div", { class: "thumb-box" }, canvas),
    element("div", { class: "name", text: title }),
  );
  card.load = async () => {
    try {
      const image = await openImage(archive, entry.key, entry.ome);
      const level0 = image.levels[0];
      const bytes = level0.shape.reduce((a, b) => a * b, 1) * dtypeBytes(image.dtype);
      const channels = element("div", { class: "channels" });
      for (const ch of image.channels) {
        channels.append(element("span", { class: "chip", style: `--chip: #${ch.hex}`, text: ch.label }));
      }
      card.append(
        element("div", { class: "shape", text: formatShape(image) }),
        element("div", {
          class: "meta",
          text: `${image.dtype} · ${image.levels.length} level${image.levels.length > 1 ? "s" : ""} · ${formatBytes(bytes)} uncompressed`,
        }),
        channels,
        note,
      );
      card.dataset.thumbnail = await drawThumbnail(image, canvas, note);
    } catch (e) {
      console.error(`${entry.key}: ${e.message ?? e}`);
      note.textContent = `cannot read: ${e.message ?? e}`;
      card.append(note);
      card.dataset.thumbnail = "error";
    }
    card.setAttribute("aria-busy", "false");
  };
  observer.observe(card);
  return card;
}

/// The page of the directory `key`: its `entries` (ArchiveStore.list) and its node (`here`:
/// ArchiveStore.node, null for a directory of chunk coordinates).
export async function showArchivePage(archive, key, entries, here, main) {
  document.title = `refzarr: /${key}`;
  main.append(breadcrumb(key));
  const status = element("p", { class: "status" });
  main.append(status);
  // Only a group's sub-directories are nodes; an array's are chunk coordinates (nothing to
  // classify, and asking them for metadata would be a 404 each).
  const group = here?.kind === "group";
  status.textContent = `${entries.length} entries${group ? ", reading their metadata…" : ""}`;
  const kinds = entries.map((e) =>
    e.directory && group ? queue(() => classify(archive, join(key, e.name))) : Promise.resolve({ kind: "other" }),
  );

  // Thumbnails are read when their card comes near the screen.
  const observer = new IntersectionObserver(
    (seen) => {
      for (const s of seen) {
        if (!s.isIntersecting) continue;
        observer.unobserve(s.target);
        s.target.load();
      }
    },
    { rootMargin: "200px" },
  );

  // Sections appear once they have an entry; entries go in listing order, each as soon as it and
  // those before it are known, so a large folder shows its first entries at once.
  const folders = element("ul", { class: "folders" });
  const cards = element("div", { class: "cards" });
  const foldersSection = element("section", { hidden: "" }, element("h2", { text: "Folders" }), folders);
  const cardsSection = element("section", { hidden: "" }, element("h2", { text: "Images" }), cards);
  main.append(foldersSection, cardsSection);
  const folder = (href, name) => {
    folders.append(element("li", {}, element("a", { href, text: `${name}/` })));
    foldersSection.hidden = false;
  };
  for (const [i, e] of entries.entries()) {
    const k = await kinds[i];
    const href = urlPath(join(key, e.name), e.directory);
    if (k.kind === "folder") {
      folder(href, e.name);
    } else if (k.kind === "image" || k.kind === "file") {
      for (const image of k.images) {
        const title = k.kind === "file" && k.images.length > 1 ? `${e.name} · series ${image.series}` : e.name;
        cards.append(imageCard(archive, image, title, observer));
        cardsSection.hidden = false;
      }
      if (k.kind === "file" && k.images.length === 0) folder(href, e.name);
    }
  }

  status.remove();
  if (foldersSection.hidden && cardsSection.hidden) {
    const what =
      here?.kind === "array" ? "A Zarr array: its chunks are below."
      : here ? "No folders or images here."
      : "Chunk keys of an array.";
    main.append(element("p", { text: what }));
  }
  const others = element("ul", { class: "keys" });
  for (const e of entries) {
    const href = urlPath(join(key, e.name), e.directory);
    others.append(element("li", {}, element("a", { href, text: e.name + (e.directory ? "/" : "") })));
  }
  const raw = element("details", { class: "raw" }, element("summary", { text: `Zarr keys (${entries.length})` }), others);
  if (!group) raw.open = true;
  main.append(raw);
}
