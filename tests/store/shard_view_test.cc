// Shards of a Zarr v3 view (ViewOptions::shards): their geometry, their index bytes against the
// sharding specification (little-endian uint64 pairs, 2^64-1 for a missing chunk, CRC-32C at the
// end), and a view over a hand-made index whose chunk bytes are known, so every shard, range,
// listing size and Stat is compared with bytes computed here from the spec alone.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "store/ref_store.h"
#include "formats/core/crc32c.h"
#include "store/shard_layout.h"
#include "store/zarr_view.h"

namespace refzarr {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using internal::ChunksPerShard;

ShardingSpec Auto() { return ShardingSpec{ShardingSpec::Mode::kAuto, {}}; }

TEST(ShardLayout, AutoShardsTakeWholePlanesOfAStackWhileTheyFit) {
  EXPECT_EQ(ChunksPerShard(Auto(), std::vector<uint64_t>{10, 4, 4}), (std::vector<uint64_t>{10, 4, 4}));
  EXPECT_EQ(ChunksPerShard(Auto(), std::vector<uint64_t>{1, 3, 100, 8, 8}),
            (std::vector<uint64_t>{1, 1, 16, 8, 8}));
  EXPECT_EQ(ChunksPerShard(Auto(), std::vector<uint64_t>{7}), (std::vector<uint64_t>{7}));
}

TEST(ShardLayout, AutoShardsCutALargePlaneIntoSquaresOfChunks) {
  EXPECT_EQ(ChunksPerShard(Auto(), std::vector<uint64_t>{320, 320}), (std::vector<uint64_t>{32, 32}));
  EXPECT_EQ(ChunksPerShard(Auto(), std::vector<uint64_t>{4, 320, 320}),
            (std::vector<uint64_t>{1, 32, 32}));
  // One-row strips: a column of 1,024 strips.
  EXPECT_EQ(ChunksPerShard(Auto(), std::vector<uint64_t>{5000, 1}), (std::vector<uint64_t>{1024, 1}));
  EXPECT_EQ(ChunksPerShard(Auto(), std::vector<uint64_t>{2, 5000}), (std::vector<uint64_t>{2, 512}));
}

TEST(ShardLayout, ALowerBoundMakesSmallerAutoShards) {
  // Transcoded 256 x 256 uint16 tiles: 8 MiB / 128 KiB = 64 chunks a shard.
  EXPECT_EQ(ChunksPerShard(Auto(), std::vector<uint64_t>{1, 1, 100, 8, 8}, 64),
            (std::vector<uint64_t>{1, 1, 1, 8, 8}));
  EXPECT_EQ(ChunksPerShard(Auto(), std::vector<uint64_t>{320, 320}, 64),
            (std::vector<uint64_t>{8, 8}));
  EXPECT_EQ(ChunksPerShard(Auto(), std::vector<uint64_t>{10, 10}, 0), (std::vector<uint64_t>{1, 1}));
}

TEST(ShardLayout, AShapeIsRightAlignedAndClippedToTheGrid) {
  ShardingSpec s{ShardingSpec::Mode::kShape, {16, 16}};
  EXPECT_EQ(ChunksPerShard(s, std::vector<uint64_t>{3, 40, 5}), (std::vector<uint64_t>{1, 16, 5}));
  EXPECT_EQ(ChunksPerShard(s, std::vector<uint64_t>{40}), (std::vector<uint64_t>{16}));
  EXPECT_TRUE(ChunksPerShard(ShardingSpec{}, std::vector<uint64_t>{3, 3}).empty());
  EXPECT_TRUE(ChunksPerShard(Auto(), std::vector<uint64_t>{}).empty());  // 0-d: unsharded
}

TEST(ShardLayout, ParsesNoneAutoAndShapesAndRefusesTheRest) {
  EXPECT_EQ(ParseShardingSpec("none")->mode, ShardingSpec::Mode::kNone);
  EXPECT_EQ(ParseShardingSpec("auto")->mode, ShardingSpec::Mode::kAuto);
  EXPECT_EQ(ParseShardingSpec("1,8,8")->chunks_per_shard, (std::vector<uint64_t>{1, 8, 8}));
  for (const char* bad : {"", "0", "8,", ",8", "8,,8", "x", "-1", "auto,2", "99999999"}) {
    auto r = ParseShardingSpec(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("shards"), std::string::npos) << r.status().message();
  }
}

uint64_t Le64(std::string_view b, size_t at) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(b[at + i]);
  return v;
}

TEST(ShardLayout, TheIndexIsLittleEndianPairsThenTheirCrc32c) {
  std::vector<internal::InnerChunk> entries = {{0, 12}, {}, {12, 0x0102030405060708ull}};
  const std::string index = internal::EncodeShardIndex(entries);
  ASSERT_EQ(index.size(), 3 * 16 + 4u);
  EXPECT_EQ(Le64(index, 0), 0u);
  EXPECT_EQ(Le64(index, 8), 12u);
  EXPECT_EQ(Le64(index, 16), ~uint64_t{0});
  EXPECT_EQ(Le64(index, 24), ~uint64_t{0});
  EXPECT_EQ(Le64(index, 32), 12u);
  EXPECT_EQ(static_cast<unsigned char>(index[40]), 0x08);  // least significant byte first
  // The one CRC-32C helper (formats/core/crc32c.h; its check values: Crc32c.*).
  const uint32_t crc = Crc32c(std::as_bytes(std::span(index).first(48)));
  uint32_t stored = 0;
  for (int i = 3; i >= 0; --i) stored = (stored << 8) | static_cast<unsigned char>(index[48 + i]);
  EXPECT_EQ(stored, crc);
}

// An index over one data file (bytes 0..255): uint16 array "img/0" of shape (4, 6) in (2, 3)
// chunks (grid 2 x 2). Chunks 0 and 1 lie back to back (4..16, 16..28), chunk 2 elsewhere
// (40..52), chunk 3 is missing.
class ShardViewTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("refzarr_shard_view_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    data_ = dir_ / "data.bin";
    for (int i = 0; i < 256; ++i) bytes_ += static_cast<char>(i);
    std::ofstream(data_, std::ios::binary) << bytes_;
    index_ = dir_ / "v.refs.db";
    auto store = OpenRefStore(index_, OpenMode::kReadWrite);
    ASSERT_TRUE(store.ok());
    ScannedFile f;
    ImageDesc image;
    image.axes = {{"y", "space", "micrometer"}, {"x", "space", "micrometer"}};
    image.levels = {"0"};
    image.scales = {{0.5, 0.25}};
    f.groups.push_back({"", json::object(), std::nullopt});
    f.groups.push_back({"img", json::object(), image});
    ScannedFile::Array a;
    a.path = "img/0";
    a.desc.shape = {4, 6};
    a.desc.chunks = {2, 3};
    a.desc.dtype = DType::Make('u', 2, '<');
    a.chunks.emplace_back(0, ChunkRef{0, 4, 12, 0});
    a.chunks.emplace_back(1, ChunkRef{0, 16, 12, 0});
    a.chunks.emplace_back(2, ChunkRef{0, 40, 12, 0});
    f.arrays.push_back(a);
    auto src = ProbeSource(FileUri(data_));
    ASSERT_TRUE(src.ok());
    ASSERT_TRUE((*store)->PutFile(*src, "", "test", f, {}).ok());
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<ZarrView> Open(ShardingSpec shards, int format = 3) {
    ViewOptions o;
    o.zarr_format = format;
    o.shards = std::move(shards);
    auto v = OpenZarrView(index_, o);
    EXPECT_TRUE(v.ok()) << v.status().message();
    return v.ok() ? std::move(*v) : nullptr;
  }
  std::string Bytes(ZarrView& v, const std::string& key) {
    auto value = v.Get(key);
    EXPECT_TRUE(value.ok() && *value) << key;
    if (!value.ok() || !*value) return "";
    auto bytes = v.Materialize(**value);
    EXPECT_TRUE(bytes.ok());
    return bytes.ok() ? *bytes : "";
  }
  // A shard as the spec lays it out: the given chunks (offset, length in the data file; length
  // 0 for a missing one) in order, then the index.
  std::string Expected(std::vector<std::pair<uint64_t, uint64_t>> chunks) {
    std::string body, index;
    auto put = [&index](uint64_t v) {
      for (int i = 0; i < 8; ++i) index += static_cast<char>((v >> (8 * i)) & 0xFF);
    };
    for (auto [offset, length] : chunks) {
      if (length == 0) {
        put(~uint64_t{0});
        put(~uint64_t{0});
        continue;
      }
      put(body.size());
      put(length);
      body += bytes_.substr(offset, length);
    }
    const uint32_t crc = Crc32c(std::as_bytes(std::span(index)));
    for (int i = 0; i < 4; ++i) index += static_cast<char>((crc >> (8 * i)) & 0xFF);
    return body + index;
  }

  fs::path dir_, data_, index_;
  std::string bytes_;
};

TEST_F(ShardViewTest, MetadataNamesShardingIndexedWithTheChunksInside) {
  auto view = Open(ShardingSpec{ShardingSpec::Mode::kShape, {1, 2}});
  ASSERT_TRUE(view);
  auto value = view->Get("img/0/zarr.json");
  ASSERT_TRUE(value.ok() && *value);
  json meta = json::parse((*value)->bytes);
  EXPECT_EQ(meta["chunk_grid"]["configuration"]["chunk_shape"], json({2, 6}));
  ASSERT_EQ(meta["codecs"].size(), 1u);
  const json& sharding = meta["codecs"][0];
  EXPECT_EQ(sharding["name"], "sharding_indexed");
  EXPECT_EQ(sharding["configuration"]["chunk_shape"], json({2, 3}));
  EXPECT_EQ(sharding["configuration"]["codecs"][0]["name"], "bytes");
  EXPECT_EQ(sharding["configuration"]["index_location"], "end");
  EXPECT_EQ(sharding["configuration"]["index_codecs"],
            json::parse(R"([{"name":"bytes","configuration":{"endian":"little"}},{"name":"crc32c"}])"));
  // Unsharded, the same array has no sharding codec.
  auto plain = Open(ShardingSpec{});
  auto p = plain->Get("img/0/zarr.json");
  ASSERT_TRUE(p.ok() && *p);
  EXPECT_EQ(json::parse((*p)->bytes)["codecs"][0]["name"], "bytes");
}

TEST_F(ShardViewTest, EachShardIsItsChunksThenTheIndexAndMissingChunksAreAllOnes) {
  auto view = Open(ShardingSpec{ShardingSpec::Mode::kShape, {1, 2}});
  ASSERT_TRUE(view);
  EXPECT_EQ(Bytes(*view, "img/0/c/0/0"), Expected({{4, 12}, {16, 12}}));
  EXPECT_EQ(Bytes(*view, "img/0/c/1/0"), Expected({{40, 12}, {0, 0}}));
  // Keys name shards: the shard grid is 2 x 1.
  auto outside = view->Get("img/0/c/0/1");
  ASSERT_TRUE(outside.ok());
  EXPECT_FALSE(outside->has_value());
  auto autoview = Open(Auto());
  EXPECT_EQ(Bytes(*autoview, "img/0/c/0/0"), Expected({{4, 12}, {16, 12}, {40, 12}, {0, 0}}));
}

TEST_F(ShardViewTest, BackToBackChunksAreOneSliceAndTheIndexIsBytes) {
  auto view = Open(ShardingSpec{ShardingSpec::Mode::kShape, {1, 2}});
  auto value = view->Get("img/0/c/0/0");
  ASSERT_TRUE(value.ok() && *value);
  ASSERT_EQ((*value)->pieces.size(), 2u);
  ASSERT_TRUE((*value)->pieces[0].slice);
  EXPECT_EQ((*value)->pieces[0].slice->offset, 4u);
  EXPECT_EQ((*value)->pieces[0].slice->length, 24u);
  EXPECT_FALSE((*value)->pieces[1].slice);
  EXPECT_EQ((*value)->pieces[1].length, internal::ShardIndexBytes(2));
}

TEST_F(ShardViewTest, RangesMapToTheSourceRangesBehindThem) {
  auto view = Open(Auto());
  auto value = view->Get("img/0/c/0/0");
  ASSERT_TRUE(value.ok() && *value);
  const std::string whole = Expected({{4, 12}, {16, 12}, {40, 12}, {0, 0}});
  ASSERT_EQ((*value)->size(), whole.size());
  // An inner chunk: one slice of the source at its stored offset.
  auto inner = ValueRange(**value, 24, 12);
  ASSERT_EQ(inner.size(), 1u);
  ASSERT_TRUE(inner[0].slice);
  EXPECT_EQ(inner[0].slice->offset, 40u);
  EXPECT_EQ(inner[0].slice->length, 12u);
  // The index, as a suffix range: bytes.
  const uint64_t tail = internal::ShardIndexBytes(4);
  auto index = ValueRange(**value, whole.size() - tail, tail);
  ASSERT_EQ(index.size(), 1u);
  EXPECT_EQ(std::string(index[0].view()), whole.substr(whole.size() - tail));
  // Every range, materialized, equals the expected bytes.
  for (uint64_t off = 0; off < whole.size(); off += 5) {
    for (uint64_t len : {1ull, 7ull, 13ull, 40ull}) {
      if (off + len > whole.size()) continue;
      Value range;
      range.pieces = ValueRange(**value, off, len);
      auto got = view->Materialize(range);
      ASSERT_TRUE(got.ok());
      EXPECT_EQ(*got, whole.substr(off, len)) << off << "+" << len;
    }
  }
}

TEST_F(ShardViewTest, ListingsAndStatGiveExactSizesWithoutReadingPixels) {
  auto view = Open(ShardingSpec{ShardingSpec::Mode::kShape, {1, 2}});
  auto list = view->List("img/0/c");
  ASSERT_TRUE(list.ok() && *list);
  ASSERT_EQ((*list)->size(), 2u);
  EXPECT_EQ((**list)[0].name, "0");
  EXPECT_TRUE((**list)[0].is_directory);
  auto row = view->List("img/0/c/1");
  ASSERT_TRUE(row.ok() && *row);
  ASSERT_EQ((*row)->size(), 1u);
  EXPECT_EQ((**row)[0].name, "0");
  ASSERT_TRUE((**row)[0].size);
  EXPECT_EQ(*(**row)[0].size, Expected({{40, 12}, {0, 0}}).size());
  auto stat = view->Stat("img/0/c/1/0");
  ASSERT_TRUE(stat.ok());
  EXPECT_EQ(stat->first, EntryKind::kFile);
  EXPECT_EQ(stat->second, *(**row)[0].size);
  auto dir = view->Stat("img/0/c/1");
  ASSERT_TRUE(dir.ok());
  EXPECT_EQ(dir->first, EntryKind::kDirectory);
  auto none = view->Stat("img/0/c/2");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->first, EntryKind::kMissing);
}

TEST_F(ShardViewTest, ASparseRowOfWideShardsListsOnlyShardsWithChunks) {
  // Shards of 2 x 1 chunks: shard (0, 0) holds chunks 0 and 2, shard (0, 1) chunk 1 (3 missing).
  auto view = Open(ShardingSpec{ShardingSpec::Mode::kShape, {2, 1}});
  auto row = view->List("img/0/c/0");
  ASSERT_TRUE(row.ok() && *row);
  ASSERT_EQ((*row)->size(), 2u);
  EXPECT_EQ(Bytes(*view, "img/0/c/0/0"), Expected({{4, 12}, {40, 12}}));
  EXPECT_EQ(Bytes(*view, "img/0/c/0/1"), Expected({{16, 12}, {0, 0}}));
}

TEST_F(ShardViewTest, AZarrV2ViewRefusesShards) {
  ViewOptions o;
  o.zarr_format = 2;
  o.shards = Auto();
  auto v = OpenZarrView(index_, o);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(v.status().message().find("v3"), std::string::npos);
}

TEST_F(ShardViewTest, AChangedSourceFailsTheShardAsStale) {
  auto view = Open(Auto());
  std::string other(256, 'x');
  std::ofstream(data_, std::ios::binary | std::ios::trunc) << other << "more";
  auto value = view->Get("img/0/c/0/0");
  ASSERT_FALSE(value.ok());
  EXPECT_EQ(value.status().code(), StatusCode::kStale);
}

}  // namespace
}  // namespace refzarr
