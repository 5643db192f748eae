#include "formats/registry/registry.h"

#include "formats/hdf5/hdf5_decoder.h"
#include "formats/hdf5/hdf5_scanner.h"
#include "formats/tiff/decoder/tiff_decoder.h"
#include "formats/tiff/tiff_scanner.h"

namespace refzarr {

std::vector<std::unique_ptr<Scanner>> DefaultScanners() {
  std::vector<std::unique_ptr<Scanner>> s;
  s.push_back(MakeTiffScanner());
  s.push_back(MakeOmeCompanionScanner());
  s.push_back(MakeHdf5Scanner());
  return s;
}

std::vector<std::unique_ptr<ChunkDecoder>> DefaultDecoders() {
  std::vector<std::unique_ptr<ChunkDecoder>> d;
  d.push_back(MakeTiffChunkDecoder());
  d.push_back(MakeHdf5ChunkDecoder());
  return d;
}

}  // namespace refzarr
