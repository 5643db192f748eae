// Reads Zarr v3 arrays with zarrita.js over HTTP, for zarrita_v3_e2e.py.
// Usage: node zarrita_read.mjs NODE_MODULES BASE_URL KEYS_JSON OUT_DIR
// KEYS_JSON lists array keys; for each, OUT_DIR/<i>.bin gets the C-order bytes (little-endian), or
// OUT_DIR/<i>.json the list of strings, and one JSON line on stdout says {"key", "index", "shape",
// "data_type"} or {"key", "index", "error"}.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [nodeModules, baseUrl, keysFile, outDir] = process.argv.slice(2);
// zarrita loads an array's codecs concurrently: when two are unknown, the second rejection is
// never awaited. The read that awaited the first reports the failure below.
process.on("unhandledRejection", () => {});
const zarr = await import(pathToFileURL(path.join(nodeModules, "zarrita", "dist", "src", "index.js")));
const version = JSON.parse(fs.readFileSync(path.join(nodeModules, "zarrita", "package.json"))).version;
console.log(JSON.stringify({ zarrita: version }));
const keys = JSON.parse(fs.readFileSync(keysFile, "utf8"));
const root = zarr.root(new zarr.FetchStore(baseUrl));
for (let i = 0; i < keys.length; ++i) {
  const key = keys[i];
  try {
    const arr = await zarr.open.v3(root.resolve(key), { kind: "array" });
    // zarr.get of a 0-d array gives the scalar; its one chunk has the typed array.
    const chunk = arr.shape.length === 0 ? await arr.getChunk([]) : await zarr.get(arr);
    const data = chunk.data;
    if (Array.isArray(data)) {  // variable-length strings
      fs.writeFileSync(path.join(outDir, `${i}.json`), JSON.stringify(data));
    } else {
      fs.writeFileSync(path.join(outDir, `${i}.bin`),
                       new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
    console.log(JSON.stringify({ key, index: i, shape: chunk.shape, data_type: arr.dtype }));
  } catch (e) {
    console.log(JSON.stringify({ key, index: i, error: String(e && e.message ? e.message : e) }));
  }
}
