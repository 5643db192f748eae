// A scan worker for the isolation tests: refzarr's scanners plus the hostile ones.
#include <cstdlib>

#include "formats/registry/registry.h"
#include "indexer/scan_worker.h"
#include "tests/indexer/hostile_scanners.h"

int main() {
  auto scanners = refzarr::testing::ScannersWithHostileOnes();
  auto decoders = refzarr::DefaultDecoders();
  std::vector<const refzarr::ChunkDecoder*> raw;
  for (const auto& d : decoders) raw.push_back(d.get());
  std::_Exit(refzarr::RunScanWorker(0, scanners, raw));
}
