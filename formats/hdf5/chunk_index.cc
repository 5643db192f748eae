#include "formats/hdf5/chunk_index.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <set>
#include <unordered_set>
#include <string>
#include <utility>

namespace refzarr {
namespace {

// Bounds on what a well-formed file can ask for; they keep corrupt files from driving huge reads,
// deep recursion or cycles.
constexpr uint64_t kMaxMetadataBlock = 256ull << 20;
constexpr int kMaxTreeDepth = 64;
constexpr int kMaxHeaderBlocks = 4096;

// Little-endian decoder over a buffer with a sticky failure flag: reads past the end yield 0 and mark
// the cursor bad, so a structure is decoded straight through and checked once.
class Cursor {
 public:
  explicit Cursor(std::span<const std::byte> bytes) : bytes_(bytes) {}

  uint64_t U(size_t n) {
    if (n > 8 || pos_ + n > bytes_.size()) {
      bad_ = true;
      pos_ = bytes_.size();
      return 0;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(bytes_[pos_ + i]) << (8 * i);
    pos_ += n;
    return v;
  }
  void Skip(uint64_t n) {
    if (n > bytes_.size() - pos_) {
      bad_ = true;
      pos_ = bytes_.size();
    } else {
      pos_ += n;
    }
  }
  bool Signature(const char* sig) {
    if (pos_ + 4 > bytes_.size() || std::memcmp(bytes_.data() + pos_, sig, 4) != 0) return false;
    pos_ += 4;
    return true;
  }
  std::span<const std::byte> Take(uint64_t n) {
    if (n > bytes_.size() - pos_) {
      bad_ = true;
      pos_ = bytes_.size();
      return {};
    }
    auto s = bytes_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  size_t pos() const { return pos_; }
  size_t remaining() const { return bytes_.size() - pos_; }
  bool bad() const { return bad_; }

 private:
  std::span<const std::byte> bytes_;
  size_t pos_ = 0;
  bool bad_ = false;
};

// Bob Jenkins' lookup3 hash ("hashlittle", initial value 0), which the file format uses as the
// checksum of every metadata block newer than the version 1 B-tree.
uint32_t Lookup3(std::span<const std::byte> data) {
  auto rot = [](uint32_t x, int k) { return (x << k) | (x >> (32 - k)); };
  size_t length = data.size();
  uint32_t a = 0xdeadbeef + static_cast<uint32_t>(length), b = a, c = a;
  const auto* k = reinterpret_cast<const uint8_t*>(data.data());
  auto word = [&](size_t at) {
    return uint32_t{k[at]} | uint32_t{k[at + 1]} << 8 | uint32_t{k[at + 2]} << 16 | uint32_t{k[at + 3]} << 24;
  };
  while (length > 12) {
    a += word(0);
    b += word(4);
    c += word(8);
    a -= c; a ^= rot(c, 4);  c += b;
    b -= a; b ^= rot(a, 6);  a += c;
    c -= b; c ^= rot(b, 8);  b += a;
    a -= c; a ^= rot(c, 16); c += b;
    b -= a; b ^= rot(a, 19); a += c;
    c -= b; c ^= rot(b, 4);  b += a;
    length -= 12;
    k += 12;
  }
  if (length == 0) return c;
  // The last 1..12 bytes, zero-padded.
  uint8_t tail[12] = {};
  std::memcpy(tail, k, length);
  auto tail_word = [&](size_t at) {
    return uint32_t{tail[at]} | uint32_t{tail[at + 1]} << 8 | uint32_t{tail[at + 2]} << 16 | uint32_t{tail[at + 3]} << 24;
  };
  a += tail_word(0);
  b += tail_word(4);
  c += tail_word(8);
  c ^= b; c -= rot(b, 14);
  a ^= c; a -= rot(c, 11);
  b ^= a; b -= rot(a, 25);
  c ^= b; c -= rot(b, 16);
  a ^= c; a -= rot(c, 4);
  b ^= a; b -= rot(a, 14);
  c ^= b; c -= rot(b, 24);
  return c;
}

std::string Hex(uint64_t v);

// `block` ends with the little-endian lookup3 checksum of the bytes before it.
Status VerifyChecksum(std::span<const std::byte> block, const char* what, uint64_t address) {
  if (block.size() < 4) return CorruptError(std::string(what) + " " + Hex(address) + ": truncated");
  const auto body = block.first(block.size() - 4);
  uint32_t stored = 0;
  for (int i = 3; i >= 0; --i) stored = (stored << 8) | static_cast<uint8_t>(block[body.size() + i]);
  if (Lookup3(body) != stored) {
    return CorruptError(std::string(what) + " " + Hex(address) + ": metadata checksum mismatch");
  }
  return OkStatus();
}

std::string Hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// Everything a walk needs: the source, the superblock facts, and the file size for bounds checks.
class Reader {
 public:
  Reader(ByteSource& source, const Hdf5FileInfo& info) : source_(source), info_(info) {}

  Status Init() {
    ASSIGN_OR_RETURN(file_size_, source_.Size());
    return OkStatus();
  }

  const Hdf5FileInfo& info() const { return info_; }
  uint64_t file_size() const { return file_size_; }
  int O() const { return info_.offset_size; }
  int L() const { return info_.length_size; }

  Result<uint64_t> Absolute(uint64_t relative, const char* what) const {
    if (IsUndefinedAddress(info_, relative) || relative > file_size_ ||
        info_.base_address + relative > file_size_) {
      return CorruptError(std::string(what) + " address " + Hex(relative) + " is outside the file (" +
                          std::to_string(file_size_) + " bytes)");
    }
    return info_.base_address + relative;
  }

  // Reads `length` bytes at relative address `relative`; `what` names the structure for messages.
  Result<std::vector<std::byte>> Read(uint64_t relative, uint64_t length, const char* what) const {
    ASSIGN_OR_RETURN(uint64_t abs, Absolute(relative, what));
    if (length > kMaxMetadataBlock || length > file_size_ - abs) {
      return CorruptError(std::string(what) + " at " + Hex(relative) + ": " + std::to_string(length) +
                          " bytes run past the end of the file");
    }
    std::vector<std::byte> buf(length);
    if (length > 0) RETURN_IF_ERROR(source_.ReadInto({abs, length}, buf));
    return buf;
  }

  // Like Read but shortens the read at the end of the file (for variable-size prefixes).
  Result<std::vector<std::byte>> ReadUpTo(uint64_t relative, uint64_t length, const char* what) const {
    ASSIGN_OR_RETURN(uint64_t abs, Absolute(relative, what));
    return Read(relative, std::min(length, file_size_ - abs), what);
  }

 private:
  ByteSource& source_;
  Hdf5FileInfo info_;
  uint64_t file_size_ = 0;
};

// ---- object headers ------------------------------------------------------------------------------

constexpr uint16_t kMsgLayout = 0x0008;
constexpr uint16_t kMsgFilterPipeline = 0x000B;
constexpr uint16_t kMsgContinuation = 0x0010;

using MessageVisitor = std::function<Status(uint16_t type, std::span<const std::byte> data)>;

// Walks every message of the object header at `address`, following continuation messages.
Status WalkObjectHeader(const Reader& r, uint64_t address, const MessageVisitor& visit) {
  ASSIGN_OR_RETURN(auto prefix, r.ReadUpTo(address, 4 + 1 + 1 + 16 + 4 + 8, "object header"));
  Cursor c(prefix);
  bool v2 = c.Signature("OHDR");
  struct Block {
    uint64_t address;
    uint64_t length;
    bool has_signature;
  };
  std::vector<Block> pending;
  bool creation_order = false;
  if (v2) {
    int version = static_cast<int>(c.U(1));
    int flags = static_cast<int>(c.U(1));
    if (version != 2) return CorruptError("object header " + Hex(address) + ": version " +
                                          std::to_string(version) + " after OHDR signature");
    if (flags & 0x20) c.Skip(16);
    if (flags & 0x10) c.Skip(4);
    creation_order = flags & 0x04;
    uint64_t chunk0 = c.U(size_t{1} << (flags & 3));
    if (c.bad()) return CorruptError("object header " + Hex(address) + ": truncated prefix");
    pending.push_back({address + c.pos(), chunk0, false});
  } else {
    int version = static_cast<int>(c.U(1));
    c.Skip(1);
    c.U(2);  // message count: the blocks are parsed to their end instead
    c.U(4);
    uint64_t size = c.U(4);
    if (c.bad() || version != 1) {
      return CorruptError("object header " + Hex(address) + ": neither OHDR nor version 1");
    }
    pending.push_back({address + 16, size, false});
  }
  std::set<uint64_t> seen;
  for (size_t b = 0; b < pending.size(); ++b) {
    if (b >= kMaxHeaderBlocks) return CorruptError("object header " + Hex(address) + ": too many continuation blocks");
    Block block = pending[b];
    if (!seen.insert(block.address).second) {
      return CorruptError("object header " + Hex(address) + ": continuation cycle");
    }
    ASSIGN_OR_RETURN(auto bytes, r.Read(block.address, block.length, "object header block"));
    std::span<const std::byte> body(bytes);
    if (block.has_signature) {
      if (body.size() < 8 || std::memcmp(body.data(), "OCHK", 4) != 0) {
        return CorruptError("object header continuation " + Hex(block.address) + ": no OCHK signature");
      }
      body = body.subspan(4, body.size() - 8);
    }
    Cursor m(body);
    const size_t header_size = v2 ? (4 + (creation_order ? 2 : 0)) : 8;
    while (m.remaining() >= header_size) {
      uint16_t type;
      uint64_t size;
      if (v2) {
        type = static_cast<uint16_t>(m.U(1));
        size = m.U(2);
        m.U(1);
        if (creation_order) m.U(2);
      } else {
        type = static_cast<uint16_t>(m.U(2));
        size = m.U(2);
        m.U(1);
        m.Skip(3);
      }
      auto data = m.Take(size);
      if (m.bad()) return CorruptError("object header " + Hex(address) + ": message of " +
                                       std::to_string(size) + " bytes overruns its block");
      if (type == kMsgContinuation) {
        Cursor cc(data);
        uint64_t off = cc.U(r.O());
        uint64_t len = cc.U(r.L());
        if (cc.bad()) return CorruptError("object header " + Hex(address) + ": short continuation message");
        pending.push_back({off, len, v2});
      } else {
        RETURN_IF_ERROR(visit(type, data));
      }
    }
  }
  return OkStatus();
}

Status DecodeLayout(const Reader& r, std::span<const std::byte> data, Hdf5DataLayout& out) {
  Cursor c(data);
  out.version = static_cast<int>(c.U(1));
  auto bad = [&](const std::string& why) {
    return CorruptError("data layout message (version " + std::to_string(out.version) + "): " + why);
  };
  auto set_chunk_dims = [&](const std::vector<uint64_t>& dims) -> Status {
    if (dims.size() < 2) return bad("chunk dimensionality " + std::to_string(dims.size()));
    out.chunk_dims.assign(dims.begin(), dims.end() - 1);
    out.element_size = static_cast<uint32_t>(dims.back());
    for (uint64_t d : out.chunk_dims) {
      if (d == 0) return bad("zero chunk dimension");
    }
    return OkStatus();
  };
  if (out.version == 1 || out.version == 2) {
    int ndims = static_cast<int>(c.U(1));
    out.layout_class = static_cast<Hdf5DataLayout::Class>(c.U(1));
    c.Skip(5);
    if (out.layout_class != Hdf5DataLayout::kCompact) out.address = c.U(r.O());
    std::vector<uint64_t> dims(ndims);
    for (auto& d : dims) d = c.U(4);
    if (out.layout_class == Hdf5DataLayout::kCompact) {
      uint64_t n = c.U(4);
      auto bytes = c.Take(n);
      out.compact_data.assign(bytes.begin(), bytes.end());
    } else if (out.layout_class == Hdf5DataLayout::kChunked) {
      RETURN_IF_ERROR(set_chunk_dims(dims));
      out.index_type = Hdf5ChunkIndexType::kBTreeV1;
      out.index_address = out.address;
    }
    if (c.bad()) return bad("truncated");
    return OkStatus();
  }
  if (out.version != 3 && out.version != 4) return bad("unknown version");
  out.layout_class = static_cast<Hdf5DataLayout::Class>(c.U(1));
  switch (out.layout_class) {
    case Hdf5DataLayout::kCompact: {
      uint64_t n = c.U(2);
      auto bytes = c.Take(n);
      out.compact_data.assign(bytes.begin(), bytes.end());
      break;
    }
    case Hdf5DataLayout::kContiguous:
      out.address = c.U(r.O());
      out.size = c.U(r.L());
      break;
    case Hdf5DataLayout::kChunked: {
      if (out.version == 3) {
        int ndims = static_cast<int>(c.U(1));
        out.index_address = c.U(r.O());
        std::vector<uint64_t> dims(ndims);
        for (auto& d : dims) d = c.U(4);
        if (c.bad()) return bad("truncated");
        RETURN_IF_ERROR(set_chunk_dims(dims));
        out.index_type = Hdf5ChunkIndexType::kBTreeV1;
        break;
      }
      int flags = static_cast<int>(c.U(1));
      int ndims = static_cast<int>(c.U(1));
      int enc = static_cast<int>(c.U(1));
      if (enc < 1 || enc > 8) return bad("dimension size length " + std::to_string(enc));
      std::vector<uint64_t> dims(ndims);
      for (auto& d : dims) d = c.U(enc);
      if (c.bad()) return bad("truncated");
      RETURN_IF_ERROR(set_chunk_dims(dims));
      out.dont_filter_partial_edge_chunks = flags & 0x01;
      int type = static_cast<int>(c.U(1));
      switch (type) {
        case 1:
          out.index_type = Hdf5ChunkIndexType::kSingleChunk;
          if (flags & 0x02) {
            out.single_chunk_filtered = true;
            out.single_chunk_size = c.U(r.L());
            out.single_chunk_filter_mask = static_cast<uint32_t>(c.U(4));
          }
          break;
        case 2: out.index_type = Hdf5ChunkIndexType::kImplicit; break;
        case 3: out.index_type = Hdf5ChunkIndexType::kFixedArray; c.Skip(1); break;
        case 4: out.index_type = Hdf5ChunkIndexType::kExtensibleArray; c.Skip(5); break;
        case 5: out.index_type = Hdf5ChunkIndexType::kBTreeV2; c.Skip(6); break;
        default: return bad("unknown chunk index type " + std::to_string(type));
      }
      out.index_address = c.U(r.O());
      break;
    }
    case Hdf5DataLayout::kVirtual:
      out.address = c.U(r.O());
      c.U(4);
      break;
    default:
      return bad("unknown layout class " + std::to_string(static_cast<int>(out.layout_class)));
  }
  if (c.bad()) return bad("truncated");
  return OkStatus();
}

// ---- chunk index walks ---------------------------------------------------------------------------

class ChunkWalker {
 public:
  ChunkWalker(const Reader& r, const Hdf5DataLayout& layout, const std::vector<uint64_t>& dims,
              const std::vector<uint64_t>& max_dims,
              const std::function<Status(const Hdf5StoredChunk&)>& visit)
      : r_(r), layout_(layout), dims_(dims), max_dims_(max_dims), visit_(visit) {}

  Status Run() {
    const size_t rank = layout_.chunk_dims.size();
    if (dims_.size() != rank || max_dims_.size() != rank) {
      return CorruptError("layout has " + std::to_string(rank) + " chunk dimensions, dataspace " +
                          std::to_string(dims_.size()));
    }
    chunk_bytes_ = layout_.element_size;
    grid_.resize(rank);
    max_grid_.resize(rank);
    for (size_t i = 0; i < rank; ++i) {
      if (layout_.chunk_dims[i] == 0) return CorruptError("zero chunk dimension");
      if (__builtin_mul_overflow(chunk_bytes_, layout_.chunk_dims[i], &chunk_bytes_)) {
        return CorruptError("chunk dimensions overflow");
      }
      auto ceil_div = [](uint64_t a, uint64_t b) { return a / b + (a % b != 0); };
      grid_[i] = ceil_div(dims_[i], layout_.chunk_dims[i]);
      max_grid_[i] = max_dims_[i] == UINT64_MAX ? UINT64_MAX : ceil_div(max_dims_[i], layout_.chunk_dims[i]);
      if (max_dims_[i] < dims_[i]) {
        return CorruptError("dimension " + std::to_string(i) + " of " + std::to_string(dims_[i]) +
                            " elements exceeds its maximum, " + std::to_string(max_dims_[i]));
      }
    }
    chunk_.coords.assign(rank, 0);
    // An empty extent holds no chunk (and a grid dimension of 0 cannot place one: the index's
    // element counts are the file's word, not the grid's).
    for (uint64_t g : grid_) {
      if (g == 0) return OkStatus();
    }
    // Never written (late allocation, no data yet): no chunks.
    if (IsUndefinedAddress(r_.info(), layout_.index_address)) return OkStatus();
    switch (layout_.index_type) {
      case Hdf5ChunkIndexType::kBTreeV1: return BTreeV1(layout_.index_address, -1, 0);
      case Hdf5ChunkIndexType::kSingleChunk: return Single();
      case Hdf5ChunkIndexType::kImplicit: return Implicit();
      case Hdf5ChunkIndexType::kFixedArray: return FixedArray();
      case Hdf5ChunkIndexType::kExtensibleArray: return ExtensibleArray();
      case Hdf5ChunkIndexType::kBTreeV2: return BTreeV2();
    }
    return UnsupportedError("unknown chunk index");
  }

 private:
  Status Emit(uint64_t relative_address, uint64_t size, uint32_t mask) {
    if (IsUndefinedAddress(r_.info(), relative_address)) return OkStatus();
    for (size_t i = 0; i < grid_.size(); ++i) {
      // Chunks beyond the current extent (left after shrinking, or preallocated) hold no data.
      if (chunk_.coords[i] >= grid_[i]) return OkStatus();
    }
    // A chunk past the end of the file is the caller's to judge (it names the chunk and refuses
    // its dataset); only an address that cannot be an offset at all is the index's damage.
    if (relative_address > UINT64_MAX - r_.info().base_address) {
      return CorruptError("chunk address " + Hex(relative_address) + " overflows");
    }
    chunk_.address = r_.info().base_address + relative_address;
    chunk_.size = size;
    chunk_.filter_mask = mask;
    chunk_.unfiltered_edge = false;
    if (layout_.dont_filter_partial_edge_chunks && layout_.filter_count > 0) {
      for (size_t i = 0; i < grid_.size(); ++i) {
        if ((chunk_.coords[i] + 1) * layout_.chunk_dims[i] > dims_[i]) chunk_.unfiltered_edge = true;
      }
    }
    return visit_(chunk_);
  }

  // An index block reached twice (a cycle, or blocks shared between parents) would be walked
  // again and again: in a valid index every block has one parent.
  Status VisitOnce(uint64_t address, const char* what) {
    if (!visited_.insert(address).second) {
      return CorruptError(std::string(what) + " " + Hex(address) + " is reached twice");
    }
    return OkStatus();
  }

  // Sets chunk_.coords from a linear index over `grid` (C order); the dimension `first` (if any) is
  // the slowest one, the rest follow in order (the extensible array's "swizzled" order).
  void SetCoords(uint64_t linear, const std::vector<uint64_t>& grid, int first) {
    for (int i = static_cast<int>(grid.size()) - 1; i >= 0; --i) {
      if (i == first) continue;
      chunk_.coords[i] = linear % grid[i];
      linear /= grid[i];
    }
    if (first >= 0) chunk_.coords[first] = linear;
  }

  Status BTreeV1(uint64_t address, int expected_level, int depth) {
    if (depth > kMaxTreeDepth) return CorruptError("v1 B-tree deeper than " + std::to_string(kMaxTreeDepth));
    RETURN_IF_ERROR(VisitOnce(address, "v1 B-tree node"));
    const int O = r_.O();
    const size_t ndims = layout_.chunk_dims.size() + 1;
    const uint64_t key_size = 8 + 8 * ndims;
    ASSIGN_OR_RETURN(auto head, r_.Read(address, 8 + 2 * O, "v1 B-tree node"));
    Cursor h(head);
    if (!h.Signature("TREE")) return CorruptError("v1 B-tree node " + Hex(address) + ": no TREE signature");
    int type = static_cast<int>(h.U(1));
    int level = static_cast<int>(h.U(1));
    uint64_t entries = h.U(2);
    if (type != 1) return CorruptError("v1 B-tree node " + Hex(address) + ": type " + std::to_string(type) + ", not raw data chunks");
    if (expected_level >= 0 && level != expected_level) {
      return CorruptError("v1 B-tree node " + Hex(address) + ": level " + std::to_string(level) +
                          ", expected " + std::to_string(expected_level));
    }
    ASSIGN_OR_RETURN(auto body, r_.Read(address + 8 + 2 * O, entries * (key_size + O) + key_size,
                                        "v1 B-tree node entries"));
    Cursor c(body);
    for (uint64_t i = 0; i < entries; ++i) {
      uint32_t size = static_cast<uint32_t>(c.U(4));
      uint32_t mask = static_cast<uint32_t>(c.U(4));
      for (size_t d = 0; d + 1 < ndims; ++d) chunk_.coords[d] = c.U(8) / layout_.chunk_dims[d];
      c.U(8);
      uint64_t child = c.U(O);
      if (c.bad()) return CorruptError("v1 B-tree node " + Hex(address) + ": truncated");
      if (level == 0) {
        RETURN_IF_ERROR(Emit(child, size, mask));
      } else {
        RETURN_IF_ERROR(BTreeV1(child, level - 1, depth + 1));
      }
    }
    return OkStatus();
  }

  Status Single() {
    if (layout_.single_chunk_filtered) {
      return Emit(layout_.index_address, layout_.single_chunk_size, layout_.single_chunk_filter_mask);
    }
    return Emit(layout_.index_address, chunk_bytes_, 0);
  }

  Status Implicit() {
    uint64_t n = 1;
    for (uint64_t g : max_grid_) {
      if (g == UINT64_MAX) return CorruptError("implicit chunk index on an unlimited dimension");
      if (__builtin_mul_overflow(n, g, &n)) return CorruptError("implicit chunk index: the chunk count overflows");
    }
    if (IsUndefinedAddress(r_.info(), layout_.index_address)) return OkStatus();
    // Every chunk of the grid is allocated, one after the other: they must all lie in the file
    // (which also bounds the walk).
    uint64_t bytes = 0;
    ASSIGN_OR_RETURN(const uint64_t first, r_.Absolute(layout_.index_address, "implicit chunk index"));
    if (__builtin_mul_overflow(n, chunk_bytes_, &bytes) || bytes > r_.file_size() - first) {
      return CorruptError("implicit chunk index: " + std::to_string(n) + " chunks of " + std::to_string(chunk_bytes_) +
                          " bytes at " + Hex(layout_.index_address) + " run past the end of the file (" +
                          std::to_string(r_.file_size()) + " bytes)");
    }
    for (uint64_t i = 0; i < n; ++i) {
      SetCoords(i, max_grid_, -1);
      RETURN_IF_ERROR(Emit(layout_.index_address + i * chunk_bytes_, chunk_bytes_, 0));
    }
    return OkStatus();
  }

  // One element of a fixed or extensible array: address, and for filtered chunks size + mask.
  Status Element(Cursor& c, int client, uint64_t entry_size) {
    const int O = r_.O();
    uint64_t address = c.U(O);
    if (client == 0) {
      if (c.bad()) return CorruptError("array element truncated");
      return Emit(address, chunk_bytes_, 0);
    }
    uint64_t size = c.U(entry_size - O - 4);
    uint32_t mask = static_cast<uint32_t>(c.U(4));
    if (c.bad()) return CorruptError("array element truncated");
    return Emit(address, size, mask);
  }

  Status CheckEntrySize(int client, uint64_t entry_size, const char* what) {
    const int O = r_.O();
    if ((client == 0 && entry_size != static_cast<uint64_t>(O)) ||
        (client == 1 && (entry_size <= static_cast<uint64_t>(O) + 4 || entry_size > static_cast<uint64_t>(O) + 12)) ||
        client > 1) {
      return CorruptError(std::string(what) + ": client " + std::to_string(client) + " with element size " +
                          std::to_string(entry_size));
    }
    return OkStatus();
  }

  Status FixedArray() {
    const int O = r_.O();
    ASSIGN_OR_RETURN(auto hb, r_.Read(layout_.index_address, 4 + 4 + r_.L() + O + 4, "fixed array header"));
    Cursor h(hb);
    if (!h.Signature("FAHD")) return CorruptError("fixed array header: no FAHD signature");
    RETURN_IF_ERROR(VerifyChecksum(hb, "fixed array header", layout_.index_address));
    int version = static_cast<int>(h.U(1));
    int client = static_cast<int>(h.U(1));
    uint64_t entry_size = h.U(1);
    int page_bits = static_cast<int>(h.U(1));
    uint64_t nelmts = h.U(r_.L());
    uint64_t dblock = h.U(O);
    if (version != 0) return UnsupportedError("fixed array header version " + std::to_string(version));
    RETURN_IF_ERROR(CheckEntrySize(client, entry_size, "fixed array"));
    if (page_bits >= 32) return CorruptError("fixed array page bits " + std::to_string(page_bits));
    for (uint64_t g : max_grid_) {
      if (g == UINT64_MAX) return CorruptError("fixed array chunk index on an unlimited dimension");
    }
    if (IsUndefinedAddress(r_.info(), dblock)) return OkStatus();
    const uint64_t page_n = uint64_t{1} << page_bits;
    const uint64_t prefix = 4 + 1 + 1 + O;
    if (nelmts <= page_n) {
      ASSIGN_OR_RETURN(auto db, r_.Read(dblock, prefix + nelmts * entry_size + 4, "fixed array data block"));
      Cursor c(db);
      if (!c.Signature("FADB")) return CorruptError("fixed array data block: no FADB signature");
      RETURN_IF_ERROR(VerifyChecksum(db, "fixed array data block", dblock));
      c.Skip(prefix - 4);
      for (uint64_t i = 0; i < nelmts; ++i) {
        SetCoords(i, max_grid_, -1);
        RETURN_IF_ERROR(Element(c, client, entry_size));
      }
      return OkStatus();
    }
    const uint64_t npages = (nelmts + page_n - 1) / page_n;
    const uint64_t bitmap_size = (npages + 7) / 8;
    ASSIGN_OR_RETURN(auto db, r_.Read(dblock, prefix + bitmap_size + 4, "fixed array data block"));
    Cursor c(db);
    if (!c.Signature("FADB")) return CorruptError("fixed array data block: no FADB signature");
    RETURN_IF_ERROR(VerifyChecksum(db, "fixed array data block", dblock));
    c.Skip(prefix - 4);
    auto bitmap = c.Take(bitmap_size);
    uint64_t page_address = dblock + prefix + bitmap_size + 4;
    for (uint64_t p = 0; p < npages; ++p) {
      const uint64_t count = std::min(page_n, nelmts - p * page_n);
      const bool initialised = (static_cast<uint8_t>(bitmap[p / 8]) >> (7 - p % 8)) & 1;
      if (initialised) {
        ASSIGN_OR_RETURN(auto page, r_.Read(page_address, count * entry_size + 4, "fixed array page"));
        RETURN_IF_ERROR(VerifyChecksum(page, "fixed array page", page_address));
        Cursor pc(page);
        for (uint64_t i = 0; i < count; ++i) {
          SetCoords(p * page_n + i, max_grid_, -1);
          RETURN_IF_ERROR(Element(pc, client, entry_size));
        }
      }
      page_address += count * entry_size + 4;
    }
    return OkStatus();
  }

  // Reads one extensible-array data block holding `count` elements starting at global index `start`.
  Status EaDataBlock(uint64_t address, uint64_t start, uint64_t count, int client, uint64_t entry_size,
                     uint64_t page_n, int off_size, std::span<const std::byte> page_bitmap,
                     uint64_t bitmap_bit) {
    const int O = r_.O();
    RETURN_IF_ERROR(VisitOnce(address, "extensible array data block"));
    const uint64_t prefix = 4 + 1 + 1 + O + off_size;
    auto element = [&](Cursor& c, uint64_t idx) -> Status {
      SetCoords(idx, swizzled_grid_, unlimited_);
      return Element(c, client, entry_size);
    };
    if (count <= page_n) {
      ASSIGN_OR_RETURN(auto db, r_.Read(address, prefix + count * entry_size + 4, "extensible array data block"));
      Cursor c(db);
      if (!c.Signature("EADB")) return CorruptError("extensible array data block " + Hex(address) + ": no EADB signature");
      RETURN_IF_ERROR(VerifyChecksum(db, "extensible array data block", address));
      c.Skip(prefix - 4);
      for (uint64_t i = 0; i < count && start + i < max_index_set_; ++i) RETURN_IF_ERROR(element(c, start + i));
      return OkStatus();
    }
    ASSIGN_OR_RETURN(auto db, r_.Read(address, prefix + 4, "extensible array data block"));
    Cursor sig(db);
    if (!sig.Signature("EADB")) return CorruptError("extensible array data block " + Hex(address) + ": no EADB signature");
    RETURN_IF_ERROR(VerifyChecksum(db, "extensible array data block", address));
    const uint64_t npages = count / page_n;
    uint64_t page_address = address + prefix + 4;
    for (uint64_t p = 0; p < npages; ++p, page_address += page_n * entry_size + 4) {
      const uint64_t bit = bitmap_bit + p;
      if (bit / 8 >= page_bitmap.size()) return CorruptError("extensible array page bitmap too short");
      if (!((static_cast<uint8_t>(page_bitmap[bit / 8]) >> (7 - bit % 8)) & 1)) continue;
      if (start + p * page_n >= max_index_set_) break;
      ASSIGN_OR_RETURN(auto page, r_.Read(page_address, page_n * entry_size + 4, "extensible array page"));
      RETURN_IF_ERROR(VerifyChecksum(page, "extensible array page", page_address));
      Cursor c(page);
      for (uint64_t i = 0; i < page_n && start + p * page_n + i < max_index_set_; ++i) {
        RETURN_IF_ERROR(element(c, start + p * page_n + i));
      }
    }
    return OkStatus();
  }

  static int Log2(uint64_t v) {
    int r = -1;
    while (v) {
      v >>= 1;
      ++r;
    }
    return r;
  }

  Status ExtensibleArray() {
    const int O = r_.O();
    const int L = r_.L();
    unlimited_ = -1;
    for (size_t i = 0; i < max_grid_.size(); ++i) {
      if (max_grid_[i] == UINT64_MAX) {
        if (unlimited_ >= 0) return CorruptError("extensible array index with two unlimited dimensions");
        unlimited_ = static_cast<int>(i);
      }
    }
    if (unlimited_ < 0) return CorruptError("extensible array index without an unlimited dimension");
    swizzled_grid_ = max_grid_;
    ASSIGN_OR_RETURN(auto hb, r_.Read(layout_.index_address, 4 + 8 + 6 * L + O + 4, "extensible array header"));
    Cursor h(hb);
    if (!h.Signature("EAHD")) return CorruptError("extensible array header: no EAHD signature");
    RETURN_IF_ERROR(VerifyChecksum(hb, "extensible array header", layout_.index_address));
    int version = static_cast<int>(h.U(1));
    int client = static_cast<int>(h.U(1));
    uint64_t entry_size = h.U(1);
    int max_nelmts_bits = static_cast<int>(h.U(1));
    uint64_t idx_blk_elmts = h.U(1);
    uint64_t dblk_min_elmts = h.U(1);
    uint64_t sblk_min_ptrs = h.U(1);
    int page_bits = static_cast<int>(h.U(1));
    h.Skip(4 * L);
    max_index_set_ = h.U(L);
    h.U(L);
    uint64_t iblock = h.U(O);
    if (h.bad()) return CorruptError("extensible array header truncated");
    if (version != 0) return UnsupportedError("extensible array header version " + std::to_string(version));
    RETURN_IF_ERROR(CheckEntrySize(client, entry_size, "extensible array"));
    if (max_nelmts_bits == 0 || max_nelmts_bits > 64 || page_bits >= 32 || dblk_min_elmts == 0 ||
        sblk_min_ptrs == 0 || (dblk_min_elmts & (dblk_min_elmts - 1)) || (sblk_min_ptrs & (sblk_min_ptrs - 1))) {
      return CorruptError("extensible array header: bad creation parameters");
    }
    if (IsUndefinedAddress(r_.info(), iblock)) return OkStatus();
    const uint64_t page_n = uint64_t{1} << page_bits;
    const int off_size = (max_nelmts_bits + 7) / 8;
    // Super block geometry (the spec's table): super block u has 2^(u/2) data blocks of
    // 2^((u+1)/2) * dblk_min_elmts elements each.
    struct SuperInfo {
      uint64_t ndblks, dblk_nelmts, start_idx;
    };
    const int nsblks = 1 + (max_nelmts_bits - Log2(dblk_min_elmts));
    if (nsblks <= 0 || nsblks > 128) return CorruptError("extensible array header: bad super block count");
    std::vector<SuperInfo> sinfo(nsblks);
    uint64_t start_idx = 0;
    for (int u = 0; u < nsblks; ++u) {
      sinfo[u].ndblks = uint64_t{1} << (u / 2);
      sinfo[u].dblk_nelmts = (uint64_t{1} << ((u + 1) / 2)) * dblk_min_elmts;
      sinfo[u].start_idx = start_idx;
      start_idx += sinfo[u].ndblks * sinfo[u].dblk_nelmts;
    }
    const int iblock_nsblks = std::min(nsblks, 2 * Log2(sblk_min_ptrs));
    const uint64_t ndblk_addrs = 2 * (sblk_min_ptrs - 1);
    const uint64_t nsblk_addrs = nsblks - iblock_nsblks;
    ASSIGN_OR_RETURN(auto ib, r_.Read(iblock, 6 + O + idx_blk_elmts * entry_size + (ndblk_addrs + nsblk_addrs) * O + 4,
                                      "extensible array index block"));
    Cursor c(ib);
    if (!c.Signature("EAIB")) return CorruptError("extensible array index block: no EAIB signature");
    RETURN_IF_ERROR(VerifyChecksum(ib, "extensible array index block", iblock));
    c.Skip(2 + O);
    for (uint64_t i = 0; i < idx_blk_elmts; ++i) {
      if (i < max_index_set_) {
        SetCoords(i, swizzled_grid_, unlimited_);
        RETURN_IF_ERROR(Element(c, client, entry_size));
      } else {
        c.Skip(entry_size);
      }
    }
    std::vector<uint64_t> dblk_addrs(ndblk_addrs), sblk_addrs(nsblk_addrs);
    for (auto& a : dblk_addrs) a = c.U(O);
    for (auto& a : sblk_addrs) a = c.U(O);
    if (c.bad()) return CorruptError("extensible array index block truncated");
    // Data blocks addressed directly by the index block (super blocks 0 .. iblock_nsblks-1).
    uint64_t k = 0;
    for (int u = 0; u < iblock_nsblks; ++u) {
      for (uint64_t j = 0; j < sinfo[u].ndblks; ++j, ++k) {
        if (k >= dblk_addrs.size()) break;
        const uint64_t start = idx_blk_elmts + sinfo[u].start_idx + j * sinfo[u].dblk_nelmts;
        if (IsUndefinedAddress(r_.info(), dblk_addrs[k]) || start >= max_index_set_) continue;
        // A directly addressed block larger than a page has its page bitmap in... the index block
        // keeps none, so such blocks are always fully initialised when allocated.
        std::vector<std::byte> all_set((sinfo[u].dblk_nelmts / page_n + 7) / 8, std::byte{0xFF});
        RETURN_IF_ERROR(EaDataBlock(dblk_addrs[k], start, sinfo[u].dblk_nelmts, client, entry_size, page_n,
                                    off_size, all_set, 0));
      }
    }
    // Super blocks.
    for (uint64_t s = 0; s < nsblk_addrs; ++s) {
      const int u = iblock_nsblks + static_cast<int>(s);
      const SuperInfo& si = sinfo[u];
      const uint64_t first = idx_blk_elmts + si.start_idx;
      if (IsUndefinedAddress(r_.info(), sblk_addrs[s]) || first >= max_index_set_) continue;
      RETURN_IF_ERROR(VisitOnce(sblk_addrs[s], "extensible array super block"));
      const bool paged = si.dblk_nelmts > page_n;
      const uint64_t page_init_size = paged ? (si.dblk_nelmts / page_n + 7) / 8 : 0;
      const uint64_t bitmap_size = si.ndblks * page_init_size;
      ASSIGN_OR_RETURN(auto sb, r_.Read(sblk_addrs[s], 6 + O + off_size + bitmap_size + si.ndblks * O + 4,
                                        "extensible array super block"));
      Cursor sc(sb);
      if (!sc.Signature("EASB")) return CorruptError("extensible array super block " + Hex(sblk_addrs[s]) + ": no EASB signature");
      RETURN_IF_ERROR(VerifyChecksum(sb, "extensible array super block", sblk_addrs[s]));
      sc.Skip(2 + O + off_size);
      auto bitmap = sc.Take(bitmap_size);
      std::vector<uint64_t> addrs(si.ndblks);
      for (auto& a : addrs) a = sc.U(O);
      if (sc.bad()) return CorruptError("extensible array super block truncated");
      for (uint64_t j = 0; j < si.ndblks; ++j) {
        const uint64_t start = first + j * si.dblk_nelmts;
        if (IsUndefinedAddress(r_.info(), addrs[j]) || start >= max_index_set_) continue;
        RETURN_IF_ERROR(EaDataBlock(addrs[j], start, si.dblk_nelmts, client, entry_size, page_n, off_size,
                                    bitmap, j * page_init_size * 8));
      }
    }
    return OkStatus();
  }

  Status BTreeV2() {
    const int O = r_.O();
    const int L = r_.L();
    ASSIGN_OR_RETURN(auto hb, r_.Read(layout_.index_address, 4 + 2 + 4 + 2 + 2 + 2 + O + 2 + L + 4, "v2 B-tree header"));
    Cursor h(hb);
    if (!h.Signature("BTHD")) return CorruptError("v2 B-tree header: no BTHD signature");
    RETURN_IF_ERROR(VerifyChecksum(hb, "v2 B-tree header", layout_.index_address));
    int version = static_cast<int>(h.U(1));
    bt_type_ = static_cast<int>(h.U(1));
    bt_node_size_ = h.U(4);
    bt_rec_size_ = h.U(2);
    int depth = static_cast<int>(h.U(2));
    h.U(2);
    uint64_t root = h.U(O);
    uint64_t root_nrec = h.U(2);
    if (h.bad()) return CorruptError("v2 B-tree header truncated");
    if (version != 0) return UnsupportedError("v2 B-tree header version " + std::to_string(version));
    const size_t rank = layout_.chunk_dims.size();
    if (bt_type_ != 10 && bt_type_ != 11) return CorruptError("v2 B-tree of record type " + std::to_string(bt_type_) + " as chunk index");
    const uint64_t fixed = O + 8 * rank + (bt_type_ == 11 ? 4 : 0);
    if (bt_rec_size_ < fixed || (bt_type_ == 10 && bt_rec_size_ != fixed) || bt_rec_size_ - fixed > 8) {
      return CorruptError("v2 B-tree record size " + std::to_string(bt_rec_size_));
    }
    if (depth > kMaxTreeDepth || bt_node_size_ < 16 || bt_node_size_ > kMaxMetadataBlock) {
      return CorruptError("v2 B-tree header: bad depth or node size");
    }
    // Per-depth sizes of the child-pointer fields, as the spec derives them from the node size.
    const uint64_t prefix = 4 + 1 + 1 + 4;
    std::vector<uint64_t> max_nrec(depth + 1), cum_max_nrec(depth + 1), cum_max_nrec_size(depth + 1);
    max_nrec[0] = (bt_node_size_ - prefix) / bt_rec_size_;
    if (max_nrec[0] == 0) return CorruptError("v2 B-tree: node holds no record");
    cum_max_nrec[0] = max_nrec[0];
    cum_max_nrec_size[0] = 0;
    bt_max_nrec_size_ = Log2(max_nrec[0]) / 8 + 1;
    for (int u = 1; u <= depth; ++u) {
      uint64_t ptr = O + bt_max_nrec_size_ + (u > 1 ? cum_max_nrec_size[u - 1] : 0);
      max_nrec[u] = (bt_node_size_ - prefix) / (bt_rec_size_ + ptr);
      cum_max_nrec[u] = (max_nrec[u] + 1) * cum_max_nrec[u - 1] + max_nrec[u];
      cum_max_nrec_size[u] = Log2(cum_max_nrec[u]) / 8 + 1;
    }
    bt_cum_max_nrec_size_ = std::move(cum_max_nrec_size);
    if (IsUndefinedAddress(r_.info(), root) || root_nrec == 0) return OkStatus();
    return BTreeV2Node(root, root_nrec, depth);
  }

  Status BTreeV2Node(uint64_t address, uint64_t nrec, int depth) {
    RETURN_IF_ERROR(VisitOnce(address, "v2 B-tree node"));
    const int O = r_.O();
    const uint64_t ptr_size = depth > 0 ? O + bt_max_nrec_size_ + (depth > 1 ? bt_cum_max_nrec_size_[depth - 1] : 0) : 0;
    if (nrec > bt_node_size_) return CorruptError("v2 B-tree node " + Hex(address) + ": " + std::to_string(nrec) + " records do not fit a node");
    const uint64_t length = 6 + nrec * bt_rec_size_ + (depth > 0 ? (nrec + 1) * ptr_size : 0) + 4;
    if (length > bt_node_size_) return CorruptError("v2 B-tree node " + Hex(address) + ": " + std::to_string(nrec) + " records do not fit a node");
    ASSIGN_OR_RETURN(auto nb, r_.Read(address, length, "v2 B-tree node"));
    Cursor c(nb);
    if (!c.Signature(depth > 0 ? "BTIN" : "BTLF")) return CorruptError("v2 B-tree node " + Hex(address) + ": bad signature");
    RETURN_IF_ERROR(VerifyChecksum(nb, "v2 B-tree node", address));
    c.Skip(2);
    const size_t rank = layout_.chunk_dims.size();
    for (uint64_t i = 0; i < nrec; ++i) {
      uint64_t addr = c.U(O);
      uint64_t size = chunk_bytes_;
      uint32_t mask = 0;
      if (bt_type_ == 11) {
        size = c.U(bt_rec_size_ - O - 4 - 8 * rank);
        mask = static_cast<uint32_t>(c.U(4));
      }
      for (size_t d = 0; d < rank; ++d) chunk_.coords[d] = c.U(8);
      if (c.bad()) return CorruptError("v2 B-tree node truncated");
      RETURN_IF_ERROR(Emit(addr, size, mask));
    }
    if (depth == 0) return OkStatus();
    for (uint64_t i = 0; i <= nrec; ++i) {
      uint64_t child = c.U(O);
      uint64_t child_nrec = c.U(bt_max_nrec_size_);
      if (depth > 1) c.U(bt_cum_max_nrec_size_[depth - 1]);
      if (c.bad()) return CorruptError("v2 B-tree node truncated");
      RETURN_IF_ERROR(BTreeV2Node(child, child_nrec, depth - 1));
    }
    return OkStatus();
  }

  const Reader& r_;
  const Hdf5DataLayout& layout_;
  const std::vector<uint64_t>& dims_;
  const std::vector<uint64_t>& max_dims_;
  const std::function<Status(const Hdf5StoredChunk&)>& visit_;
  uint64_t chunk_bytes_ = 0;
  std::vector<uint64_t> grid_, max_grid_, swizzled_grid_;
  std::unordered_set<uint64_t> visited_;
  int unlimited_ = -1;
  uint64_t max_index_set_ = 0;
  int bt_type_ = 0;
  uint64_t bt_node_size_ = 0, bt_rec_size_ = 0, bt_max_nrec_size_ = 0;
  std::vector<uint64_t> bt_cum_max_nrec_size_;
  Hdf5StoredChunk chunk_;
};

}  // namespace

const char* Hdf5ChunkIndexName(Hdf5ChunkIndexType type) {
  switch (type) {
    case Hdf5ChunkIndexType::kBTreeV1: return "version 1 B-tree";
    case Hdf5ChunkIndexType::kSingleChunk: return "single chunk";
    case Hdf5ChunkIndexType::kImplicit: return "implicit";
    case Hdf5ChunkIndexType::kFixedArray: return "fixed array";
    case Hdf5ChunkIndexType::kExtensibleArray: return "extensible array";
    case Hdf5ChunkIndexType::kBTreeV2: return "version 2 B-tree";
  }
  return "unknown";
}

bool IsUndefinedAddress(const Hdf5FileInfo& info, uint64_t address) {
  const uint64_t all = info.offset_size >= 8 ? UINT64_MAX : (uint64_t{1} << (8 * info.offset_size)) - 1;
  return address == all;
}

Result<Hdf5FileInfo> ReadHdf5Superblock(ByteSource& source) {
  static constexpr unsigned char kSignature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  ASSIGN_OR_RETURN(uint64_t size, source.Size());
  for (uint64_t at = 0; at + 8 <= size; at = at == 0 ? 512 : at * 2) {
    std::array<std::byte, 48> buf{};
    const uint64_t n = std::min<uint64_t>(buf.size(), size - at);
    RETURN_IF_ERROR(source.ReadInto({at, n}, std::span(buf).first(n)));
    if (std::memcmp(buf.data(), kSignature, 8) != 0) continue;
    Cursor c(std::span<const std::byte>(buf).first(n));
    c.Skip(8);
    Hdf5FileInfo info;
    info.superblock_offset = at;
    info.superblock_version = static_cast<int>(c.U(1));
    if (info.superblock_version <= 1) {
      c.Skip(4);
      info.offset_size = static_cast<uint8_t>(c.U(1));
      info.length_size = static_cast<uint8_t>(c.U(1));
      c.Skip(1 + 4 + 4 + (info.superblock_version == 1 ? 4 : 0));
    } else if (info.superblock_version <= 3) {
      info.offset_size = static_cast<uint8_t>(c.U(1));
      info.length_size = static_cast<uint8_t>(c.U(1));
      c.Skip(1);
    } else {
      return UnsupportedError(source.Describe() + ": HDF5 superblock version " +
                              std::to_string(info.superblock_version));
    }
    auto valid = [](int s) { return s == 2 || s == 4 || s == 8; };
    if (!valid(info.offset_size) || !valid(info.length_size)) {
      return CorruptError(source.Describe() + ": HDF5 superblock: sizes of offsets/lengths " +
                          std::to_string(info.offset_size) + "/" + std::to_string(info.length_size));
    }
    info.base_address = c.U(info.offset_size);
    if (c.bad() || info.base_address > size) {
      return CorruptError(source.Describe() + ": HDF5 superblock truncated or base address outside the file");
    }
    return info;
  }
  return CorruptError(source.Describe() + ": no HDF5 superblock signature");
}

Result<Hdf5DataLayout> ReadHdf5DataLayout(ByteSource& source, const Hdf5FileInfo& info,
                                          uint64_t object_header_address) {
  Reader r(source, info);
  RETURN_IF_ERROR(r.Init());
  Hdf5DataLayout layout;
  bool found = false;
  Status s = WalkObjectHeader(r, object_header_address, [&](uint16_t type, std::span<const std::byte> data) -> Status {
    if (type == kMsgLayout && !found) {
      found = true;
      return DecodeLayout(r, data, layout);
    }
    if (type == kMsgFilterPipeline && data.size() >= 2) {
      layout.filter_count = static_cast<int>(data[1]);
    }
    return OkStatus();
  });
  const std::string where = "object header " + Hex(object_header_address);
  if (!s.ok()) return s.WithContext(where);
  if (!found) return NotFoundError(where + ": no data layout message");
  return layout;
}

Status ForEachHdf5Chunk(ByteSource& source, const Hdf5FileInfo& info, const Hdf5DataLayout& layout,
                        const std::vector<uint64_t>& dims, const std::vector<uint64_t>& max_dims,
                        const std::function<Status(const Hdf5StoredChunk&)>& visit) {
  if (layout.layout_class != Hdf5DataLayout::kChunked) {
    return InvalidArgumentError("ForEachHdf5Chunk: dataset is not chunked");
  }
  Reader r(source, info);
  RETURN_IF_ERROR(r.Init());
  ChunkWalker walker(r, layout, dims, max_dims, visit);
  Status s = walker.Run();
  if (!s.ok()) {
    return s.WithContext(std::string(Hdf5ChunkIndexName(layout.index_type)) + " chunk index");
  }
  return OkStatus();
}

}  // namespace refzarr
