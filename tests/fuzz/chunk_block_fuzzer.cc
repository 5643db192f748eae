// Fuzz target: the chunk-block decoder (store/chunk_block.h), which reads the packed chunk
// references of an index (a hostile or damaged .refs.db). Whatever decodes must survive a round
// trip: encoding the entries again and decoding that gives the same entries.
// Input: the block bytes. Seeds: tests/fuzz/chunk_block/ (make_seeds.py writes the encoding by
// hand, following chunk_block.cc).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "store/chunk_block.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace refzarr;
  Result<std::vector<BlockEntry>> entries = DecodeChunkBlock(fuzz::Bytes(data, size));
  if (!entries.ok()) return 0;
  // A decoded block has checksums on all its present entries or on none: it encodes again.
  Result<std::vector<std::byte>> again = EncodeChunkBlock(*entries);
  FUZZ_CHECK(again.ok(), "what was decoded encodes again");
  Result<std::vector<BlockEntry>> decoded = DecodeChunkBlock(*again);
  FUZZ_CHECK(decoded.ok(), "what was decoded encodes to a valid block");
  // Trailing missing entries are not encoded.
  std::vector<BlockEntry> expected = *entries;
  while (!expected.empty() && !expected.back().present) expected.pop_back();
  FUZZ_CHECK(decoded->size() == expected.size(), "the round trip keeps the entry count");
  for (size_t i = 0; i < expected.size(); ++i) {
    FUZZ_CHECK((*decoded)[i].present == expected[i].present, "the round trip keeps each entry");
    FUZZ_CHECK(!expected[i].present || (*decoded)[i].ref == expected[i].ref,
               "the round trip keeps each reference");
    FUZZ_CHECK(!expected[i].present || (*decoded)[i].crc32c == expected[i].crc32c,
               "the round trip keeps each checksum");
  }
  return 0;
}
