// An OME-NGFF image (multiscales + omero) opened for drawing: its levels as zarrita arrays, where
// its t, c, z, y and x axes are, and its channels' colours and display windows.
import * as zarr from "zarrita";

import { join } from "./archive_store.js";

const kDefaultColors = ["FF0000", "00FF00", "0000FF", "FF00FF", "00FFFF", "FFFF00"];

/// [r, g, b] (0-255) of an OMERO hex colour ("FF00FF").
export function parseColor(hex) {
  const v = Number.parseInt(String(hex ?? "FFFFFF").replace(/^#/, ""), 16);
  if (!Number.isFinite(v)) return [255, 255, 255];
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

/// The value range of a zarrita data type, for windows the metadata does not give.
function dtypeRange(dtype) {
  const m = /^u?int(\d+)$/.exec(dtype);
  if (m) {
    const bits = Number(m[1]);
    return dtype.startsWith("u") ? [0, 2 ** bits - 1] : [-(2 ** (bits - 1)), 2 ** (bits - 1) - 1];
  }
  return [0, 1];
}

/// Bytes per element of a zarrita data type ("uint16" -> 2).
export function dtypeBytes(dtype) {
  const m = /(\d+)$/.exec(dtype);
  return m ? Number(m[1]) / 8 : 1;
}

/// Opens the image group `key` whose OME attributes are `ome` (the node's, see ArchiveStore.node).
export async function openImage(archive, key, ome) {
  const multiscale = ome.multiscales?.[0];
  if (!multiscale?.datasets?.length) throw new Error(`${key}: no multiscales datasets`);
  const levels = await Promise.all(
    multiscale.datasets.map(async (d) => {
      const array = await archive.openArray(join(key, d.path));
      return { path: d.path, array, shape: array.shape, chunks: array.chunks };
    }),
  );
  const rank = levels[0].shape.length;
  const names = (multiscale.axes ?? []).map((a) => (typeof a === "string" ? a : a.name).toLowerCase());
  const axis = (name, fallback) => {
    const i = names.indexOf(name);
    return i >= 0 ? i : fallback;
  };
  const axes = { t: axis("t", -1), c: axis("c", -1), z: axis("z", -1), y: axis("y", rank - 2), x: axis("x", rank - 1) };
  const size = (a) => (axes[a] >= 0 ? levels[0].shape[axes[a]] : 1);
  const dtype = levels[0].array.dtype;
  const [lo, hi] = dtypeRange(dtype);
  const omero = ome.omero?.channels ?? [];
  const channels = [];
  for (let c = 0; c < size("c"); ++c) {
    const o = omero[c] ?? {};
    const color = o.color ?? (size("c") === 1 ? "FFFFFF" : kDefaultColors[c % kDefaultColors.length]);
    const window = o.window ?? {};
    channels.push({
      label: o.label ?? `Channel ${c}`,
      color: parseColor(color),
      hex: String(color).replace(/^#/, "").toUpperCase(),
      active: o.active ?? true,
      start: window.start ?? lo,
      end: window.end ?? hi,
      min: window.min ?? lo,
      max: window.max ?? hi,
    });
  }
  // Downsampling of each level against level 0, along x and y.
  for (const level of levels) {
    level.fx = levels[0].shape[axes.x] / level.shape[axes.x];
    level.fy = levels[0].shape[axes.y] / level.shape[axes.y];
    level.width = level.shape[axes.x];
    level.height = level.shape[axes.y];
  }
  return {
    key,
    name: multiscale.name || key,
    axisNames: names.length === rank ? names : null,
    axes,
    sizes: { t: size("t"), c: size("c"), z: size("z"), y: size("y"), x: size("x") },
    dtype,
    levels,
    channels,
    defaultZ: ome.omero?.rdefs?.defaultZ ?? 0,
    defaultT: ome.omero?.rdefs?.defaultT ?? 0,
  };
}

// Index `i` of level 0 along `axis` in `level` (pyramids may downsample z, and even t).
function indexInLevel(image, level, axis, i) {
  const n0 = image.levels[0].shape[axis];
  const n = level.shape[axis];
  return n === n0 ? i : Math.min(n - 1, Math.floor((i * n) / n0));
}

/// Reads the plane (t, z) (level-0 indices) of `level` in the box [y0, y1) x [x0, x1) (the level's
/// pixels), every channel: {chunk: zarrita's {data, shape, stride}, c, y, x: where those axes are
/// in chunk.shape (c -1 when the image has none), t, z: the level's indices read}.
export async function readPlane(image, level, t, z, y0, y1, x0, x1, options = {}) {
  const selection = level.shape.map(() => null);
  const { axes } = image;
  const lt = axes.t >= 0 ? indexInLevel(image, level, axes.t, t) : 0;
  const lz = axes.z >= 0 ? indexInLevel(image, level, axes.z, z) : 0;
  if (axes.t >= 0) selection[axes.t] = lt;
  if (axes.z >= 0) selection[axes.z] = lz;
  selection[axes.y] = zarr.slice(y0, y1);
  selection[axes.x] = zarr.slice(x0, x1);
  // Any other axis (not t, c, z, y, x): its first index.
  level.shape.forEach((_, i) => {
    if (![axes.t, axes.c, axes.z, axes.y, axes.x].includes(i)) selection[i] = 0;
  });
  const kept = [];
  selection.forEach((s, i) => {
    if (typeof s !== "number") kept.push(i);
  });
  const chunk = await zarr.get(level.array, selection, options);
  return { chunk, c: kept.indexOf(axes.c), y: kept.indexOf(axes.y), x: kept.indexOf(axes.x), t: lt, z: lz };
}
