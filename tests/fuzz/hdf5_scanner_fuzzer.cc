// Fuzz target: the HDF5 scanner over a memory ByteSource (the HDF5 library reads it through the
// ByteSource virtual file driver, formats/hdf5/byte_source_vfd.h; the chunk indexes are read by
// formats/hdf5/chunk_index.cc), then the HDF5 chunk decoder over the chunks it found.
// Seeds: the generated HDF5 samples and realdata files, truncated (tests/fuzz/hdf5_scanner/).
#include <dlfcn.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "formats/core/byte_source.h"
#include "formats/core/recording_sink.h"
#include "formats/hdf5/hdf5_decoder.h"
#include "formats/hdf5/hdf5_scanner.h"
#include "tests/fuzz/fuzz_util.h"

// libhdf5 loads a filter plugin the first time a file names its filter, and unloads it at exit;
// one of Debian's plugins allocates 8 bytes in its constructor, which LeakSanitizer then reports
// with no stack it can name (tests/sanitize/lsan.supp). Loading every plugin here, before any input,
// with RTLD_NODELETE keeps them mapped (libhdf5's own dlopen gets the same objects), so their
// memory stays reachable and the fuzzer's leak checks see only leaks of the scan itself.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* env = std::getenv("HDF5_PLUGIN_PATH");
  const std::filesystem::path dir = env ? env : "/usr/lib/x86_64-linux-gnu/hdf5/serial/plugins";
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".so") dlopen(entry.path().c_str(), RTLD_NOW | RTLD_NODELETE);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace refzarr;
  static const std::unique_ptr<Scanner> scanner = MakeHdf5Scanner();
  static const std::unique_ptr<ChunkDecoder> decoder = MakeHdf5ChunkDecoder();
  const std::span<const std::byte> bytes = fuzz::Bytes(data, size);
  if (!scanner->Sniff(bytes.first(std::min<size_t>(bytes.size(), 4096)))) return 0;
  auto source = MakeMemorySource(std::vector<std::byte>(bytes.begin(), bytes.end()), "fuzz.h5");
  RecordingSink sink;
  if (!scanner->Scan(*source, ScanContext(), sink).ok()) return 0;
  if (!sink.Finish().ok()) return 0;
  fuzz::DecodeScannedChunks(sink.result(), *decoder, bytes, 4);
  return 0;
}
