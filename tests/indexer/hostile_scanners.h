// Scanners that behave like a library meeting a hostile file: they crash, hang, spin, exhaust
// memory or abort. Files starting with "REFZARR-<WHAT>" select them. Used by the isolation tests
// in the indexer (which sniffs) and in the test scan worker (which scans).
#pragma once

#include <memory>
#include <vector>

#include "formats/core/scanner.h"

namespace refzarr::testing {

/// DefaultScanners() followed by the hostile ones (crash, hang, spin, hog, abort) and FULL, which
/// emits descriptions with every field set.
std::vector<std::unique_ptr<Scanner>> ScannersWithHostileOnes();

}  // namespace refzarr::testing
