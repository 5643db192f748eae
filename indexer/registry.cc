#include "indexer/registry.h"

#include "formats/tiff/decoder/tiff_decoder.h"
#include "formats/tiff/tiff_scanner.h"

namespace refzarr {

std::vector<std::unique_ptr<Scanner>> DefaultScanners() {
  std::vector<std::unique_ptr<Scanner>> s;
  s.push_back(MakeTiffScanner());
  return s;
}

std::vector<std::unique_ptr<ChunkDecoder>> DefaultDecoders() {
  std::vector<std::unique_ptr<ChunkDecoder>> d;
  d.push_back(MakeTiffChunkDecoder());
  return d;
}

}  // namespace refzarr
