#include "formats/tiff/tiff_pages.h"

#include <tiffio.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>

namespace refzarr {
namespace {

// Reads ahead of libtiff along an IFD chain of uniform stride: a stack of uncompressed pages, or
// IFDs written together at equal spacing. Once the last two strides are equal, the reads the last
// page cost (from the directory before it up to and including its own: the IFD, its out-of-line
// arrays, SubIFDs, what ReadPage reads besides) shifted by the stride are the next pages' reads,
// and a window of them is handed to ByteSource::Prefetch at once: 8 pages, doubling to 256. The
// chain itself is still followed and read as the file says; a directory elsewhere than predicted
// only ends the run (what was prefetched is cache, never trusted).
class ChainPrefetcher {
 public:
  ChainPrefetcher(ByteSource& source, uint64_t size) : source_(source), size_(size) {}

  // Every read of the file's structure, in order.
  void Note(ByteRange r) {
    if (footprint_.size() < kMaxFootprint) footprint_.push_back(r);
    else overflowed_ = true;
  }

  // The directory at `offset` has been read (the first one, then each the chain leads to).
  void AtDirectory(uint64_t offset) {
    const int64_t stride = static_cast<int64_t>(offset) - static_cast<int64_t>(last_);
    const bool uniform = have_last_ && stride != 0 && stride == stride_;
    if (!uniform) {
      window_ = kFirstWindow;
      ahead_ = 0;
    } else if (ahead_ > 0) {
      --ahead_;
    }
    if (uniform && ahead_ == 0 && !overflowed_ && !footprint_.empty()) {
      std::vector<ByteRange> next;
      next.reserve(footprint_.size() * window_);
      for (uint64_t j = 1; j <= window_; ++j) {
        for (const ByteRange& r : footprint_) {
          const int64_t at = static_cast<int64_t>(r.offset) + static_cast<int64_t>(j) * stride;
          if (at < 0 || static_cast<uint64_t>(at) >= size_) continue;
          next.push_back({static_cast<uint64_t>(at), std::min(r.length, size_ - at)});
        }
      }
      source_.Prefetch(next);
      ahead_ = window_;
      window_ = std::min(window_ * 2, kMaxWindow);
    }
    stride_ = have_last_ ? stride : 0;
    last_ = offset;
    have_last_ = true;
    footprint_.clear();
    overflowed_ = false;
  }

 private:
  static constexpr uint64_t kFirstWindow = 8, kMaxWindow = 256;
  static constexpr size_t kMaxFootprint = 64;  // reads of one page; more: not a plain stack

  ByteSource& source_;
  const uint64_t size_;
  std::vector<ByteRange> footprint_;
  bool overflowed_ = false;
  bool have_last_ = false;
  uint64_t last_ = 0;    // the last directory's offset
  int64_t stride_ = 0;   // from the one before it
  uint64_t window_ = kFirstWindow;
  uint64_t ahead_ = 0;   // directories still covered by the last prefetch
};

// libtiff reads through these callbacks; `position` is the stream position libtiff expects.
struct ClientHandle {
  ByteSource* source = nullptr;
  uint64_t size = 0;
  uint64_t position = 0;
  std::string first_error;  // libtiff's first error message for this handle
  ChainPrefetcher* prefetcher = nullptr;
};

// Every read of the structure, libtiff's and ReadPage's own: noted for the prefetcher.
Status ReadAt(ClientHandle& h, ByteRange range, std::span<std::byte> out) {
  if (h.prefetcher != nullptr) h.prefetcher->Note(range);
  return h.source->ReadInto(range, out);
}

tmsize_t ClientRead(thandle_t h, void* buf, tmsize_t n) {
  auto* c = static_cast<ClientHandle*>(h);
  if (n <= 0 || c->position >= c->size) return 0;
  uint64_t len = std::min<uint64_t>(static_cast<uint64_t>(n), c->size - c->position);
  Status st = ReadAt(*c, {c->position, len}, {static_cast<std::byte*>(buf), len});
  if (!st.ok()) {
    if (c->first_error.empty()) c->first_error = st.message();
    return -1;
  }
  c->position += len;
  return static_cast<tmsize_t>(len);
}

tmsize_t ClientWrite(thandle_t, void*, tmsize_t) { return -1; }

toff_t ClientSeek(thandle_t h, toff_t off, int whence) {
  auto* c = static_cast<ClientHandle*>(h);
  uint64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? c->position : c->size;
  c->position = base + off;
  return c->position;
}

int ClientClose(thandle_t) { return 0; }
toff_t ClientSize(thandle_t h) { return static_cast<ClientHandle*>(h)->size; }
int ClientMap(thandle_t, void**, toff_t*) { return 0; }
void ClientUnmap(thandle_t, void*, toff_t) {}

// Per-handle handlers: messages go to the handle, never to stderr, and never cross threads.
int OnError(TIFF*, void* user, const char* module, const char* fmt, va_list ap) {
  auto* c = static_cast<ClientHandle*>(user);
  if (c->first_error.empty()) {
    char buf[512];
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    // libtiff names the handle ("tiff: ") in its messages; the caller names the file instead.
    std::string m = buf;
    if (m.rfind("tiff: ", 0) == 0) m.erase(0, 6);
    c->first_error = std::string(module ? module : "libtiff") + ": " + m;
  }
  return 1;
}
int OnWarning(TIFF*, void*, const char*, const char*, va_list) { return 1; }

struct TiffCloser {
  void operator()(TIFF* t) const { TIFFClose(t); }
};
struct OptionsFree {
  void operator()(TIFFOpenOptions* o) const { TIFFOpenOptionsFree(o); }
};

template <typename T>
T GetOr(TIFF* tif, ttag_t tag, T fallback) {
  T v{};
  return TIFFGetField(tif, tag, &v) ? v : fallback;
}

template <typename T>
T GetDefaulted(TIFF* tif, ttag_t tag) {
  T v{};
  TIFFGetFieldDefaulted(tif, tag, &v);
  return v;
}

// ImageJ's IJMetadata (50839, bytes) and IJMetadataByteCounts (50838, LONGs) are private tags that
// libtiff keeps as anonymous fields. TIFFFindField, unlike TIFFFieldWithTag, does not report an
// error for a tag the directory lacks.
constexpr uint32_t kTagIjMetadataByteCounts = 50838;
constexpr uint32_t kTagIjMetadata = 50839;

void ReadImageJMetadataTags(TIFF* tif, TiffPage& p) {
  const TIFFField* counts_field = TIFFFindField(tif, kTagIjMetadataByteCounts, TIFF_ANY);
  const TIFFField* data_field = TIFFFindField(tif, kTagIjMetadata, TIFF_ANY);
  if (counts_field == nullptr || data_field == nullptr) return;
  if (TIFFFieldDataType(counts_field) != TIFF_LONG || !TIFFFieldPassCount(counts_field) ||
      TIFFFieldReadCount(counts_field) != TIFF_VARIABLE2) {
    return;
  }
  const TIFFDataType data_type = TIFFFieldDataType(data_field);
  if ((data_type != TIFF_BYTE && data_type != TIFF_UNDEFINED) || !TIFFFieldPassCount(data_field) ||
      TIFFFieldReadCount(data_field) != TIFF_VARIABLE2) {
    return;
  }
  uint32_t n_counts = 0, n_data = 0;
  uint32_t* counts = nullptr;
  void* data = nullptr;
  if (!TIFFGetField(tif, kTagIjMetadataByteCounts, &n_counts, &counts) || counts == nullptr ||
      !TIFFGetField(tif, kTagIjMetadata, &n_data, &data) || data == nullptr) {
    return;
  }
  p.ij_byte_counts.assign(counts, counts + n_counts);
  p.ij_metadata.assign(static_cast<const char*>(data), n_data);
}

// `length` bytes at `offset` of the source, or nullopt when they are not all in the file.
std::optional<std::string> ReadBytes(ClientHandle& h, uint64_t offset, uint64_t length) {
  if (offset > h.size || length > h.size - offset) return std::nullopt;
  std::string out(length, '\0');
  if (!ReadAt(h, {offset, length}, std::as_writable_bytes(std::span(out))).ok()) {
    return std::nullopt;
  }
  return out;
}

// The values of `tag` (SHORT, LONG or LONG8) in the IFD at `ifd_offset` as the file stores them,
// nullopt when the IFD has no such entry or it cannot be read.
std::optional<std::vector<uint64_t>> ReadTagValues(ClientHandle& h, bool bigtiff, bool big_endian,
                                                   uint64_t ifd_offset, uint16_t tag) {
  auto number = [&](const std::string& b, size_t at, size_t size) {
    uint64_t v = 0;
    for (size_t i = 0; i < size; ++i) {
      const uint64_t byte = static_cast<uint8_t>(b[at + i]);
      v |= byte << (8 * (big_endian ? size - 1 - i : i));
    }
    return v;
  };
  const size_t count_size = bigtiff ? 8 : 2, entry_size = bigtiff ? 20 : 12;
  auto head = ReadBytes(h, ifd_offset, count_size);
  if (!head) return std::nullopt;
  const uint64_t entries = number(*head, 0, count_size);
  if (entries > 65536) return std::nullopt;
  auto dir = ReadBytes(h, ifd_offset + count_size, entries * entry_size);
  if (!dir) return std::nullopt;
  for (uint64_t e = 0; e < entries; ++e) {
    const size_t at = e * entry_size;
    if (number(*dir, at, 2) != tag) continue;
    const uint64_t type = number(*dir, at + 2, 2);
    const uint64_t n = number(*dir, at + 4, bigtiff ? 8 : 4);
    const size_t size = type == TIFF_SHORT ? 2 : type == TIFF_LONG ? 4 : type == TIFF_LONG8 ? 8 : 0;
    if (size == 0 || n > (uint64_t{1} << 26)) return std::nullopt;
    const size_t value_at = at + 4 + (bigtiff ? 8 : 4), inline_size = bigtiff ? 8 : 4;
    std::string values;
    if (n * size <= inline_size) {
      values = dir->substr(value_at, inline_size);
    } else {
      auto out_of_line = ReadBytes(h, number(*dir, value_at, inline_size), n * size);
      if (!out_of_line) return std::nullopt;
      values = std::move(*out_of_line);
    }
    std::vector<uint64_t> out(n);
    for (uint64_t i = 0; i < n; ++i) out[i] = number(values, i * size, size);
    return out;
  }
  return std::nullopt;
}

// libtiff replaces byte counts it finds bogus (missing, zero, or too small for the rows of an
// uncompressed strip) by estimates from the image size, and splits a single uncompressed strip
// into strips of about 8 KiB. Estimates are not the file's: they would serve bytes past the
// strip's end. Keeps libtiff's split where it partitions the file's bytes; otherwise restores
// what the file says (for the scanner to judge) or records the damage.
void UseTheFilesByteCounts(ClientHandle& h, bool bigtiff, bool big_endian, TiffPage& p) {
  const char* name = p.tiled ? "TileByteCounts" : "StripByteCounts";
  auto file = ReadTagValues(h, bigtiff, big_endian, p.ifd_offset,
                            p.tiled ? TIFFTAG_TILEBYTECOUNTS : TIFFTAG_STRIPBYTECOUNTS);
  if (!file) {
    p.damage = std::string("no readable ") + name + " (libtiff would estimate them from the image size)";
    return;
  }
  if (*file == p.byte_counts) return;
  uint64_t sum = 0;
  for (uint64_t c : p.byte_counts) sum += c;
  if (file->size() == 1 && p.byte_counts.size() > 1 && !p.tiled) {
    // Split by libtiff: right when the pieces are the file's strip.
    if (sum == file->front()) return;
    p.offsets.resize(1);
    p.tile_length = p.length;
  }
  if (file->size() != p.offsets.size()) {
    p.damage = std::string(name) + " has " + std::to_string(file->size()) + " entries, expected " +
               std::to_string(p.offsets.size());
    return;
  }
  p.byte_counts = std::move(*file);
}

// What is prefetched of each SubIFD when a page names them: its entries and, as most writers put
// them, its out-of-line values right after.
constexpr uint64_t kSubIfdHeadBytes = 16 * 1024;

// At most this many bytes of JPEGInterchangeFormat and of the first strip are read for the
// old-style JPEG header: it holds tables and frame headers, a few KiB at most in practice.
constexpr uint64_t kMaxOldJpegHeaderBytes = 64 * 1024;

// The marker segments libtiff's old-style JPEG codec parses before the entropy-coded data
// (OJPEGReadHeaderInfoSec): it reads JPEGInterchangeFormat and then the first strip as one stream,
// skipping SOI, APPn and COM, keeping DRI, DQT, DHT, SOF0/1/3, and stopping after SOS or at the
// first byte that is not a marker. Any other marker makes libtiff fail.
Status ParseOldJpegHeader(ClientHandle& h, const TiffPage& p, uint64_t if_offset, uint64_t if_length,
                          OldJpeg& out, bool& has_frame) {
  std::string stream;
  uint64_t from_interchange = 0;
  if (if_length > 0) {
    from_interchange = std::min(if_length, kMaxOldJpegHeaderBytes);
    auto bytes = ReadBytes(h, if_offset, from_interchange);
    if (!bytes) return CorruptError("JPEGInterchangeFormat cannot be read");
    stream = std::move(*bytes);
  }
  const uint64_t strip_length = std::min(p.byte_counts[0], kMaxOldJpegHeaderBytes);
  auto strip = ReadBytes(h, p.offsets[0], strip_length);
  if (!strip) return CorruptError("the first strip cannot be read");
  stream += *strip;
  // A segment that does not end inside what was read is either longer than the bounds or cut.
  const auto cut = [&]() {
    return UnsupportedError("the JPEG header does not end within the first " +
                            std::to_string(stream.size()) + " bytes of JPEGInterchangeFormat " +
                            "and the first " + (p.tiled ? "tile" : "strip"));
  };
  auto byte = [&](size_t i) { return static_cast<uint8_t>(stream[i]); };
  size_t pos = 0;
  bool sos = false;
  has_frame = false;
  while (!sos) {
    if (pos >= stream.size()) return cut();
    if (byte(pos) != 0xFF) break;  // the entropy-coded data starts here
    while (pos < stream.size() && byte(pos) == 0xFF) ++pos;
    if (pos >= stream.size()) return cut();
    const uint8_t marker = byte(pos++);
    if (marker == 0xD8) continue;  // SOI: no segment
    const bool known = (marker >= 0xE0 && marker <= 0xEF) || marker == 0xFE || marker == 0xDD ||
                       marker == 0xDB || marker == 0xC4 || marker == 0xC0 || marker == 0xC1 ||
                       marker == 0xC3 || marker == 0xDA;
    if (!known) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", marker);
      return CorruptError(std::string("marker ") + hex + " in the JPEG header (libtiff refuses it)");
    }
    if (pos + 2 > stream.size()) return cut();
    const size_t length = size_t{byte(pos)} << 8 | byte(pos + 1);
    if (length < 2) return CorruptError("a JPEG marker segment of length " + std::to_string(length));
    if (pos + length > stream.size()) return cut();
    pos += length;
    has_frame = has_frame || marker == 0xC0 || marker == 0xC1 || marker == 0xC3;
    sos = marker == 0xDA;
  }
  out.header = stream.substr(0, pos);
  if (pos > from_interchange) {
    out.first_strip_header_bytes = static_cast<uint32_t>(pos - from_interchange);
    if (out.first_strip_header_bytes >= p.byte_counts[0]) {
      return CorruptError("the first strip holds only JPEG header, no data");
    }
  } else if (if_length > pos) {
    // The header ended inside JPEGInterchangeFormat, which goes on: libtiff decodes its rest (a
    // complete JPEG stored there) before any strip.
    if (if_length > from_interchange && pos == from_interchange) return cut();
    out.data_in_interchange = std::pair<uint64_t, uint64_t>{if_offset + pos, if_length - pos};
  }
  return OkStatus();
}

// The contents of one kind of old-style JPEG table (JPEGQTables, JPEGDCTables, JPEGACTables), one
// per component, read as libtiff reads them (OJPEGReadHeaderInfoSecTables*): a Q table is 64
// bytes, a Huffman table 16 code counts then as many values as they sum to. An offset of 0 or
// equal to the previous one shares the previous table (an empty entry); equal to an earlier one,
// libtiff refuses.
Status ReadOldJpegTables(TIFF* tif, ClientHandle& h, ttag_t tag, const char* name,
                         uint16_t components, std::vector<std::string>& out) {
  uint32_t count = 0;
  const void* raw = nullptr;
  if (!TIFFGetField(tif, tag, &count, &raw) || raw == nullptr) count = 0;
  const auto* offsets = static_cast<const uint64_t*>(raw);
  std::vector<uint64_t> at(components, 0);
  for (uint32_t m = 0; m < std::min<uint32_t>(count, components); ++m) at[m] = offsets[m];
  if (at.empty() || at[0] == 0) {
    return CorruptError(std::string("no ") + name + " and no tables in the JPEG header");
  }
  for (uint16_t m = 0; m < components; ++m) {
    if (m > 0 && (at[m] == 0 || at[m] == at[m - 1])) {
      out.emplace_back();
      continue;
    }
    for (uint16_t n = 0; n + 1 < m; ++n) {
      if (at[n] == at[m]) return CorruptError(std::string(name) + " repeats an earlier offset");
    }
    std::optional<std::string> table;
    if (tag == TIFFTAG_JPEGQTABLES) {
      table = ReadBytes(h, at[m], 64);
    } else if ((table = ReadBytes(h, at[m], 16))) {
      uint64_t values = 0;
      for (char c : *table) values += static_cast<uint8_t>(c);
      auto rest = ReadBytes(h, at[m] + 16, values);
      if (rest) *table += *rest;
      else table.reset();
    }
    if (!table) {
      return CorruptError(std::string(name) + " entry " + std::to_string(m) + " at offset " +
                          std::to_string(at[m]) + " lies past the end of the file");
    }
    out.push_back(std::move(*table));
  }
  return OkStatus();
}

// What the old-style JPEG codec needs besides each strip (see OldJpeg). What stops one chunk
// from being decoded alone is recorded as the refusal, never an error: the rest of the file is
// still indexed.
void ReadOldJpeg(TIFF* tif, ClientHandle& h, TiffPage& p) {
  OldJpeg& j = p.old_jpeg.emplace();
  j.proc = GetOr<uint16_t>(tif, TIFFTAG_JPEGPROC, 1);
  j.restart_interval = GetOr<uint16_t>(tif, TIFFTAG_JPEGRESTARTINTERVAL, 0);
  Status st = [&]() -> Status {
    if (p.offsets.empty()) return OkStatus();
    for (size_t i = 0; i < p.offsets.size(); ++i) {
      if (p.offsets[i] == 0 || p.byte_counts[i] == 0) {
        // libtiff's codec then reads from the previous strip on, or to the end of the file.
        return UnsupportedError(std::string(p.tiled ? "tile " : "strip ") + std::to_string(i) +
                                " has no offset or byte count");
      }
    }
    uint64_t if_offset = GetOr<uint64_t>(tif, TIFFTAG_JPEGIFOFFSET, 0);
    uint64_t if_length = GetOr<uint64_t>(tif, TIFFTAG_JPEGIFBYTECOUNT, 0);
    // As libtiff: an offset past the end is ignored, a length of 0 or past the end means "to the
    // end of the file".
    if (if_offset >= h.size) if_offset = 0;
    if (if_offset == 0) if_length = 0;
    else if (if_length == 0 || if_length > h.size - if_offset) if_length = h.size - if_offset;
    bool has_frame = false;
    RETURN_IF_ERROR(ParseOldJpegHeader(h, p, if_offset, if_length, j, has_frame));
    if (j.data_in_interchange && p.offsets.size() > 1) {
      return UnsupportedError("the image data is one JPEG stream in JPEGInterchangeFormat, not one "
                              "per " + std::string(p.tiled ? "tile" : "strip") +
                              ", so no chunk decodes alone");
    }
    if (!has_frame) {
      const uint16_t components = p.samples_per_pixel == 3 ? 3 : 1;
      RETURN_IF_ERROR(ReadOldJpegTables(tif, h, TIFFTAG_JPEGQTABLES, "JPEGQTables", components, j.qtables));
      RETURN_IF_ERROR(ReadOldJpegTables(tif, h, TIFFTAG_JPEGDCTABLES, "JPEGDCTables", components, j.dctables));
      RETURN_IF_ERROR(ReadOldJpegTables(tif, h, TIFFTAG_JPEGACTABLES, "JPEGACTables", components, j.actables));
    }
    return OkStatus();
  }();
  if (!st.ok()) j.refusal = "old-style JPEG: " + st.message();
}

Status ReadPage(TIFF* tif, ClientHandle& h, int index, int sub_index, bool bigtiff, TiffPage& p) {
  p.ifd_offset = TIFFCurrentDirOffset(tif);
  p.index = index;
  p.sub_index = sub_index;
  std::string where = "IFD " + std::to_string(index) +
                      (sub_index >= 0 ? " SubIFD " + std::to_string(sub_index) : "");
  if (!TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &p.width) ||
      !TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &p.length)) {
    return CorruptError(where + ": no ImageWidth/ImageLength");
  }
  p.depth = GetOr<uint32_t>(tif, TIFFTAG_IMAGEDEPTH, 1);
  p.samples_per_pixel = GetDefaulted<uint16_t>(tif, TIFFTAG_SAMPLESPERPIXEL);
  p.bits_per_sample = GetDefaulted<uint16_t>(tif, TIFFTAG_BITSPERSAMPLE);
  p.sample_format = GetDefaulted<uint16_t>(tif, TIFFTAG_SAMPLEFORMAT);
  p.planar = GetDefaulted<uint16_t>(tif, TIFFTAG_PLANARCONFIG);
  p.compression = GetDefaulted<uint16_t>(tif, TIFFTAG_COMPRESSION);
  p.predictor = GetOr<uint16_t>(tif, TIFFTAG_PREDICTOR, 1);
  p.photometric = GetOr<uint16_t>(tif, TIFFTAG_PHOTOMETRIC, p.samples_per_pixel >= 3 ? 2 : 1);
  p.fill_order = GetDefaulted<uint16_t>(tif, TIFFTAG_FILLORDER);
  p.subfile_type = GetOr<uint32_t>(tif, TIFFTAG_SUBFILETYPE, 0);
  p.resolution_unit = GetDefaulted<uint16_t>(tif, TIFFTAG_RESOLUTIONUNIT);
  p.x_resolution = GetOr<float>(tif, TIFFTAG_XRESOLUTION, 0.f);
  p.y_resolution = GetOr<float>(tif, TIFFTAG_YRESOLUTION, 0.f);
  if (p.photometric == PHOTOMETRIC_YCBCR) {
    // For old-style JPEG, libtiff corrects the subsampling from the JPEG frame header.
    TIFFGetFieldDefaulted(tif, TIFFTAG_YCBCRSUBSAMPLING, &p.ycbcr_subsampling[0],
                          &p.ycbcr_subsampling[1]);
    float* coefficients = nullptr;
    if (TIFFGetFieldDefaulted(tif, TIFFTAG_YCBCRCOEFFICIENTS, &coefficients) && coefficients) {
      std::copy(coefficients, coefficients + 3, p.ycbcr_coefficients);
    }
    float* black_white = nullptr;
    if (TIFFGetFieldDefaulted(tif, TIFFTAG_REFERENCEBLACKWHITE, &black_white) && black_white) {
      std::copy(black_white, black_white + 6, p.reference_black_white);
    }
  }
  if (char* d = nullptr; TIFFGetField(tif, TIFFTAG_IMAGEDESCRIPTION, &d) && d) p.description = d;
  if (char* s = nullptr; TIFFGetField(tif, TIFFTAG_SOFTWARE, &s) && s) p.software = s;
  // Merged per-sample values (libtiff's default): one double each.
  if (double lo = 0, hi = 0; TIFFGetField(tif, TIFFTAG_SMINSAMPLEVALUE, &lo) &&
                             TIFFGetField(tif, TIFFTAG_SMAXSAMPLEVALUE, &hi)) {
    p.sample_value_range = std::make_pair(lo, hi);
  }
  ReadImageJMetadataTags(tif, p);
  if (p.compression == COMPRESSION_JPEG) {
    uint32_t n = 0;
    void* tables = nullptr;
    if (TIFFGetField(tif, TIFFTAG_JPEGTABLES, &n, &tables) && tables && n > 0) {
      p.jpeg_tables.assign(static_cast<const char*>(tables), n);
    }
  }
  p.tiled = TIFFIsTiled(tif);
  uint64_t* offsets = nullptr;
  uint64_t* counts = nullptr;
  if (p.tiled) {
    p.tile_width = GetOr<uint32_t>(tif, TIFFTAG_TILEWIDTH, 0);
    p.tile_length = GetOr<uint32_t>(tif, TIFFTAG_TILELENGTH, 0);
    if (p.tile_width == 0 || p.tile_length == 0) return CorruptError(where + ": zero tile size");
    TIFFGetField(tif, TIFFTAG_TILEOFFSETS, &offsets);
    TIFFGetField(tif, TIFFTAG_TILEBYTECOUNTS, &counts);
  } else {
    p.tile_width = p.width;
    p.tile_length = GetDefaulted<uint32_t>(tif, TIFFTAG_ROWSPERSTRIP);
    if (p.tile_length == 0) p.tile_length = p.length;
    TIFFGetField(tif, TIFFTAG_STRIPOFFSETS, &offsets);
    TIFFGetField(tif, TIFFTAG_STRIPBYTECOUNTS, &counts);
  }
  if (p.width == 0 || p.length == 0) return OkStatus();  // empty image: no chunks
  uint64_t expected = uint64_t{p.ChunksAcross()} * p.ChunksDown() *
                      (p.planar == PLANARCONFIG_SEPARATE ? p.samples_per_pixel : 1);
  uint32_t n = TIFFNumberOfStrips(tif);
  if (p.tiled) n = TIFFNumberOfTiles(tif);
  if (!offsets || !counts) {
    return CorruptError(where + ": no " + std::string(p.tiled ? "TileOffsets" : "StripOffsets") +
                        "/ByteCounts" + (h.first_error.empty() ? "" : " (" + h.first_error + ")"));
  }
  if (n != expected) {
    return CorruptError(where + ": " + (p.tiled ? "TileOffsets" : "StripOffsets") + " has " +
                        std::to_string(n) + " entries, expected " + std::to_string(expected));
  }
  p.offsets.assign(offsets, offsets + n);
  p.byte_counts.assign(counts, counts + n);
  UseTheFilesByteCounts(h, bigtiff, TIFFIsBigEndian(tif), p);
  if (p.compression == COMPRESSION_OJPEG && p.damage.empty()) ReadOldJpeg(tif, h, p);
  return OkStatus();
}

}  // namespace

bool OldJpeg::DecodesLike(const OldJpeg& o) const {
  return header == o.header && qtables == o.qtables && dctables == o.dctables &&
         actables == o.actables && proc == o.proc && restart_interval == o.restart_interval &&
         refusal.empty() == o.refusal.empty();
}

std::string TiffPage::Where() const {
  std::string w = has_ifd ? "IFD " + std::to_string(index) : "plane " + std::to_string(index);
  if (sub_index >= 0) w += " SubIFD " + std::to_string(sub_index);
  if (source != 0) w += " of member file " + std::to_string(source);
  return w;
}

uint32_t TiffPage::ChunksAcross() const {
  return tiled ? (width + tile_width - 1) / tile_width : 1;
}
uint32_t TiffPage::ChunksDown() const {
  uint32_t rows = ChunkRows();
  return rows == 0 ? 0 : (length + rows - 1) / rows;
}
uint32_t TiffPage::RowsIn(uint32_t row) const {
  uint32_t rows = ChunkRows();
  if (tiled) return rows;
  uint64_t start = uint64_t{row} * rows;
  return start >= length ? 0 : static_cast<uint32_t>(std::min<uint64_t>(rows, length - start));
}

bool LooksLikeTiff(std::span<const std::byte> head) {
  if (head.size() < 4) return false;
  auto b = [&](size_t i) { return static_cast<uint8_t>(head[i]); };
  bool ii = b(0) == 'I' && b(1) == 'I' && (b(2) == 42 || b(2) == 43) && b(3) == 0;
  bool mm = b(0) == 'M' && b(1) == 'M' && b(2) == 0 && (b(3) == 42 || b(3) == 43);
  return ii || mm;
}

Result<TiffStructure> ReadTiffStructure(ByteSource& source) {
  ClientHandle h;
  h.source = &source;
  ASSIGN_OR_RETURN(h.size, source.Size());
  std::unique_ptr<TIFFOpenOptions, OptionsFree> opts(TIFFOpenOptionsAlloc());
  TIFFOpenOptionsSetErrorHandlerExtR(opts.get(), OnError, &h);
  TIFFOpenOptionsSetWarningHandlerExtR(opts.get(), OnWarning, &h);
  // Allocation cap: a corrupt tag cannot make libtiff allocate gigabytes.
  TIFFOpenOptionsSetMaxSingleMemAlloc(opts.get(), 1ll << 30);
  std::unique_ptr<TIFF, TiffCloser> tif(
      TIFFClientOpenExt("tiff", "rm", &h, ClientRead, ClientWrite, ClientSeek,
                        ClientClose, ClientSize, ClientMap, ClientUnmap, opts.get()));
  if (!tif) {
    return CorruptError("not a readable TIFF" +
                        (h.first_error.empty() ? "" : ": " + h.first_error));
  }
  ChainPrefetcher prefetcher(source, h.size);
  h.prefetcher = &prefetcher;
  prefetcher.AtDirectory(TIFFCurrentDirOffset(tif.get()));
  TiffStructure s;
  s.big_endian = TIFFIsBigEndian(tif.get());
  s.bigtiff = TIFFIsBigTIFF(tif.get());
  const bool big_endian = s.big_endian;
  std::vector<uint64_t> main_offsets;
  for (int index = 0;; ++index) {
    TiffPage page;
    h.first_error.clear();
    RETURN_IF_ERROR(ReadPage(tif.get(), h, index, -1, s.bigtiff, page));
    page.big_endian = big_endian;
    main_offsets.push_back(page.ifd_offset);
    s.pages.push_back(std::move(page));

    uint16_t sub_count = 0;
    uint64_t* sub_offsets_raw = nullptr;
    if (TIFFGetField(tif.get(), TIFFTAG_SUBIFD, &sub_count, &sub_offsets_raw) && sub_count > 0) {
      std::vector<uint64_t> subs(sub_offsets_raw, sub_offsets_raw + sub_count);
      // Their offsets are all known now: their directories are fetched at once, not one by one.
      std::vector<ByteRange> heads;
      for (uint64_t at : subs) {
        if (at < h.size) heads.push_back({at, std::min(kSubIfdHeadBytes, h.size - at)});
      }
      source.Prefetch(heads);
      for (size_t k = 0; k < subs.size(); ++k) {
        h.first_error.clear();
        if (!TIFFSetSubDirectory(tif.get(), subs[k])) {
          return CorruptError("IFD " + std::to_string(index) + " SubIFD " +
                              std::to_string(k) + " at offset " + std::to_string(subs[k]) +
                              " unreadable" + (h.first_error.empty() ? "" : ": " + h.first_error));
        }
        TiffPage sub;
        RETURN_IF_ERROR(ReadPage(tif.get(), h, index, static_cast<int>(k), s.bigtiff, sub));
        sub.big_endian = big_endian;
        s.pages.push_back(std::move(sub));
      }
      // Back to the parent IFD by offset (TIFFSetDirectory would walk the chain from the start).
      if (!TIFFSetSubDirectory(tif.get(), main_offsets.back())) {
        return CorruptError("cannot return to IFD " + std::to_string(index));
      }
    }
    h.first_error.clear();
    if (!TIFFReadDirectory(tif.get())) {
      if (!h.first_error.empty()) {
        // The chain points at an IFD that cannot be read: the file is damaged, and indexing only
        // the readable part would present a different image than the file claims to hold.
        return CorruptError("IFD " + std::to_string(index + 1) + " unreadable: " + h.first_error);
      }
      break;
    }
    prefetcher.AtDirectory(TIFFCurrentDirOffset(tif.get()));
  }
  return s;
}

}  // namespace refzarr
