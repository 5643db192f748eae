// The browser pages of `refzarr serve`. The server sends the same small HTML page for every folder
// or group a browser asks for (docs/frontends.md); this script reads the path and draws either
// the folder's page (sub-folders and image cards) or, for an OME-NGFF image, the viewer.
import { ArchiveStore } from "./archive_store.js";
import { showArchivePage } from "./archive_page.js";
import { showViewerPage } from "./viewer_page.js";

async function start() {
  const format = Number(document.querySelector('meta[name="refzarr-zarr-format"]')?.content ?? 2);
  const archive = new ArchiveStore(format);
  const key = location.pathname
    .split("/")
    .filter((p) => p !== "")
    .map(decodeURIComponent)
    .join("/");
  // aria-busy until the page is laid out (its images may still be loading).
  const main = document.createElement("main");
  main.setAttribute("aria-busy", "true");
  document.body.append(main);
  try {
    // The listing says whether the directory is a node (it has metadata keys) or a directory of
    // chunk coordinates, whose metadata would be a 404.
    const entries = await archive.list(key);
    const node = entries.some((e) => !e.directory && archive.isMetadataKey(e.name)) ? await archive.node(key) : null;
    if (node?.kind === "group" && node.ome.multiscales) {
      await showViewerPage(archive, key, node, main);
    } else {
      await showArchivePage(archive, key, entries, node, main);
    }
  } catch (e) {
    console.error(e);
    const p = document.createElement("p");
    p.className = "error";
    p.textContent = `refzarr: /${key}: ${e.message ?? e}`;
    main.append(p);
  }
  main.setAttribute("aria-busy", "false");
}

start();
