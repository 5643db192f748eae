// A scan reads the file's structure, never its pixels: through a recording ByteSource, the TIFF
// scanner's reads of tiled and stripped files, plain and BigTIFF, touch no byte of any tile or
// strip it references. What makes indexing cost grow with the number of tiles, not with the bytes
// of the archive (and, for remote sources, what keeps a scan to a few range requests).
#include <gtest/gtest.h>
#include <tiffio.h>
#include <unistd.h>

#include <filesystem>
#include <mutex>
#include <vector>

#include "formats/core/byte_source.h"
#include "formats/core/recording_sink.h"
#include "formats/tiff/tiff_scanner.h"
#include "tests/formats/tiff/decoder/tiff_test_util.h"

namespace refzarr {
namespace {

namespace fs = std::filesystem;

// A ByteSource that forwards to another and records every range read.
class RecordingSource final : public ByteSource {
 public:
  explicit RecordingSource(std::unique_ptr<ByteSource> inner) : inner_(std::move(inner)) {}
  Result<SourceStat> Stat() override { return inner_->Stat(); }
  Status ReadInto(ByteRange range, std::span<std::byte> out) override {
    {
      std::lock_guard lock(mu_);
      reads_.push_back(range);
    }
    return inner_->ReadInto(range, out);
  }
  std::string Describe() const override { return inner_->Describe(); }
  std::vector<ByteRange> reads() const {
    std::lock_guard lock(mu_);
    return reads_;
  }

 private:
  std::unique_ptr<ByteSource> inner_;
  mutable std::mutex mu_;
  std::vector<ByteRange> reads_;
};

// 1024 x 1024 uint16 in 128 x 128 tiles (or 16-row strips), uncompressed, two pages.
void WriteImage(const fs::path& path, bool tiled, bool bigtiff) {
  testing::TiffPtr t = testing::OpenTiff(path.string(), bigtiff ? "w8" : "w");
  ASSERT_TRUE(t);
  for (int page = 0; page < 2; ++page) {
    TIFFSetField(t.get(), TIFFTAG_IMAGEWIDTH, 1024);
    TIFFSetField(t.get(), TIFFTAG_IMAGELENGTH, 1024);
    TIFFSetField(t.get(), TIFFTAG_BITSPERSAMPLE, 16);
    TIFFSetField(t.get(), TIFFTAG_SAMPLESPERPIXEL, 1);
    TIFFSetField(t.get(), TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    TIFFSetField(t.get(), TIFFTAG_COMPRESSION, COMPRESSION_NONE);
    std::vector<uint16_t> pixels(128 * 128, static_cast<uint16_t>(1000 + page));
    if (tiled) {
      TIFFSetField(t.get(), TIFFTAG_TILEWIDTH, 128);
      TIFFSetField(t.get(), TIFFTAG_TILELENGTH, 128);
      for (uint32_t tile = 0; tile < TIFFNumberOfTiles(t.get()); ++tile) {
        ASSERT_GT(TIFFWriteEncodedTile(t.get(), tile, pixels.data(), pixels.size() * 2), 0);
      }
    } else {
      TIFFSetField(t.get(), TIFFTAG_ROWSPERSTRIP, 16);
      for (uint32_t strip = 0; strip < TIFFNumberOfStrips(t.get()); ++strip) {
        ASSERT_GT(TIFFWriteEncodedStrip(t.get(), strip, pixels.data(), 1024 * 16 * 2), 0);
      }
    }
    ASSERT_TRUE(TIFFWriteDirectory(t.get()));
  }
}

TEST(HeaderOnlyScan, TheTiffScannerNeverReadsTileOrStripData) {
  for (bool tiled : {true, false}) {
    for (bool bigtiff : {false, true}) {
      SCOPED_TRACE(std::string(tiled ? "tiled" : "stripped") + (bigtiff ? ", BigTIFF" : ""));
      const fs::path path = fs::temp_directory_path() /
                            ("refzarr_header_only_" + std::to_string(::getpid()) + ".tif");
      WriteImage(path, tiled, bigtiff);
      auto local = OpenLocalFile(path);
      ASSERT_TRUE(local.ok()) << local.status().message();
      RecordingSource source(std::move(*local));
      RecordingSink sink;
      Status st = MakeTiffScanner()->Scan(source, ScanContext(path), sink);
      ASSERT_TRUE(st.ok()) << st.message();
      ASSERT_TRUE(sink.Finish().ok());
      ScannedFile scan = std::move(sink).result();

      std::vector<ChunkRef> chunks;
      for (const auto& array : scan.arrays) {
        for (const auto& [index, ref] : array.chunks) chunks.push_back(ref);
      }
      ASSERT_EQ(chunks.size(), 2u * 64u) << "every tile or strip referenced";
      uint64_t data_bytes = 0, read_bytes = 0;
      for (const ChunkRef& c : chunks) data_bytes += c.length;
      for (const ByteRange& r : source.reads()) {
        read_bytes += r.length;
        for (const ChunkRef& c : chunks) {
          const bool overlaps = r.offset < c.offset + c.length && c.offset < r.offset + r.length;
          ASSERT_FALSE(overlaps) << "the scan read [" << r.offset << ", " << r.offset + r.length
                                 << ") inside the chunk at [" << c.offset << ", "
                                 << c.offset + c.length << ")";
        }
      }
      EXPECT_EQ(data_bytes, 2u * 1024u * 1024u * 2u);
      EXPECT_LT(read_bytes, 64u * 1024u) << source.reads().size() << " reads";
      fs::remove(path);
    }
  }
}

}  // namespace
}  // namespace refzarr
