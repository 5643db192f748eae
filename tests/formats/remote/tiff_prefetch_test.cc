// The TIFF structure read over HTTP, counted at the fault proxy: a uniform stack's IFD chain is
// prefetched in windows of concurrent requests (few round trips one after the other), SubIFDs
// are fetched together, and a chain whose stride changes is still read exactly as the file says.
#include <gtest/gtest.h>

#include <tiffio.h>

#include <filesystem>
#include <string>
#include <vector>

#include "formats/core/byte_source.h"
#include "formats/remote/remote.h"
#include "formats/tiff/tiff_pages.h"
#include "samples/tiff_open.h"
#include "tests/formats/remote/test_servers.h"

namespace refzarr {
namespace {

using testing::Files;

// One page of `width` x `height` uint16 in 128 x 128 tiles (out-of-line offset and byte-count
// arrays), optionally with `subifds` reduced levels, each a SubIFD of the page.
void WritePage(TIFF* t, uint32_t width, uint32_t height, uint32_t page, int subifds) {
  auto tags = [&](uint32_t w, uint32_t h, uint32_t subfile) {
    TIFFSetField(t, TIFFTAG_SUBFILETYPE, subfile);
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, w);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, h);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 16);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(t, TIFFTAG_TILEWIDTH, 128);
    TIFFSetField(t, TIFFTAG_TILELENGTH, 128);
  };
  auto tiles = [&] {  // as many as the directory's tags make
    std::vector<uint16_t> tile(128 * 128);
    const uint32_t n = TIFFNumberOfTiles(t);
    for (uint32_t i = 0; i < n; ++i) {
      for (size_t k = 0; k < tile.size(); ++k) tile[k] = static_cast<uint16_t>(page * 31 + i * 7 + k);
      ASSERT_GT(TIFFWriteEncodedTile(t, i, tile.data(), tile.size() * 2), 0);
    }
  };
  tags(width, height, 0);
  if (subifds > 0) {
    std::vector<uint64_t> zeros(subifds, 0);
    TIFFSetField(t, TIFFTAG_SUBIFD, static_cast<uint16_t>(subifds), zeros.data());
  }
  tiles();
  ASSERT_TRUE(TIFFWriteDirectory(t));
  for (int k = 1; k <= subifds; ++k) {
    tags(width >> k, height >> k, FILETYPE_REDUCEDIMAGE);
    tiles();
    ASSERT_TRUE(TIFFWriteDirectory(t));
  }
}

// Writes `name` under the servers' root: pages of the given heights (256 wide), each followed by
// `subifds` SubIFDs. Returns its path.
std::string WriteStack(const std::string& name, const std::vector<uint32_t>& heights, int subifds = 0) {
  const std::string path = Files().root + "/" + name;
  std::string log;
  samples::TiffPtr tif = samples::OpenTiffForWriting(path, "w", &log);
  EXPECT_NE(tif, nullptr) << log;
  if (!tif) return path;
  for (size_t p = 0; p < heights.size(); ++p) {
    WritePage(tif.get(), 256, heights[p], static_cast<uint32_t>(p), subifds);
  }
  return path;
}

class TiffOverHttp : public ::testing::Test {
 protected:
  void SetUp() override {
    auto url = testing::ProxyUrl();
    ASSERT_TRUE(url.ok()) << url.status().message();
    base_ = *url;
    openers_ = MakeRemoteOpeners(testing::TestOptions());
    opener_ = testing::OpenerOf(openers_, "http");
    // Enough latency that requests sent together overlap at the proxy, and requests in sequence
    // do not: its "waves" count round trips one after the other.
    ASSERT_TRUE(testing::ProxyControl(R"({"clear": true, "reset_stats": true, "latency_ms": 15})").ok());
  }
  void TearDown() override { (void)testing::ProxyControl(R"({"clear": true})"); }

  // Reads `name`'s structure over HTTP and from the local file; expects them equal and returns
  // the remote one. The proxy's counters cover the remote read only (after the open's probe).
  TiffStructure ReadBoth(const std::string& name, const std::string& path) {
    auto local = OpenLocalFile(path);
    EXPECT_TRUE(local.ok()) << local.status().message();
    auto want = ReadTiffStructure(**local);
    EXPECT_TRUE(want.ok()) << want.status().message();
    auto remote = opener_->Open(base_ + name);
    EXPECT_TRUE(remote.ok()) << remote.status().message();
    EXPECT_TRUE(testing::ProxyControl(R"({"reset_stats": true})").ok());
    auto got = ReadTiffStructure(**remote);
    EXPECT_TRUE(got.ok()) << got.status().message();
    if (!want.ok() || !got.ok()) return {};
    EXPECT_EQ(got->pages.size(), want->pages.size());
    for (size_t i = 0; i < std::min(got->pages.size(), want->pages.size()); ++i) {
      const TiffPage &g = got->pages[i], &w = want->pages[i];
      EXPECT_EQ(g.ifd_offset, w.ifd_offset) << "page " << i;
      EXPECT_EQ(g.sub_index, w.sub_index) << "page " << i;
      EXPECT_EQ(g.length, w.length) << "page " << i;
      EXPECT_EQ(g.offsets, w.offsets) << "page " << i;
      EXPECT_EQ(g.byte_counts, w.byte_counts) << "page " << i;
    }
    return std::move(*got);
  }

  static uint64_t Counter(const std::string& name) {
    auto n = testing::ProxyCounter(name);
    EXPECT_TRUE(n.ok()) << n.status().message();
    return n.ok() ? *n : 0;
  }

  std::string base_;
  std::vector<std::unique_ptr<SourceOpener>> openers_;
  const SourceOpener* opener_ = nullptr;
};

TEST_F(TiffOverHttp, UniformStackIsFewRoundTrips) {
  // 160 pages of 128 KiB: every IFD in a block of its own, 128 KiB after the one before.
  const std::vector<uint32_t> heights(160, 256);
  const std::string path = WriteStack("prefetch-uniform.tif", heights);
  TiffStructure s = ReadBoth("prefetch-uniform.tif", path);
  ASSERT_EQ(s.pages.size(), heights.size());
  const uint64_t waves = Counter("waves"), requests = Counter("requests");
  // Without prefetching every IFD is a round trip of its own (160); windows of 8, 16, 32, 64
  // and 128 pages after the first three make it about ten.
  EXPECT_LE(waves, 20u) << requests << " requests";
  EXPECT_GE(Counter("peak_in_flight"), 8u);
  // Each page's block is fetched once: prefetching predicted exactly.
  EXPECT_LE(requests, heights.size() + 8);
}

TEST_F(TiffOverHttp, ChangingStrideIsReadAsTheFileSays) {
  // The stride changes twice (pages of 128, then 96, then 128 KiB): the windows predicted
  // across each change are wrong, and the chain is still followed through the file's own IFDs.
  std::vector<uint32_t> heights(40, 256);
  heights.insert(heights.end(), 60, 192);
  heights.insert(heights.end(), 40, 256);
  const std::string path = WriteStack("prefetch-changing.tif", heights);
  TiffStructure s = ReadBoth("prefetch-changing.tif", path);
  ASSERT_EQ(s.pages.size(), heights.size());
  EXPECT_EQ(s.pages[40].length, 192u);
  EXPECT_EQ(s.pages[100].length, 256u);
  // Each change costs a few serial round trips and at most one wasted window.
  EXPECT_LE(Counter("waves"), 40u);
}

TEST_F(TiffOverHttp, SubIfdsOfAPageAreFetchedTogether) {
  // Two pages, each with three SubIFDs written after its own IFD, each level's tiles (512, 256
  // and 128 KiB) between them: with prefetching the three SubIFDs of a page are fetched at
  // once, one round trip, not three.
  const std::string path = WriteStack("prefetch-subifds.tif", {4096, 4096}, 3);
  TiffStructure s = ReadBoth("prefetch-subifds.tif", path);
  ASSERT_EQ(s.pages.size(), 8u);
  EXPECT_EQ(s.pages[1].sub_index, 0);
  EXPECT_EQ(s.pages[3].length, 512u);
  EXPECT_GE(Counter("peak_in_flight"), 3u);
  // The header and IFD 0, its SubIFDs, IFD 1, its SubIFDs.
  EXPECT_LE(Counter("waves"), 5u);
}

}  // namespace
}  // namespace refzarr
