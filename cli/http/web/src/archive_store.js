// The served archive as the pages see it: listings, node metadata and arrays, all fetched from
// the server that sent the page (same origin), in the one Zarr format it serves.
import * as zarr from "zarrita";

/// Joins key segments ("" parts dropped): join("a.tif", "0") -> "a.tif/0".
export function join(...parts) {
  return parts.filter((p) => p !== "").join("/");
}

/// The URL path of a key: each segment percent-encoded.
export function urlPath(key, directory = false) {
  const encoded = key === "" ? "" : key.split("/").map(encodeURIComponent).join("/");
  return "/" + encoded + (directory && key !== "" ? "/" : "");
}

export class ArchiveStore {
  /// `format`: the Zarr format the server serves (2 or 3), from the page's meta tag, so no
  /// request probes for the other format's metadata (each would be a 404).
  constructor(format) {
    this.format = format;
    this.store = new zarr.FetchStore(location.origin + "/");
    this.root = zarr.root(this.store);
    this.nodes = new Map();
  }

  async fetchJson(key) {
    const response = await fetch(urlPath(key));
    if (response.status === 404) return null;
    if (!response.ok) throw new Error(`GET ${urlPath(key)}: ${response.status}: ${(await response.text()).trim()}`);
    return response.json();
  }

  /// What the node at `key` is: {kind: "group" | "array", ome (the OME-NGFF attributes: v2's
  /// .zattrs, v3's attributes.ome), attributes}. Cached.
  node(key) {
    if (!this.nodes.has(key)) this.nodes.set(key, this.loadNode(key));
    return this.nodes.get(key);
  }

  async loadNode(key) {
    if (this.format === 3) {
      const meta = await this.fetchJson(join(key, "zarr.json"));
      if (!meta) return null;
      const attributes = meta.attributes ?? {};
      return { kind: meta.node_type, attributes, ome: attributes.ome ?? {} };
    }
    // v2: every group and array of refzarr has a .zattrs; an array's names its dimensions.
    const attributes = await this.fetchJson(join(key, ".zattrs"));
    if (!attributes) return null;
    const kind = "_ARRAY_DIMENSIONS" in attributes ? "array" : "group";
    return { kind, attributes, ome: attributes };
  }

  /// Whether `name` is a metadata key of this format (.zattrs, .zgroup, .zarray / zarr.json).
  isMetadataKey(name) {
    return this.format === 3 ? name === "zarr.json" : [".zattrs", ".zgroup", ".zarray"].includes(name);
  }

  /// The entries of the directory `key`: [{name, directory}], in the server's order (the listing
  /// is the server's HTML page; its links are "./NAME" or "./NAME/").
  async list(key) {
    // fetch() sends Accept: */*, so the server answers with its listing, not this page.
    const response = await fetch(urlPath(key, true));
    if (!response.ok) throw new Error(`list ${urlPath(key, true)}: ${response.status}: ${(await response.text()).trim()}`);
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const entries = [];
    for (const a of page.querySelectorAll("a[href^='./']")) {
      let name = decodeURIComponent(a.getAttribute("href").slice(2));
      const directory = name.endsWith("/");
      if (directory) name = name.slice(0, -1);
      entries.push({ name, directory });
    }
    return entries;
  }

  /// A zarrita array at `key` (its metadata read once; attributes not asked for).
  openArray(key) {
    const location = this.root.resolve(key);
    return this.format === 3
      ? zarr.open.v3(location, { kind: "array" })
      : zarr.open.v2(location, { kind: "array", attrs: false });
  }
}

/// Runs at most `limit` of the queued async functions at once.
export function limiter(limit) {
  let active = 0;
  const waiting = [];
  const next = () => {
    if (active >= limit || waiting.length === 0) return;
    active++;
    const { fn, resolve, reject } = waiting.shift();
    fn().then(resolve, reject).finally(() => {
      active--;
      next();
    });
  };
  return (fn) =>
    new Promise((resolve, reject) => {
      waiting.push({ fn, resolve, reject });
      next();
    });
}
