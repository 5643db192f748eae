// Channels to RGBA: each active channel's value v becomes clamp((v - start) / (end - start), 0, 1)
// times its colour, the channels are added and the sum clamped to 255 (OMERO's "color" model with
// linear families, the way napari and vizarr composite additively).

/// Composites `plane` (readPlane's result) into a new ImageData of its width and height, using
/// `channels` (the image's, with active, start, end and color) for the channel axis, or channel 0's
/// settings when the plane has no channel axis.
export function composite(plane, channels) {
  const { chunk } = plane;
  const height = chunk.shape[plane.y];
  const width = chunk.shape[plane.x];
  const sy = chunk.stride[plane.y];
  const sx = chunk.stride[plane.x];
  const sc = plane.c >= 0 ? chunk.stride[plane.c] : 0;
  const count = plane.c >= 0 ? chunk.shape[plane.c] : 1;
  const data = chunk.data;
  const big = data instanceof BigInt64Array || data instanceof BigUint64Array;
  const acc = new Float32Array(width * height * 3);
  for (let c = 0; c < count; ++c) {
    const ch = channels[c] ?? channels[0];
    if (!ch.active) continue;
    const span = ch.end - ch.start;
    const scale = span > 0 ? 1 / span : 0;
    const [r, g, b] = ch.color;
    for (let y = 0; y < height; ++y) {
      let src = c * sc + y * sy;
      let dst = y * width * 3;
      for (let x = 0; x < width; ++x, src += sx, dst += 3) {
        const raw = big ? Number(data[src]) : data[src];
        let f = span > 0 ? (raw - ch.start) * scale : raw >= ch.end ? 1 : 0;
        if (!(f > 0)) continue; // also NaN
        if (f > 1) f = 1;
        acc[dst] += f * r;
        acc[dst + 1] += f * g;
        acc[dst + 2] += f * b;
      }
    }
  }
  const image = new ImageData(width, height);
  const out = image.data; // Uint8ClampedArray: rounds and clamps to 0-255
  for (let i = 0, j = 0; i < acc.length; i += 3, j += 4) {
    out[j] = acc[i];
    out[j + 1] = acc[i + 1];
    out[j + 2] = acc[i + 2];
    out[j + 3] = 255;
  }
  return image;
}

/// The values of channel `c` of `plane` that robust auto-contrast looks at: the 0.1 and 99.9
/// percentiles of a sample of at most 65 536 values. [lo, hi], or null when there are none.
export function percentiles(plane, c, low = 0.001, high = 0.999) {
  const { chunk } = plane;
  const height = chunk.shape[plane.y];
  const width = chunk.shape[plane.x];
  const n = width * height;
  if (n === 0) return null;
  const step = Math.max(1, Math.floor(n / 65536));
  const values = [];
  const base = plane.c >= 0 ? c * chunk.stride[plane.c] : 0;
  for (let i = 0; i < n; i += step) {
    const y = Math.floor(i / width);
    const x = i % width;
    const v = Number(chunk.data[base + y * chunk.stride[plane.y] + x * chunk.stride[plane.x]]);
    if (Number.isFinite(v)) values.push(v);
  }
  if (values.length === 0) return null;
  values.sort((a, b) => a - b);
  const at = (q) => values[Math.min(values.length - 1, Math.floor(q * (values.length - 1)))];
  return [at(low), at(high)];
}
