// Fuzz target: the TIFF scanner (libtiff over a memory ByteSource: classic TIFF, BigTIFF, OME-TIFF,
// ImageJ, SVS...) as the indexer runs it, then the TIFF chunk decoder over the chunks it found, as
// serving runs it. Seeds: truncated samples and realdata files (tests/fuzz/tiff_scanner/).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "formats/core/byte_source.h"
#include "formats/core/recording_sink.h"
#include "formats/tiff/decoder/tiff_decoder.h"
#include "formats/tiff/tiff_scanner.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace refzarr;
  static const std::unique_ptr<Scanner> scanner = MakeTiffScanner();
  static const std::unique_ptr<ChunkDecoder> decoder = MakeTiffChunkDecoder();
  const std::span<const std::byte> bytes = fuzz::Bytes(data, size);
  // The indexer scans only what the scanner sniffs as its own.
  if (!scanner->Sniff(bytes.first(std::min<size_t>(bytes.size(), 4096)))) return 0;
  auto source = MakeMemorySource(std::vector<std::byte>(bytes.begin(), bytes.end()), "fuzz.tif");
  RecordingSink sink;
  if (!scanner->Scan(*source, ScanContext(), sink).ok()) return 0;
  if (!sink.Finish().ok()) return 0;
  fuzz::DecodeScannedChunks(sink.result(), *decoder, bytes, 4);
  return 0;
}
