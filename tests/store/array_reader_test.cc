// The typed read API (store/array_reader.h). Oracles that do not go through refzarr: element
// values from the formula that wrote the fixture's data file, and, for the generated TIFF samples
// (every codec, predictor, byte order and layout they cover), the CRC-32s of the generator's
// manifest, which samples.GeneratedTiffsReadAsIntended checks against tifffile and libtiff.
#include "store/array_reader.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "formats/registry/registry.h"
#include "store/ref_store.h"

namespace refzarr {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path ScratchDir(const std::string& what) {
  fs::path dir =
      fs::temp_directory_path() / ("refzarr_reader_" + std::to_string(getpid()) + "_" + what);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// The value the fixture's data file holds at (y, x) of its arrays.
uint16_t ValueAt(uint64_t y, uint64_t x) { return static_cast<uint16_t>(1000 + 100 * y + x); }
float FloatAt(uint64_t y, uint64_t x) { return 0.5f * y - 0.25f * x; }

// One data file and an index over it, group "img":
// - "img/le": uint16 little-endian, shape (5, 7) in (2, 3) chunks, uncompressed, chunk (1, 1) not
//   stored, fill value 7; edge chunks are stored whole, their elements outside the array 0xFFFF;
// - "img/be": the same values big-endian, every chunk stored;
// - "img/zf": float32 values FloatAt, zlib-compressed chunks, fill value -1, chunk (2, 0) not
//   stored.
class ArrayReaderTest : public ::testing::Test {
 protected:
  static constexpr uint64_t kH = 5, kW = 7, kCh = 2, kCw = 3;

  void SetUp() override {
    dir_ = ScratchDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    data_ = dir_ / "data.bin";
    index_ = dir_ / "r.refs.db";
    std::string bytes;
    ScannedFile f;
    f.groups.push_back({"", json::object(), std::nullopt});
    f.groups.push_back({"img", json::object(), std::nullopt});
    auto array = [](const std::string& path, DType dtype, json fill) {
      ScannedFile::Array a;
      a.path = path;
      a.desc.shape = {kH, kW};
      a.desc.chunks = {kCh, kCw};
      a.desc.dtype = dtype;
      a.desc.fill_value = fill;
      a.desc.dimension_names = {"y", "x"};
      return a;
    };
    ScannedFile::Array le = array("img/le", DType::Make('u', 2, '<'), 7);
    ScannedFile::Array be = array("img/be", DType::Make('u', 2, '>'), 7);
    ScannedFile::Array zf = array("img/zf", DType::Make('f', 4, '<'), -1);
    zf.desc.encoding.compressor = {{"id", "zlib"}, {"level", 1}};
    const uint64_t gh = (kH + kCh - 1) / kCh, gw = (kW + kCw - 1) / kCw;
    for (uint64_t cy = 0; cy < gh; ++cy) {
      for (uint64_t cx = 0; cx < gw; ++cx) {
        const uint64_t linear = cy * gw + cx;
        std::string l, b, z;
        for (uint64_t y = cy * kCh; y < (cy + 1) * kCh; ++y) {
          for (uint64_t x = cx * kCw; x < (cx + 1) * kCw; ++x) {
            const bool in = y < kH && x < kW;
            const uint16_t v = in ? ValueAt(y, x) : 0xFFFF;
            l += static_cast<char>(v & 0xFF);
            l += static_cast<char>(v >> 8);
            b += static_cast<char>(v >> 8);
            b += static_cast<char>(v & 0xFF);
            const float fv = in ? FloatAt(y, x) : 12345.f;
            z.append(reinterpret_cast<const char*>(&fv), 4);
          }
        }
        if (!(cy == 1 && cx == 1)) {
          le.chunks.emplace_back(linear, ChunkRef{0, bytes.size(), l.size(), 0});
          bytes += l;
        }
        be.chunks.emplace_back(linear, ChunkRef{0, bytes.size(), b.size(), 0});
        bytes += b;
        if (!(cy == 2 && cx == 0)) {
          uLongf n = compressBound(z.size());
          std::string packed(n, '\0');
          ASSERT_EQ(compress2(reinterpret_cast<Bytef*>(packed.data()), &n,
                              reinterpret_cast<const Bytef*>(z.data()), z.size(), 1),
                    Z_OK);
          packed.resize(n);
          zf.chunks.emplace_back(linear, ChunkRef{0, bytes.size(), packed.size(), 0});
          bytes += packed;
        }
      }
    }
    f.arrays = {le, be, zf};
    std::ofstream(data_, std::ios::binary) << bytes;
    auto store = OpenRefStore(index_, OpenMode::kReadWrite);
    ASSERT_TRUE(store.ok()) << store.status().message();
    auto src = ProbeSource(FileUri(data_));
    ASSERT_TRUE(src.ok());
    ASSERT_TRUE((*store)->PutFile(*src, "", "test", f, {}).ok());
    auto view = OpenZarrView(index_, ViewOptions{});
    ASSERT_TRUE(view.ok()) << view.status().message();
    view_ = std::move(*view);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<ArrayReader> Open(const std::string& path, unsigned threads = 0) {
    auto r = OpenArrayReader(*view_, path, {threads});
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? std::move(*r) : nullptr;
  }

  // Every element of `box` as the data file holds it, the fill value where no chunk is stored.
  template <typename T>
  static std::vector<T> Expected(const Box& box, bool missing_11, T (*at)(uint64_t, uint64_t),
                                 T fill, bool missing_20 = false) {
    std::vector<T> out;
    for (uint64_t y = box[0].begin; y < box[0].end; ++y) {
      for (uint64_t x = box[1].begin; x < box[1].end; ++x) {
        const bool gone = (missing_11 && y / kCh == 1 && x / kCw == 1) ||
                          (missing_20 && y / kCh == 2 && x / kCw == 0);
        out.push_back(gone ? fill : at(y, x));
      }
    }
    return out;
  }

  fs::path dir_, data_, index_;
  std::unique_ptr<ZarrView> view_;
};

TEST_F(ArrayReaderTest, ReadsEveryBoxAcrossChunkEdgesWithFillWhereNoChunkIsStored) {
  auto le = Open("img/le");
  auto be = Open("img/be");
  ASSERT_TRUE(le && be);
  EXPECT_EQ(le->array().shape, (std::vector<uint64_t>{kH, kW}));
  EXPECT_EQ(le->WholeBox(), (Box{{0, kH}, {0, kW}}));
  int boxes = 0;
  for (uint64_t y0 = 0; y0 <= kH; ++y0) {
    for (uint64_t y1 = y0; y1 <= kH; ++y1) {
      for (uint64_t x0 = 0; x0 <= kW; ++x0) {
        for (uint64_t x1 = x0; x1 <= kW; ++x1) {
          const Box box = {{y0, y1}, {x0, x1}};
          std::vector<uint16_t> got(*BoxElements(box), 0);
          ASSERT_TRUE(le->Read(box, std::span(got)).ok())
              << y0 << ":" << y1 << " " << x0 << ":" << x1;
          EXPECT_EQ(got, Expected<uint16_t>(box, true, ValueAt, 7))
              << y0 << ":" << y1 << " " << x0 << ":" << x1;
          std::fill(got.begin(), got.end(), 0);
          ASSERT_TRUE(be->Read(box, std::span(got)).ok());
          EXPECT_EQ(got, Expected<uint16_t>(box, false, ValueAt, 7))
              << "big-endian " << y0 << ":" << y1 << " " << x0 << ":" << x1;
          ++boxes;
        }
      }
    }
  }
  EXPECT_EQ(boxes, 21 * 36);
}

TEST_F(ArrayReaderTest, DecodesCompressedChunks) {
  auto zf = Open("img/zf");
  ASSERT_TRUE(zf);
  std::vector<float> got(kH * kW);
  ASSERT_TRUE(zf->Read(zf->WholeBox(), std::span(got)).ok());
  EXPECT_EQ(got, Expected<float>(zf->WholeBox(), false, FloatAt, -1.f, /*missing_20=*/true));
  const Box box = {{1, 4}, {2, 6}};
  std::vector<float> part(*BoxElements(box));
  ASSERT_TRUE(zf->Read(box, std::span(part)).ok());
  EXPECT_EQ(part, Expected<float>(box, false, FloatAt, -1.f, true));
}

TEST_F(ArrayReaderTest, ConcurrentReadsOnAnyNumberOfThreadsAgree) {
  std::vector<std::unique_ptr<ArrayReader>> readers;
  for (unsigned t : {1u, 2u, 8u, 0u}) readers.push_back(Open("img/zf", t));
  std::vector<std::thread> callers;
  std::atomic<int> wrong{0}, reads{0};
  for (int c = 0; c < 8; ++c) {
    callers.emplace_back([&, c] {
      std::mt19937 rng(c);
      for (int i = 0; i < 200; ++i) {
        uint64_t y0 = rng() % (kH + 1), y1 = y0 + rng() % (kH + 1 - y0);
        uint64_t x0 = rng() % (kW + 1), x1 = x0 + rng() % (kW + 1 - x0);
        const Box box = {{y0, y1}, {x0, x1}};
        std::vector<float> got(*BoxElements(box));
        const ArrayReader& r = *readers[i % readers.size()];
        if (!r.Read(box, std::span(got)).ok() ||
            got != Expected<float>(box, false, FloatAt, -1.f, true)) {
          ++wrong;
        }
        ++reads;
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(reads, 1600);
  EXPECT_EQ(wrong, 0);
}

TEST_F(ArrayReaderTest, ErrorsNameTheArrayAndTheProblem) {
  auto le = Open("img/le");
  ASSERT_TRUE(le);
  std::vector<uint16_t> u16(kH * kW);
  std::vector<float> f32(kH * kW);
  Status s = le->Read(le->WholeBox(), std::span(f32));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "read img/le [0:5 0:7]: the array holds uint16 elements, the buffer float32");
  s = le->Read({{0, 5}, {2, 8}}, std::span(u16).first(30));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "read img/le [0:5 2:8]: dimension 1 (x): range 2:8 is outside the array's 0:7");
  s = le->Read({{0, 5}}, std::span(u16).first(5));
  EXPECT_EQ(s.message(),
            "read img/le [0:5]: a box of 1 ranges for an array of 2 dimensions (y, x)");
  s = le->Read({{0, 2}, {0, 2}}, std::span(u16).first(5));
  EXPECT_EQ(s.message(), "read img/le [0:2 0:2]: a buffer of 5 elements for a box of 4 elements");
  s = le->Read({{3, 2}, {0, 2}}, std::span(u16).first(0));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << "a range that ends before it begins";

  auto none = OpenArrayReader(*view_, "img/nope");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  EXPECT_NE(none.status().message().find("no array at 'img/nope'"), std::string::npos)
      << none.status().message();
  EXPECT_EQ(OpenArrayReader(*view_, "img").status().code(), StatusCode::kNotFound) << "a group";
  EXPECT_EQ(OpenArrayReader(*view_, "../img/le").status().code(), StatusCode::kNotFound);
}

TEST_F(ArrayReaderTest, ChangedSourceFailsAsStaleInsteadOfBeingRead) {
  auto le = Open("img/le");
  ASSERT_TRUE(le);
  std::vector<uint16_t> got(kH * kW);
  ASSERT_TRUE(le->Read(le->WholeBox(), std::span(got)).ok());
  {
    std::fstream f(data_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(0);
    f << "XX";
  }
  ::utimensat(AT_FDCWD, data_.c_str(), nullptr, 0);  // a new mtime, whatever the clock's grain
  Status s = le->Read(le->WholeBox(), std::span(got));
  EXPECT_EQ(s.code(), StatusCode::kStale) << s.message();
  EXPECT_NE(s.message().find("read img/le"), std::string::npos) << s.message();
}

TEST(ParseBox, ReadsHalfOpenRangesAndNamesAMalformedOne) {
  std::vector<std::string> ok = {"0:1", "2:10", "0:0"};
  auto box = ParseBox(ok);
  ASSERT_TRUE(box.ok());
  EXPECT_EQ(*box, (Box{{0, 1}, {2, 10}, {0, 0}}));
  for (std::string bad : {"3", "1:", ":4", "a:b", "5:2", "1:2:3", "-1:2"}) {
    std::vector<std::string> one = {bad};
    auto r = ParseBox(one);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("'" + bad + "'"), std::string::npos)
        << r.status().message();
  }
}

// ---- the generated TIFF samples ----

// Reorders the (t, c, z, y, x) elements `in` of `shape` into the axis order of a tifffile series
// (`axes`: letters of TCZYXSI; S is the channel axis, I the one of t, c, z that is not 1).
std::vector<std::byte> ToTifffileOrder(const std::vector<std::byte>& in,
                                       const std::vector<uint64_t>& shape, uint32_t size,
                                       const std::string& axes) {
  std::vector<size_t> perm;
  for (char a : axes) {
    switch (a) {
      case 'T':
        perm.push_back(0);
        break;
      case 'C':
      case 'S':
        perm.push_back(1);
        break;
      case 'Z':
        perm.push_back(2);
        break;
      case 'Y':
        perm.push_back(3);
        break;
      case 'X':
        perm.push_back(4);
        break;
      case 'I': {
        size_t d = 2;
        for (size_t k : {0, 1, 2})
          if (shape[k] > 1) d = k;
        perm.push_back(d);
        break;
      }
      default:
        return {};
    }
  }
  for (size_t d = 0; d < 5; ++d) {  // axes tifffile squeezes away are 1 in refzarr's array
    if (std::find(perm.begin(), perm.end(), d) == perm.end()) {
      if (shape[d] != 1) return {};
      perm.insert(perm.begin(), d);
    }
  }
  std::vector<uint64_t> stride(5);
  for (size_t d = 5, s = 1; d-- > 0;) {
    stride[d] = s;
    s *= shape[d];
  }
  std::vector<std::byte> out(in.size());
  std::vector<uint64_t> at(5, 0);
  for (uint64_t o = 0; o < in.size() / size; ++o) {
    uint64_t src = 0;
    for (size_t k = 0; k < 5; ++k) src += at[k] * stride[perm[k]];
    std::memcpy(out.data() + o * size, in.data() + src * size, size);
    for (size_t k = 5; k-- > 0;) {
      if (++at[k] < shape[perm[k]]) break;
      at[k] = 0;
    }
  }
  return out;
}

// The samples, indexed once for the suite by the refzarr binary.
class ArrayReaderSamples : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(ScratchDir("samples"));
    const fs::path tiff = *dir_ / "tiff";
    ASSERT_EQ(std::system(
                  (std::string(REFZARR_SAMPLES_BIN) + " " + tiff.string() + " >/dev/null").c_str()),
              0)
        << "refzarr-samples could not write the samples";
    // Exit status 1 is expected: some samples are broken on purpose.
    const int rc =
        std::system((std::string(REFZARR_BIN) + " index -o " + (*dir_ / "s.refs.db").string() +
                     " " + tiff.string() + " >/dev/null 2>&1")
                        .c_str());
    ASSERT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) <= 1) << "refzarr index failed to run";
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  static fs::path* dir_;
};
fs::path* ArrayReaderSamples::dir_ = nullptr;

TEST_F(ArrayReaderSamples, EveryLevelOfEverySampleHasTheGeneratorsChecksum) {
  std::ifstream in(*dir_ / "tiff" / "manifest.json");
  const json manifest = json::parse(in);
  auto decoders = DefaultDecoders();
  for (int format : {2, 3}) {
    for (CodecPolicy policy : {CodecPolicy::kCompat, CodecPolicy::kPassthrough}) {
      ViewOptions options;
      options.zarr_format = format;
      options.codecs = policy;
      for (const auto& d : decoders) options.decoders.push_back(d.get());
      auto view = OpenZarrView(*dir_ / "s.refs.db", options);
      ASSERT_TRUE(view.ok()) << view.status().message();
      int compared = 0;
      std::set<std::string> codecs;
      for (const json& file : manifest["files"]) {
        if (file.value("bad", false)) continue;
        const std::string path = file["path"];
        // Members of a multi-file OME image: tifffile reads them alone as plain stacks, refzarr
        // as the image their master describes.
        if (path.find("multifile") != std::string::npos) continue;
        for (size_t s = 0; s < file["series"].size(); ++s) {
          const json& series = file["series"][s];
          for (size_t l = 0; l < series["levels"].size(); ++l) {
            const json& level = series["levels"][l];
            if (level["crc32"].is_null()) continue;  // lossy JPEG
            const std::string array = path + "/" + std::to_string(s) + "/" + std::to_string(l);
            auto reader = OpenArrayReader(**view, array, {4});
            ASSERT_TRUE(reader.ok()) << reader.status().message();
            const ArrayDesc& a = (*reader)->array();
            ASSERT_EQ(a.shape.size(), 5u) << array;
            const auto n = BoxElements((*reader)->WholeBox());
            std::vector<std::byte> bytes(*n * a.dtype.size);
            Status st =
                (*reader)->ReadInto((*reader)->WholeBox(), {a.dtype.kind, a.dtype.size}, bytes);
            ASSERT_TRUE(st.ok()) << st.message();
            auto ordered = ToTifffileOrder(bytes, a.shape, a.dtype.size, series["axes"]);
            ASSERT_FALSE(ordered.empty()) << array << ": axes " << series["axes"];
            const uint32_t crc =
                crc32(0, reinterpret_cast<const Bytef*>(ordered.data()), ordered.size());
            EXPECT_EQ(crc, level["crc32"].get<uint32_t>())
                << array << " (" << file["covers"] << "), v" << format;
            for (const json& p : file["pages"])
              codecs.insert(std::to_string(p["compression"].get<int>()));
            ++compared;
          }
        }
      }
      EXPECT_GT(compared, 60) << "levels compared";
      // none, LZW, JPEG tables files aside, deflate, PackBits, zstd at least.
      for (const char* c : {"1", "5", "8", "32773", "50000"}) EXPECT_TRUE(codecs.count(c)) << c;
    }
  }
}

}  // namespace
}  // namespace refzarr
