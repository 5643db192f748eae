// Reads Zarr arrays over HTTP with one zarrita.js version and prints, per array, the SHA-256 of
// its values as little-endian C-order bytes (the driver, every_array_e2e.py, compares them with
// the oracles' hashes). Usage: node read_arrays.mjs <package> <jobs.json>
// jobs.json: {"base": "http://127.0.0.1:PORT/", "format": 2|3, "arrays": ["a.tif/0/0", ...],
// "workers": arrays read at once (default 4)}
// Output: one JSON object per line, {"key", "sha256", "shape", "data_type"} or {"key", "error"}.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";

const [pkg, jobsPath] = process.argv.slice(2);
const zarr = await import(pkg);
const jobs = JSON.parse(readFileSync(jobsPath, "utf8"));
const open = jobs.format === 3 ? zarr.open.v3 : zarr.open.v2;

// The bytes of a typed array (or a zarrita BoolArray / string array) in C order. zarrita returns
// native-endian typed arrays; every machine this runs on is little-endian.
function cOrderBytes(chunk) {
  const { data, shape, stride } = chunk;
  if (globalThis.Array.isArray(data)) {
    // Object arrays (variable-length strings): hash their JSON text instead of bytes.
    return Buffer.from(JSON.stringify(reorder(data, shape, stride, 1, true)), "utf8");
  }
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(reorder(bytes, shape, stride, data.BYTES_PER_ELEMENT, false));
}

function reorder(values, shape, stride, width, objects) {
  const rank = shape.length;
  const cStride = new globalThis.Array(rank);
  let step = 1;
  for (let d = rank - 1; d >= 0; --d) {
    cStride[d] = step;
    step *= shape[d];
  }
  if (stride.every((s, d) => s === cStride[d] || shape[d] <= 1)) {
    return objects ? values.slice(0, step) : values.subarray(0, step * width);
  }
  const out = objects ? new globalThis.Array(step) : new Uint8Array(step * width);
  const index = new globalThis.Array(rank).fill(0);
  for (let n = 0; n < step; ++n) {
    let src = 0;
    for (let d = 0; d < rank; ++d) src += index[d] * stride[d];
    if (objects) out[n] = values[src];
    else out.set(values.subarray(src * width, (src + 1) * width), n * width);
    for (let d = rank - 1; d >= 0; --d) {
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

// At most `limit` chunk requests in flight per array, as viewers do (browsers allow 6
// connections per host). zarrita's default queue starts every chunk at once: thousands of
// connections, beyond what any server accepts. The option is create_queue in 0.5, createQueue
// in 0.7.
function boundedQueue(limit) {
  let active = 0;
  const waiting = [];
  const started = [];
  const next = () => {
    while (active < limit && waiting.length) {
      const fn = waiting.shift();
      active++;
      const p = fn()
        .catch((e) => {
          waiting.length = 0; // the read has failed: fetch no more of its chunks
          throw e;
        })
        .finally(() => {
          active--;
          next();
        });
      p.catch(() => {}); // awaited by onIdle; a failure after the first must not crash node
      started.push(p);
    }
  };
  return {
    add(fn) {
      waiting.push(fn);
      next();
    },
    async onIdle() {
      while (started.length || waiting.length) await Promise.all(started.splice(0));
      return [];
    },
  };
}

async function readOne(store, key) {
  try {
    const arr = await open(zarr.root(store).resolve(key), { kind: "array" });
    const queue = () => boundedQueue(16);
    const chunk = await zarr.get(arr, null, { create_queue: queue, createQueue: queue });
    // A 0-d array comes back as a scalar.
    const full = chunk && chunk.data !== undefined
      ? chunk
      : { data: scalarArray(arr, chunk), shape: [], stride: [] };
    const sha256 = createHash("sha256").update(cOrderBytes(full)).digest("hex");
    return { key, sha256, shape: full.shape, data_type: arr.dtype };
  } catch (e) {
    let message = `${e?.name ?? "Error"}: ${e?.message ?? e}`;
    if (e?.cause) message += ` (cause: ${e.cause?.message ?? e.cause})`;
    return { key, error: message };
  }
}

function scalarArray(arr, value) {
  const kinds = {
    int8: Int8Array, int16: Int16Array, int32: Int32Array, int64: BigInt64Array,
    uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array, uint64: BigUint64Array,
    float32: Float32Array, float64: Float64Array,
  };
  if (arr.dtype === "bool") return Uint8Array.of(value ? 1 : 0);
  const Kind = kinds[arr.dtype];
  if (!Kind) return [value];
  return Kind.of(value);
}

// zarrita 0.5 loads an array's codecs concurrently and awaits them in turn: when one is unknown,
// the failures of the others are never awaited. The first failure still rejects `get` and is
// reported for its array; the rest must not end the process.
process.on("unhandledRejection", () => {});

// zarrita's FetchStore answers, on node:http with keep-alive: 404 is a missing key (the fill
// value), 200 the bytes, anything else an error. Node's fetch costs three times the CPU per
// request, and some arrays here have ten thousand one-element chunks.
class HttpStore {
  constructor(base) {
    this.url = new URL(base);
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  }

  get(key) {
    return this.request(key, undefined);
  }

  // Sharded arrays (sharding_indexed) read a shard's index with a suffix range, then inner
  // chunks with ranges, as FetchStore's getRange: {offset, length} or {suffixLength}; 206 (or a
  // whole 200 body, cut here) gives the bytes, 404 a missing key.
  getRange(key, range) {
    const header = "suffixLength" in range
      ? `bytes=-${range.suffixLength}`
      : `bytes=${range.offset}-${range.offset + range.length - 1}`;
    return this.request(key, header, range);
  }

  request(key, rangeHeader, range) {
    const path = this.url.pathname.replace(/\/$/, "") + key; // keys start with "/"
    return new Promise((resolve, reject) => {
      const options = {
        host: this.url.hostname, port: this.url.port, path: encodeURI(path), agent: this.agent,
        headers: rangeHeader ? { Range: rangeHeader } : {},
      };
      const request = http.get(options, (response) => {
        const parts = [];
        response.on("data", (part) => parts.push(part));
        response.on("error", reject);
        response.on("end", () => {
          if (response.statusCode === 404) return resolve(undefined);
          const ok = response.statusCode === 200 || (rangeHeader && response.statusCode === 206);
          if (!ok) {
            return reject(new Error(`Unexpected response status ${response.statusCode} ` +
                                    `${response.statusMessage} for ${path}`));
          }
          // A fresh buffer, as fetch gives: zarrita's vlen-utf8 decoder reads `bytes.buffer`
          // from offset 0, and node's small bodies are views into a shared pool.
          let body = new Uint8Array(Buffer.concat(parts));
          if (rangeHeader && response.statusCode === 200) {
            // A server that ignored the range: take the asked part of the whole value.
            body = "suffixLength" in range
              ? body.slice(Math.max(0, body.length - range.suffixLength))
              : body.slice(range.offset, range.offset + range.length);
          }
          resolve(body);
        });
      });
      request.setTimeout(60000, () => request.destroy(new Error(`no answer in 60 s: ${path}`)));
      request.on("error", reject);
    });
  }
}

const store = new HttpStore(jobs.base);
const queue = [...jobs.arrays];
// A few arrays at a time: enough to overlap the server's work, not enough to thrash 2 cores.
async function worker() {
  while (queue.length) {
    const key = queue.shift();
    process.stdout.write(JSON.stringify(await readOne(store, key)) + "\n");
  }
}
await Promise.all(Array.from({ length: jobs.workers ?? 4 }, worker));
