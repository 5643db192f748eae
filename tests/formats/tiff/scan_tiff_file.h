// Test helper: the finished scan of one TIFF file by the TIFF scanner.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "formats/core/byte_source.h"
#include "formats/core/recording_sink.h"
#include "formats/tiff/tiff_scanner.h"

namespace refzarr::testing {

/// Scans `path` with the TIFF scanner into a RecordingSink and finishes it; a scan or finish that
/// fails is a test failure.
inline ScannedFile ScanTiffFile(const std::string& path) {
  auto source = OpenLocalFile(path);
  EXPECT_TRUE(source.ok()) << source.status().ToString();
  if (!source.ok()) return {};
  RecordingSink sink;
  Status s = MakeTiffScanner()->Scan(**source, ScanContext(path), sink);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(sink.Finish().ok());
  return std::move(sink).result();
}

}  // namespace refzarr::testing
