// RecordingSink: what it accepts, and that Finish() finds a chunk given twice in every order.
#include "formats/core/recording_sink.h"

#include <gtest/gtest.h>

#include <array>
#include <string>

namespace refzarr {
namespace {

ArrayDesc TenChunks() {
  ArrayDesc a;
  a.shape = {100};
  a.chunks = {10};
  a.dtype = DType::Make('u', 1);
  return a;
}

// A sink with one array whose chunks were added in `indices` order, and `inline_index` inline.
Status FinishWith(std::initializer_list<uint64_t> indices, std::optional<uint64_t> inline_index) {
  RecordingSink sink;
  Result<ArrayHandle> array = sink.AddArray("0", TenChunks());
  if (!array.ok()) return array.status();
  for (uint64_t i : indices) RETURN_IF_ERROR(sink.AddChunk(*array, i, ChunkRef{0, i * 10, 10, 0}));
  if (inline_index) {
    const std::array<std::byte, 2> bytes{std::byte{1}, std::byte{2}};
    RETURN_IF_ERROR(sink.AddInlineChunk(*array, *inline_index, bytes));
  }
  return sink.Finish();
}

TEST(RecordingSink, FinishAcceptsDistinctChunksInAnyOrder) {
  EXPECT_TRUE(FinishWith({0, 1, 2, 9}, std::nullopt).ok());
  EXPECT_TRUE(FinishWith({9, 0, 5, 2}, std::nullopt).ok());
  EXPECT_TRUE(FinishWith({0, 1, 2}, 5).ok());
}

TEST(RecordingSink, FinishFindsAChunkGivenTwice) {
  for (const Status& s : {FinishWith({0, 1, 1, 2}, std::nullopt),  // in order
                          FinishWith({3, 1, 2, 1}, std::nullopt),  // out of order
                          FinishWith({0, 1, 2}, 2)}) {              // stored and inline
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find("given twice"), std::string::npos) << s.message();
  }
}

TEST(RecordingSink, ChunksOutsideTheGridAreRefused) {
  Status s = FinishWith({10}, std::nullopt);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("outside its grid"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace refzarr
