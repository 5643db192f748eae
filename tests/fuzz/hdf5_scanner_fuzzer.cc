// Fuzz target: the HDF5 scanner over a memory ByteSource (the HDF5 library reads it through the
// ByteSource virtual file driver, formats/hdf5/byte_source_vfd.h; the chunk indexes are read by
// formats/hdf5/chunk_index.cc), then the HDF5 chunk decoder over the chunks it found.
// Seeds: the generated HDF5 samples and realdata files, truncated (tests/fuzz/hdf5_scanner/).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "formats/core/byte_source.h"
#include "formats/core/recording_sink.h"
#include "formats/hdf5/hdf5_decoder.h"
#include "formats/hdf5/hdf5_scanner.h"
#include "tests/fuzz/fuzz_util.h"

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
