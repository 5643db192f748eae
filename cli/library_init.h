// Process-wide start-up of the C libraries refzarr uses, as one RAII object created in main.
#pragma once

namespace refzarr {

/// Silences library diagnostics that would otherwise go to stderr (libtiff's global handlers; the
/// scanners install per-handle ones). Create once, in main. (libcurl joins here with the first
/// remote ByteSource; until then the binary does not load it, which keeps `refzarr cat` fast.)
class LibraryInit {
 public:
  LibraryInit();
  ~LibraryInit();
  LibraryInit(const LibraryInit&) = delete;
  LibraryInit& operator=(const LibraryInit&) = delete;
};

}  // namespace refzarr
