// ArrayReader: the typed read API. Opens an array of a view by its path and reads any box of it
// into a caller's buffer of the array's element type, decoding every codec the view knows and
// filling chunks that are not stored with the fill value, in parallel over chunks.
//
//   auto reader = refzarr::OpenArrayReader(*view, "a.tif/0/0");           // (t, c, z, y, x)
//   refzarr::Box box = {{0, 1}, {0, 1}, {0, 1}, {100, 612}, {0, 512}};     // half-open ranges
//   std::vector<uint16_t> pixels(refzarr::BoxElements(box));
//   refzarr::Status s = (*reader)->Read(box, std::span(pixels));
#pragma once

#include <complex>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "formats/core/model.h"
#include "formats/core/status.h"
#include "store/zarr_view.h"

namespace refzarr {

/// Element indices [begin, end) along one dimension.
struct IndexRange {
  uint64_t begin = 0;
  uint64_t end = 0;
  uint64_t size() const { return end > begin ? end - begin : 0; }
  friend bool operator==(const IndexRange&, const IndexRange&) = default;
};

/// A box of an array: one IndexRange per dimension, in the array's dimension order (t, c, z, y, x
/// for the levels of an image; an HDF5 dataset's own dimensions).
using Box = std::vector<IndexRange>;

/// Elements in `box` (the product of its range sizes; 1 for the box of a 0-d array); nullopt when
/// the product exceeds 2^64.
std::optional<uint64_t> BoxElements(const Box& box);

/// Parses "t0:t1 c0:c1 ..." style ranges, one "BEGIN:END" per string (half-open, decimal), into a
/// box. kInvalidArgument naming the malformed range.
Result<Box> ParseBox(std::span<const std::string> ranges);

/// What a buffer holds: a numpy dtype kind ('u', 'i', 'f', 'c', 'b', 'S', 'V') and a size in bytes.
struct ElementType {
  char kind = 'u';
  uint32_t size = 1;
  friend bool operator==(const ElementType&, const ElementType&) = default;
};

/// The ElementType of the C++ type T: uint8_t...uint64_t, int8_t...int64_t, float, double, bool,
/// std::complex<float>, std::complex<double>.
template <typename T>
constexpr ElementType ElementTypeOf() {
  if constexpr (std::is_same_v<T, bool>) {
    return {'b', 1};
  } else if constexpr (std::is_integral_v<T>) {
    return {std::is_signed_v<T> ? 'i' : 'u', sizeof(T)};
  } else if constexpr (std::is_floating_point_v<T>) {
    static_assert(sizeof(T) == 4 || sizeof(T) == 8, "float and double only");
    return {'f', sizeof(T)};
  } else if constexpr (std::is_same_v<T, std::complex<float>> ||
                       std::is_same_v<T, std::complex<double>>) {
    return {'c', sizeof(T)};
  } else {
    static_assert(sizeof(T) == 0, "no dtype for this element type; use ReadInto with bytes");
    return {};
  }
}

struct ArrayReaderOptions {
  /// Most threads one Read decodes chunks on, the calling thread included (never more than the
  /// chunks it touches); 0: std::thread::hardware_concurrency().
  unsigned threads = 0;
};

/// One array of a view, read as numbers. Thread-safe: any number of threads may Read at once,
/// each Read on at most `threads` threads of its own. It reads the state of the index it was
/// opened in (DecodedChunks); sources are checked on every read, so a changed source fails with
/// kStale rather than being read.
class ArrayReader {
 public:
  virtual ~ArrayReader() = default;

  /// The array's path in the view ("a.tif/0/0").
  virtual const std::string& path() const = 0;
  /// The array as indexed: shape, chunks, dtype (with its stored byte order), fill value,
  /// dimension names.
  virtual const ArrayDesc& array() const = 0;
  /// The box of the whole array.
  Box WholeBox() const;

  /// Reads `box` (one range per dimension, inside the shape) into `out`, BoxElements(box)
  /// elements in C order over the box, in this machine's byte order. T must be the array's
  /// element type (ElementTypeOf). Elements of chunks the index does not store are the fill value.
  /// Errors name the array: kInvalidArgument for a box of the wrong rank or outside the array, a
  /// buffer of another type or size; the chunk's error (kStale, kIo, kCorrupt, kUnsupported) when
  /// one cannot be read, after which `out` holds an unspecified mix.
  template <typename T>
  Status Read(const Box& box, std::span<T> out) const {
    return ReadInto(box, ElementTypeOf<T>(), std::as_writable_bytes(out));
  }

  /// Read, for any buffer: `type` must be the array's kind and element size (for 'S' and 'V'
  /// dtypes the elements come as stored; numbers and complex numbers in this machine's byte
  /// order). kUnsupported for variable-length strings (dtype 'O').
  virtual Status ReadInto(const Box& box, ElementType type, std::span<std::byte> out) const = 0;
};

/// Opens the array at `path` (its key prefix in `view`, "a.tif/0/0") for reading. kNotFound naming
/// the path when `view` has no array there; kStale when its sources changed. The reader keeps
/// the index state it reads alive and may outlive `view`; the view's decoders must outlive it.
Result<std::unique_ptr<ArrayReader>> OpenArrayReader(ZarrView& view, std::string_view path,
                                                     ArrayReaderOptions options = {});

/// A reader over any source of decoded chunks: a view's (above), or a scan's before its file is
/// indexed (the indexer's display windows). `path` names the array in messages. With
/// `options.threads` other than 1, `chunks->Decode` is called from several threads at once.
Result<std::unique_ptr<ArrayReader>> OpenArrayReader(std::unique_ptr<DecodedChunks> chunks,
                                                     std::string path, ArrayReaderOptions options = {});

}  // namespace refzarr
