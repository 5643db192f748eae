#include "store/array_reader.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <charconv>
#include <cstring>
#include <mutex>
#include <system_error>
#include <thread>

#include "store/transcode/transcode.h"

namespace refzarr {

std::optional<uint64_t> BoxElements(const Box& box) {
  uint64_t n = 1;
  for (const IndexRange& r : box) {
    if (__builtin_mul_overflow(n, r.size(), &n)) return std::nullopt;
  }
  return n;
}

Result<Box> ParseBox(std::span<const std::string> ranges) {
  Box box;
  for (const std::string& text : ranges) {
    const size_t colon = text.find(':');
    IndexRange r;
    bool ok = colon != std::string::npos && colon > 0 && colon + 1 < text.size();
    if (ok) {
      const char* end = text.data() + text.size();
      auto [p1, e1] = std::from_chars(text.data(), text.data() + colon, r.begin);
      auto [p2, e2] = std::from_chars(text.data() + colon + 1, end, r.end);
      ok = e1 == std::errc() && p1 == text.data() + colon && e2 == std::errc() && p2 == end;
    }
    if (!ok) {
      return InvalidArgumentError("range '" + text + "' is not BEGIN:END (half-open, e.g. 0:512)");
    }
    if (r.end < r.begin) {
      return InvalidArgumentError("range '" + text + "' ends before it begins");
    }
    box.push_back(r);
  }
  return box;
}

Box ArrayReader::WholeBox() const {
  Box box;
  for (uint64_t n : array().shape) box.push_back({0, n});
  return box;
}

namespace {

// numpy's name of a kind and size, for messages: "uint16", "float32", "S10".
std::string TypeName(char kind, uint32_t size) {
  const std::string bits = std::to_string(size * 8);
  switch (kind) {
    case 'u':
      return "uint" + bits;
    case 'i':
      return "int" + bits;
    case 'f':
      return "float" + bits;
    case 'c':
      return "complex" + bits;
    case 'b':
      return "bool";
    case 'S':
      return "S" + std::to_string(size);
    case 'V':
      return "V" + std::to_string(size);
    case 'O':
      return "variable-length string";
    default:
      return std::string(1, kind) + std::to_string(size);
  }
}

std::string BoxText(const Box& box) {
  std::string s;
  for (const IndexRange& r : box) {
    if (!s.empty()) s += ' ';
    s += std::to_string(r.begin) + ":" + std::to_string(r.end);
  }
  return s.empty() ? "(0-d)" : s;
}

// Copies `words` words of T, reversing the bytes of each.
template <typename T>
void CopySwapped(std::byte* dst, const std::byte* src, uint64_t words) {
  for (uint64_t i = 0; i < words; ++i) {
    T v;
    std::memcpy(&v, src + sizeof(T) * i, sizeof(T));
    if constexpr (sizeof(T) == 2) v = __builtin_bswap16(v);
    if constexpr (sizeof(T) == 4) v = __builtin_bswap32(v);
    if constexpr (sizeof(T) == 8) v = __builtin_bswap64(v);
    std::memcpy(dst + sizeof(T) * i, &v, sizeof(T));
  }
}

// Copies `n` elements of `size` bytes, reversing the bytes of each `word` bytes (the whole
// element, or each half of a complex number) when `swap`.
void CopyElements(std::byte* dst, const std::byte* src, uint64_t n, uint32_t size, uint32_t word,
                  bool swap) {
  const uint64_t bytes = n * size;
  if (!swap || word == 1) {
    std::memcpy(dst, src, bytes);
    return;
  }
  const uint64_t words = bytes / word;
  switch (word) {
    case 2: return CopySwapped<uint16_t>(dst, src, words);
    case 4: return CopySwapped<uint32_t>(dst, src, words);
    case 8: return CopySwapped<uint64_t>(dst, src, words);
    default:
      for (uint64_t i = 0; i < words; ++i) {
        std::reverse_copy(src + word * i, src + word * (i + 1), dst + word * i);
      }
  }
}

class ArrayReaderImpl final : public ArrayReader {
 public:
  // `stored_fill`: one element of the fill value in the dtype's byte order (FillChunk).
  ArrayReaderImpl(std::string path, std::unique_ptr<DecodedChunks> chunks,
                  ArrayReaderOptions options, std::vector<std::byte> stored_fill)
      : path_(std::move(path)),
        chunks_(std::move(chunks)),
        options_(options),
        fill_(stored_fill.size()) {
    const DType& d = array().dtype;
    word_ = d.kind == 'c' ? d.size / 2 : d.size;
    const char native = std::endian::native == std::endian::little ? '<' : '>';
    swap_ = d.byte_order != '|' && d.byte_order != native &&
            (d.kind == 'u' || d.kind == 'i' || d.kind == 'f' || d.kind == 'c');
    if (!fill_.empty()) CopyElements(fill_.data(), stored_fill.data(), 1, d.size, word_, swap_);
  }

  const std::string& path() const override { return path_; }
  const ArrayDesc& array() const override { return chunks_->array(); }

  Status ReadInto(const Box& box, ElementType type, std::span<std::byte> out) const override {
    Status s = Check(box, type, out.size());
    if (!s.ok()) return s.WithContext("read " + path_ + " [" + BoxText(box) + "]");
    if (out.empty()) return OkStatus();
    return ReadChunks(box, out);
  }

 private:
  Status Check(const Box& box, ElementType type, size_t out_bytes) const {
    const ArrayDesc& a = array();
    const DType& d = a.dtype;
    if (d.kind == 'O') {
      return UnsupportedError(
          "the array holds variable-length strings, which have no fixed-size "
          "buffer");
    }
    if (type.kind != d.kind || type.size != d.size) {
      return InvalidArgumentError("the array holds " + TypeName(d.kind, d.size) +
                                  " elements, the buffer " + TypeName(type.kind, type.size));
    }
    if (box.size() != a.shape.size()) {
      return InvalidArgumentError("a box of " + std::to_string(box.size()) +
                                  " ranges for an array of " + std::to_string(a.shape.size()) +
                                  " dimensions" + DimensionList());
    }
    for (size_t i = 0; i < box.size(); ++i) {
      if (a.chunks.size() != a.shape.size() || a.chunks[i] == 0) {
        return CorruptError("the index describes a chunk grid that does not fit the shape");
      }
      if (box[i].begin > box[i].end || box[i].end > a.shape[i]) {
        return InvalidArgumentError(
            "dimension " + DimensionName(i) + ": range " + std::to_string(box[i].begin) + ":" +
            std::to_string(box[i].end) + " is outside the array's 0:" + std::to_string(a.shape[i]));
      }
    }
    const std::optional<uint64_t> n = BoxElements(box);
    uint64_t bytes = 0;
    if (!n || __builtin_mul_overflow(*n, uint64_t{d.size}, &bytes) || bytes != out_bytes) {
      return InvalidArgumentError(
          "a buffer of " + std::to_string(out_bytes / d.size) + " elements for a box of " +
          (n ? std::to_string(*n) : std::string("more than 2^64")) + " elements");
    }
    return OkStatus();
  }

  std::string DimensionName(size_t i) const {
    const auto& names = array().dimension_names;
    std::string s = std::to_string(i);
    if (i < names.size() && !names[i].empty()) s += " (" + names[i] + ")";
    return s;
  }

  std::string DimensionList() const {
    const auto& names = array().dimension_names;
    if (names.empty()) return "";
    std::string s;
    for (const std::string& n : names) s += (s.empty() ? "" : ", ") + n;
    return " (" + s + ")";
  }

  // The chunks the box touches: [first, last] per dimension, visited in C order by a shared
  // counter, each decoded into the worker's own chunk buffer and copied into place.
  Status ReadChunks(const Box& box, std::span<std::byte> out) const {
    const ArrayDesc& a = array();
    const size_t rank = a.shape.size();
    std::vector<uint64_t> first(rank), count(rank);
    uint64_t total = 1;
    for (size_t i = 0; i < rank; ++i) {
      first[i] = box[i].begin / a.chunks[i];
      count[i] = (box[i].end - 1) / a.chunks[i] - first[i] + 1;
      total *= count[i];  // at most the box's elements, which fit
    }
    unsigned threads = options_.threads ? options_.threads : std::thread::hardware_concurrency();
    threads = static_cast<unsigned>(std::clamp<uint64_t>(total, 1, std::max(1u, threads)));

    std::atomic<uint64_t> next{0};
    std::atomic<bool> failed{false};
    std::mutex mu;
    Status first_error;
    auto work = [&] {
      std::vector<std::byte> chunk;
      std::vector<uint64_t> coords(rank);
      for (uint64_t i = next++; i < total && !failed; i = next++) {
        uint64_t rest = i;
        for (size_t d = rank; d-- > 0;) {
          coords[d] = first[d] + rest % count[d];
          rest /= count[d];
        }
        Status s = OneChunk(box, coords, chunk, out);
        if (!s.ok()) {
          std::lock_guard lock(mu);
          if (!failed.exchange(true)) first_error = s.WithContext("read " + path_);
        }
      }
    };
    std::vector<std::jthread> pool;
    for (unsigned t = 1; t < threads; ++t) {
      try {
        pool.emplace_back(work);
      } catch (const std::system_error&) {
        break;  // no more threads to be had: the ones running (and this one) do the rest
      }
    }
    work();
    pool.clear();  // joins
    return first_error;
  }

  // Decodes the chunk at `coords` (or takes the fill value when none is stored) and copies its
  // part inside the box into `out`, one contiguous run of the last dimension at a time.
  Status OneChunk(const Box& box, const std::vector<uint64_t>& coords,
                  std::vector<std::byte>& chunk, std::span<std::byte> out) const {
    const ArrayDesc& a = array();
    const size_t rank = a.shape.size();
    const uint32_t size = a.dtype.size;
    if (chunk.empty()) chunk.resize(a.ChunkBytes());
    ASSIGN_OR_RETURN(bool stored, chunks_->Decode(coords, chunk));

    // The part of the chunk inside the box: lo/hi in array coordinates.
    std::vector<uint64_t> lo(rank), ext(rank);
    for (size_t d = 0; d < rank; ++d) {
      const uint64_t c0 = coords[d] * a.chunks[d];
      lo[d] = std::max(box[d].begin, c0);
      ext[d] = std::min(box[d].end, c0 + a.chunks[d]) - lo[d];
    }
    const uint64_t run = rank ? ext[rank - 1] : 1;  // elements per contiguous copy
    // Position of lo in the chunk and in the box, and each dimension's stride, in elements.
    std::vector<uint64_t> cstride(rank), bstride(rank);
    uint64_t cs = 1, bs = 1;
    for (size_t d = rank; d-- > 0;) {
      cstride[d] = cs;
      bstride[d] = bs;
      cs *= a.chunks[d];
      bs *= box[d].size();
    }
    std::vector<uint64_t> at(rank > 0 ? rank - 1 : 0, 0);  // odometer over the outer dimensions
    while (true) {
      uint64_t src = 0, dst = 0;
      for (size_t d = 0; d < rank; ++d) {
        const uint64_t p = lo[d] + (d + 1 < rank ? at[d] : 0);
        src += (p - coords[d] * a.chunks[d]) * cstride[d];
        dst += (p - box[d].begin) * bstride[d];
      }
      std::byte* to = out.data() + dst * size;
      if (stored) {
        CopyElements(to, chunk.data() + src * size, run, size, word_, swap_);
      } else {
        for (uint64_t e = 0; e < run; ++e) std::memcpy(to + e * size, fill_.data(), size);
      }
      size_t d = at.size();
      while (d > 0 && ++at[d - 1] == ext[d - 1]) at[--d] = 0;
      if (d == 0) break;
    }
    return OkStatus();
  }

  const std::string path_;
  const std::unique_ptr<DecodedChunks> chunks_;
  const ArrayReaderOptions options_;
  std::vector<std::byte> fill_;  // one element, this machine's byte order
  uint32_t word_ = 1;            // bytes reversed together when swapping
  bool swap_ = false;            // stored byte order is not this machine's
};

}  // namespace

Result<std::unique_ptr<ArrayReader>> OpenArrayReader(ZarrView& view, std::string_view path,
                                                     ArrayReaderOptions options) {
  ASSIGN_OR_RETURN(auto chunks, view.OpenDecodedChunks(path));
  return OpenArrayReader(std::move(chunks), std::string(path), options);
}

Result<std::unique_ptr<ArrayReader>> OpenArrayReader(std::unique_ptr<DecodedChunks> chunks,
                                                     std::string path, ArrayReaderOptions options) {
  const ArrayDesc& a = chunks->array();
  std::vector<std::byte> fill;
  if (a.dtype.kind != 'O') {  // variable-length strings are refused by Read
    fill.resize(a.dtype.size);
    Status s = FillChunk(a, fill);
    if (!s.ok()) return s.WithContext("open " + path + ": fill value");
  }
  return std::unique_ptr<ArrayReader>(std::make_unique<ArrayReaderImpl>(
      std::move(path), std::move(chunks), options, std::move(fill)));
}

}  // namespace refzarr
