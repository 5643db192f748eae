// ReadPlane over a recording fetcher (which chunks it asks for, once each), element conversion of
// every byte order, fill values for chunks that are not stored, and Quantiles against numpy's
// linear definition computed by hand.
#include "store/preview/plane.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

namespace refzarr {
namespace {

// A (t, c, z, y, x) uint16 array of 1 x 2 x 3 x 5 x 7 in chunks of 1 x 1 x 2 x 2 x 3 (edge chunks
// in z, y and x), its value a formula of the coordinates, in `order` byte order.
struct FakeArray {
  ArrayDesc desc;
  std::map<std::vector<uint64_t>, int> asked;
  std::vector<std::vector<uint64_t>> missing;  // chunks not stored

  explicit FakeArray(char order) {
    desc.shape = {1, 2, 3, 5, 7};
    desc.chunks = {1, 1, 2, 2, 3};
    desc.dtype = DType::Make('u', 2, order);
    desc.fill_value = 9;
  }
  static uint16_t Value(uint64_t c, uint64_t z, uint64_t y, uint64_t x) {
    return static_cast<uint16_t>(1000 * c + 100 * z + 10 * y + x);
  }
  DecodedChunkFetcher Fetcher() {
    return [this](std::span<const uint64_t> coords) -> Result<std::optional<std::string>> {
      std::vector<uint64_t> key(coords.begin(), coords.end());
      ++asked[key];
      if (std::find(missing.begin(), missing.end(), key) != missing.end()) {
        return std::optional<std::string>();
      }
      std::string out(desc.ChunkBytes(), '\0');
      size_t i = 0;
      for (uint64_t z = 0; z < 2; ++z) {
        for (uint64_t y = 0; y < 2; ++y) {
          for (uint64_t x = 0; x < 3; ++x, ++i) {
            uint16_t v = Value(coords[1], coords[2] * 2 + z, coords[3] * 2 + y, coords[4] * 3 + x);
            unsigned char b[2] = {static_cast<unsigned char>(v & 0xFF), static_cast<unsigned char>(v >> 8)};
            if (desc.dtype.byte_order == '>') std::swap(b[0], b[1]);
            std::memcpy(&out[i * 2], b, 2);
          }
        }
      }
      return std::optional<std::string>(std::move(out));
    };
  }
};

TEST(ReadPlane, ReadsEveryElementOfThePlaneInBothByteOrders) {
  for (char order : {'<', '>'}) {
    FakeArray a(order);
    const uint64_t origin[] = {0, 1, 2, 0, 0};
    auto plane = ReadPlane(a.desc, a.Fetcher(), origin, 3, 4);
    ASSERT_TRUE(plane.ok()) << plane.status().message();
    ASSERT_EQ(plane->height, 5u);
    ASSERT_EQ(plane->width, 7u);
    for (uint64_t y = 0; y < 5; ++y) {
      for (uint64_t x = 0; x < 7; ++x) {
        EXPECT_EQ(plane->values[y * 7 + x], FakeArray::Value(1, 2, y, x)) << order << y << x;
      }
    }
    // 3 x 3 chunks cover the plane; each is asked for once, in the plane's z chunk (2 / 2 = 1).
    EXPECT_EQ(a.asked.size(), 9u);
    for (const auto& [coords, n] : a.asked) {
      EXPECT_EQ(n, 1);
      EXPECT_EQ(coords[2], 1u);
      EXPECT_EQ(coords[1], 1u);
    }
  }
}

TEST(ReadPlane, ChunksNotStoredAreTheFillValue) {
  FakeArray a('<');
  a.missing.push_back({0, 0, 0, 1, 1});  // rows 2-3, columns 3-5
  const uint64_t origin[] = {0, 0, 1, 0, 0};
  auto plane = ReadPlane(a.desc, a.Fetcher(), origin, 3, 4);
  ASSERT_TRUE(plane.ok()) << plane.status().message();
  EXPECT_EQ(plane->values[2 * 7 + 3], 9);
  EXPECT_EQ(plane->values[3 * 7 + 5], 9);
  EXPECT_EQ(plane->values[3 * 7 + 6], FakeArray::Value(0, 1, 3, 6));
}

TEST(ReadPlane, RefusesOriginsOutsideTheArrayAndWrongChunkSizes) {
  FakeArray a('<');
  const uint64_t outside[] = {0, 2, 0, 0, 0};
  auto r = ReadPlane(a.desc, a.Fetcher(), outside, 3, 4);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  DecodedChunkFetcher short_chunks = [](std::span<const uint64_t>) -> Result<std::optional<std::string>> {
    return std::optional<std::string>(std::string(3, '\0'));
  };
  const uint64_t origin[] = {0, 0, 0, 0, 0};
  auto s = ReadPlane(a.desc, short_chunks, origin, 3, 4);
  EXPECT_EQ(s.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(s.status().message().find("expected 24"), std::string::npos) << s.status().message();
}

TEST(ReadPlane, ConvertsHalfFloatsAndSignedIntegers) {
  ArrayDesc d;
  d.shape = {2, 2};
  d.chunks = {2, 2};
  d.dtype = DType::Make('f', 2, '<');
  // 1.0, -2.0, 0.5, 65504 in IEEE half precision.
  const uint16_t halves[] = {0x3C00, 0xC000, 0x3800, 0x7BFF};
  DecodedChunkFetcher f = [&](std::span<const uint64_t>) -> Result<std::optional<std::string>> {
    return std::optional<std::string>(std::string(reinterpret_cast<const char*>(halves), 8));
  };
  const uint64_t origin[] = {0, 0};
  auto p = ReadPlane(d, f, origin, 0, 1);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->values, (std::vector<double>{1.0, -2.0, 0.5, 65504.0}));
  d.dtype = DType::Make('i', 2, '<');
  const int16_t ints[] = {-32768, -1, 0, 32767};
  DecodedChunkFetcher g = [&](std::span<const uint64_t>) -> Result<std::optional<std::string>> {
    return std::optional<std::string>(std::string(reinterpret_cast<const char*>(ints), 8));
  };
  p = ReadPlane(d, g, origin, 0, 1);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->values, (std::vector<double>{-32768, -1, 0, 32767}));
}

TEST(Quantiles, InterpolatesBetweenOrderStatisticsAsNumpyDoes) {
  // numpy.percentile(v, q) for v = a permutation of 0..999: position q/100 * 999, interpolated.
  std::vector<double> v(1000);
  for (int i = 0; i < 1000; ++i) v[i] = (i * 377) % 1000;
  v.push_back(NAN);  // not finite: ignored
  auto q = Quantiles(v, kWindowLowQuantile, kWindowHighQuantile);
  ASSERT_TRUE(q);
  EXPECT_NEAR(q->first, 0.001 * 999, 1e-9);
  EXPECT_NEAR(q->second, 0.999 * 999, 1e-9);
  EXPECT_FALSE(Quantiles(std::vector<double>{NAN, INFINITY}, 0.1, 0.9));
  // Integers take a counting pass, other values a selection: the same numbers either way.
  std::vector<double> halves(v.begin(), v.end() - 1);
  for (double& x : halves) x += 0.5;
  auto h = Quantiles(halves, 0.25, 0.9);
  ASSERT_TRUE(h);
  EXPECT_NEAR(h->first, 0.25 * 999 + 0.5, 1e-9);
  EXPECT_NEAR(h->second, 0.9 * 999 + 0.5, 1e-9);
  // Repeated values: numpy.percentile([1, 1, 1, 7], 50) = 1, 80 = 1 + 0.4 * 6.
  auto rep = Quantiles(std::vector<double>{7, 1, 1, 1}, 0.5, 0.8);
  ASSERT_TRUE(rep);
  EXPECT_NEAR(rep->first, 1.0, 1e-12);
  EXPECT_NEAR(rep->second, 1.0 + 0.4 * 6, 1e-12);
  auto one = Quantiles(std::vector<double>{5}, 0.001, 0.999);
  ASSERT_TRUE(one);
  EXPECT_EQ(*one, std::make_pair(5.0, 5.0));
}

}  // namespace
}  // namespace refzarr
