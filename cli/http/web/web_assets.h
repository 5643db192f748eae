// The browser pages of `refzarr serve` (the archive page and the image viewer): JavaScript and CSS
// bundled from src/ with esbuild at build time (build.mjs) and compiled into this library, so the
// HTTP module serves them with no file to find at run time and nothing to fetch from outside.
#pragma once

#include <span>
#include <string_view>

namespace refzarr {

/// One file the server sends under its browser-pages prefix (`/__refzarr__/NAME`).
struct WebAsset {
  std::string_view name;          ///< File name, no folder: "main.js", "style.css", "chunk-X.js".
  std::string_view content_type;  ///< The Content-Type to send with it.
  std::string_view bytes;         ///< The file's content; static storage.
};

/// The bundled pages: "main.js" (the entry point the page loads), "style.css" and the chunks
/// main.js imports on demand (the blosc and zstd decoders). Static storage; never empty.
std::span<const WebAsset> BundledWebAssets();

}  // namespace refzarr
