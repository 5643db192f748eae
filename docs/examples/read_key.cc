// Example: open an index as a read-only Zarr store and read keys from it (docs/api.md).
// Build: link refzarr_store and refzarr_indexer (see docs/api.md); run: read_key INDEX KEY...
#include <iostream>

#include "formats/registry/registry.h"
#include "store/zarr_view.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: read_key INDEX KEY...\n";
    return 2;
  }
  // Decoders let a compat view transcode chunks standard codecs cannot read; they must outlive it.
  auto decoders = refzarr::DefaultDecoders();
  refzarr::ViewOptions options;  // Zarr v2, compat codecs
  for (const auto& d : decoders) options.decoders.push_back(d.get());
  auto view = refzarr::OpenZarrView(argv[1], options);
  if (!view.ok()) {
    std::cerr << view.status().message() << "\n";
    return 1;
  }
  for (int i = 2; i < argc; ++i) {
    auto value = (*view)->Get(argv[i]);           // Result<std::optional<Value>>
    if (!value.ok()) {                            // an error: stale source, unreadable file...
      std::cerr << argv[i] << ": " << value.status().message() << "\n";
      return 1;
    }
    if (!*value) {                                // not found: a missing chunk reads as fill value
      std::cout << argv[i] << ": not found\n";
      continue;
    }
    auto bytes = (*view)->Materialize(**value);   // slices of source files are read here
    if (!bytes.ok()) return 1;
    std::cout << argv[i] << ": " << bytes->size() << " bytes\n";
  }
  return 0;
}
