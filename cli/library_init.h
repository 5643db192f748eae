// Process-wide start-up of the C libraries refzarr uses, as one RAII object created in main.
#pragma once

namespace refzarr {

/// Silences library diagnostics that would otherwise go to stderr (libtiff's global handlers; the
/// scanners install per-handle ones), and initialises libcurl and blosc. Create once, in main.
class LibraryInit {
 public:
  LibraryInit();
  ~LibraryInit();
  LibraryInit(const LibraryInit&) = delete;
  LibraryInit& operator=(const LibraryInit&) = delete;
};

}  // namespace refzarr
