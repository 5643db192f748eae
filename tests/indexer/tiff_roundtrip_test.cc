// Byte-level oracle for TIFF indexing: every chunk refzarr serves (passthrough view) equals a raw
// tile or strip that libtiff reads (TIFFReadRawTile/Strip), every stored tile is served, and for
// uncompressed, deflate and zstd chunks decoding gives exactly TIFFReadEncodedTile/Strip.
#include <gtest/gtest.h>
#include <tiffio.h>
#include <zlib.h>
#include <zstd.h>

#include <map>
#include <memory>

#include "indexer/indexer.h"
#include "store/ref_store.h"
#include "store/zarr_view.h"
#include "tests/indexer/test_support.h"

namespace refzarr {
namespace {

namespace fs = std::filesystem;

struct TiffCloser {
  void operator()(TIFF* t) const { TIFFClose(t); }
};

// One stored tile/strip as libtiff sees it.
struct RawSegment {
  uint64_t dir_offset = 0;
  uint32_t index = 0;
  bool tiled = false;
  uint16_t compression = 1, predictor = 1;
};

// All non-empty raw segments of every IFD and SubIFD, keyed by their bytes.
std::multimap<std::string, RawSegment> RawSegments(const fs::path& path) {
  std::multimap<std::string, RawSegment> out;
  std::unique_ptr<TIFF, TiffCloser> tif(TIFFOpen(path.c_str(), "r"));
  if (!tif) return out;
  std::vector<uint64_t> dirs;
  do {
    dirs.push_back(TIFFCurrentDirOffset(tif.get()));
    uint16_t n = 0;
    uint64_t* subs = nullptr;
    if (TIFFGetField(tif.get(), TIFFTAG_SUBIFD, &n, &subs)) dirs.insert(dirs.end(), subs, subs + n);
  } while (TIFFReadDirectory(tif.get()));
  for (uint64_t d : dirs) {
    if (!TIFFSetSubDirectory(tif.get(), d)) continue;
    RawSegment seg;
    seg.dir_offset = d;
    seg.tiled = TIFFIsTiled(tif.get());
    TIFFGetFieldDefaulted(tif.get(), TIFFTAG_COMPRESSION, &seg.compression);
    TIFFGetFieldDefaulted(tif.get(), TIFFTAG_PREDICTOR, &seg.predictor);
    uint64_t* counts = nullptr;
    TIFFGetField(tif.get(), seg.tiled ? TIFFTAG_TILEBYTECOUNTS : TIFFTAG_STRIPBYTECOUNTS, &counts);
    uint32_t segments = seg.tiled ? TIFFNumberOfTiles(tif.get()) : TIFFNumberOfStrips(tif.get());
    for (uint32_t i = 0; i < segments; ++i) {
      if (!counts || counts[i] == 0) continue;
      std::string raw(counts[i], '\0');
      tmsize_t n = seg.tiled ? TIFFReadRawTile(tif.get(), i, raw.data(), raw.size())
                             : TIFFReadRawStrip(tif.get(), i, raw.data(), raw.size());
      if (n <= 0) continue;
      raw.resize(n);
      seg.index = i;
      out.emplace(std::move(raw), seg);
    }
  }
  return out;
}

// libtiff's decoded bytes of one segment.
std::string Encoded(const fs::path& path, const RawSegment& seg) {
  std::unique_ptr<TIFF, TiffCloser> tif(TIFFOpen(path.c_str(), "r"));
  if (!tif || !TIFFSetSubDirectory(tif.get(), seg.dir_offset)) return {};
  tmsize_t size = seg.tiled ? TIFFTileSize(tif.get()) : TIFFStripSize(tif.get());
  std::string out(size, '\0');
  tmsize_t n = seg.tiled ? TIFFReadEncodedTile(tif.get(), seg.index, out.data(), size)
                         : TIFFReadEncodedStrip(tif.get(), seg.index, out.data(), size);
  out.resize(n > 0 ? n : 0);
  return out;
}

std::string Inflate(const std::string& in, size_t max) {
  std::string out(max, '\0');
  uLongf len = max;
  if (uncompress(reinterpret_cast<Bytef*>(out.data()), &len,
                 reinterpret_cast<const Bytef*>(in.data()), in.size()) != Z_OK) {
    return "<inflate failed>";
  }
  out.resize(len);
  return out;
}

std::string Unzstd(const std::string& in, size_t max) {
  std::string out(max, '\0');
  size_t n = ZSTD_decompress(out.data(), max, in.data(), in.size());
  if (ZSTD_isError(n)) return "<zstd failed>";
  out.resize(n);
  return out;
}

class TiffRoundTrip : public ::testing::Test {
 protected:
  testing::TempDir dir_{"roundtrip"};
};

TEST_F(TiffRoundTrip, EveryChunkIsALibtiffTileAndDecodesLikeLibtiff) {
  TIFFSetErrorHandler(nullptr);
  TIFFSetWarningHandler(nullptr);
  fs::path samples = dir_.path() / "samples";
  testing::WriteSamples(samples);
  fs::path index = dir_.path() / "s.refs.db";
  std::ostringstream log;
  auto report = IndexPaths({samples}, index, {}, log);
  ASSERT_TRUE(report.ok()) << report.status().message();
  ASSERT_GT(report->indexed, 40u);

  auto store = OpenRefStore(index, OpenMode::kReadOnly);
  ASSERT_TRUE(store.ok());
  ViewOptions options;
  options.codecs = CodecPolicy::kPassthrough;
  auto view = OpenZarrView(index, options);
  ASSERT_TRUE(view.ok()) << view.status().message();

  uint64_t chunks = 0, decoded = 0;
  for (const IndexedFile& f : report->files) {
    if (f.outcome != "indexed") continue;
    SCOPED_TRACE(f.path);
    auto raw = RawSegments(f.path);
    // Multi-file OME sets reference tiles of their companions: collect those too.
    auto sources = (*store)->Sources();
    ASSERT_TRUE(sources.ok());
    std::map<std::string, fs::path> owner_of;  // raw bytes of companions
    for (const SourceInfo& s : *sources) {
      const fs::path local = DisplaySource(s.uri);
      if (s.status != "companion" || local == f.path) continue;
      for (auto& [bytes, seg] : RawSegments(local)) owner_of.emplace(bytes, local);
    }
    size_t own_segments = raw.size();
    size_t served_own = 0;
    auto nodes = (*store)->Subtree(f.group);
    ASSERT_TRUE(nodes.ok());
    for (const NodeRecord& n : *nodes) {
      if (n.kind != NodeKind::kArray) continue;
      auto desc = ArrayDesc::FromJson(n.meta["array"]);
      ASSERT_TRUE(desc.ok());
      auto grid = desc->GridShape();
      auto blocks = (*store)->BlockNumbers(n.id);
      ASSERT_TRUE(blocks.ok());
      for (uint64_t b : *blocks) {
        auto entries = (*store)->GetBlock(n.id, b);
        ASSERT_TRUE(entries.ok());
        for (size_t i = 0; i < entries->size(); ++i) {
          if (!(*entries)[i].present) continue;
          std::string key = n.path;
          for (uint64_t c : ChunkCoords(grid, b * kBlockSize + i)) key += "/" + std::to_string(c);
          auto value = (*view)->Get(key);
          ASSERT_TRUE(value.ok() && *value) << key << ": " << value.status().message();
          auto bytes = (*view)->Materialize(**value);
          ASSERT_TRUE(bytes.ok());
          ++chunks;
          auto it = raw.find(*bytes);
          if (it == raw.end()) {
            // An uncompressed segment with padding is served trimmed to its rows.
            bool companion = owner_of.count(*bytes) > 0;
            bool trimmed = false;
            for (auto r = raw.begin(); r != raw.end() && !companion; ++r) {
              if (r->second.compression == 1 && r->first.compare(0, bytes->size(), *bytes) == 0) {
                trimmed = true;
                it = r;
                break;
              }
            }
            ASSERT_TRUE(companion || trimmed) << key << " is no raw tile or strip of the file";
            if (companion) continue;
          }
          const RawSegment seg = it->second;
          raw.erase(it);
          ++served_own;
          if (seg.predictor != 1) continue;
          std::string expect = Encoded(f.path, seg);
          std::string got;
          if (seg.compression == COMPRESSION_NONE) got = *bytes;
          else if (seg.compression == COMPRESSION_ADOBE_DEFLATE || seg.compression == COMPRESSION_DEFLATE)
            got = Inflate(*bytes, expect.size() + 1024);
          else if (seg.compression == COMPRESSION_ZSTD) got = Unzstd(*bytes, expect.size() + 1024);
          else continue;
          // A short last strip decodes to its own rows; libtiff reports the same count.
          EXPECT_EQ(got, expect.substr(0, got.size())) << key;
          EXPECT_EQ(got.size(), expect.size()) << key;
          ++decoded;
        }
      }
    }
    // Every stored segment of a plain TIFF is served exactly once.
    EXPECT_EQ(served_own, own_segments) << "tiles or strips of the file that no chunk serves";
  }
  EXPECT_GT(chunks, 500u);
  EXPECT_GT(decoded, 200u);
}

}  // namespace
}  // namespace refzarr
