#include "formats/tiff/decoder/tiff_decoder.h"
#include "formats/core/base64.h"

#include <tiffio.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace refzarr {
namespace {

using nlohmann::json;

static_assert(std::endian::native == std::endian::little, "refzarr assumes a little-endian host");

// Everything from `params` that shapes the in-memory TIFF.
struct TiffParams {
  uint16_t compression = 1;
  uint16_t predictor = 1;
  uint16_t photometric = 1;
  uint16_t bits_per_sample = 8;
  uint16_t sample_format = 1;
  uint16_t samples_per_pixel = 1;
  uint16_t planar = 1;
  uint16_t fill_order = 1;
  bool tiled = false;
  uint32_t tile_width = 0;
  uint32_t tile_length = 0;
  uint32_t rows_per_strip = 0;
  uint32_t image_width = 0;
  uint32_t image_length = 0;
  bool big_endian = false;
  std::string jpeg_tables;  // decoded bytes
  bool has_ycbcr_subsampling = false;
  uint16_t ycbcr_subsampling[2] = {2, 2};
  bool jpeg_colormode_rgb = false;
  std::vector<uint16_t> extra_samples;
  int64_t t4_options = -1;
  int64_t t6_options = -1;
  uint32_t image_depth = 1;
  // Old-style JPEG (compression 6): what libtiff's codec reads outside the strip.
  struct OldJpeg {
    std::string header;  // marker segments before the entropy-coded data
    // Table contents per component; nullopt shares the previous component's table. Empty when
    // the header holds the frame.
    std::vector<std::optional<std::string>> qtables, dctables, actables;
    uint16_t proc = 1;
    uint16_t restart_interval = 0;
    float ycbcr_coefficients[3] = {0.299f, 0.587f, 0.114f};
    float reference_black_white[6] = {0, 255, 128, 255, 128, 255};
  } ojpeg;
};

// A JSON count: unsigned, or a signed integer that is not negative (as literals in tests are).
bool IsCount(const json& v) {
  return v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
}

Result<uint64_t> GetUint(const json& params, const char* key, std::optional<uint64_t> fallback,
                         uint64_t max) {
  auto it = params.find(key);
  if (it == params.end() || it->is_null()) {
    if (fallback) return *fallback;
    return InvalidArgumentError(std::string("tiff params: missing '") + key + "'");
  }
  const json* v = &*it;
  // Per-sample tags may come as arrays; refzarr only represents uniform samples.
  if (v->is_array()) {
    if (v->empty()) return InvalidArgumentError(std::string("tiff params: empty '") + key + "'");
    for (const json& e : *v) {
      if (e != v->front()) {
        return UnsupportedError(std::string("tiff params: '") + key + "' differs between samples");
      }
    }
    v = &v->front();
  }
  if (!IsCount(*v)) {
    return InvalidArgumentError(std::string("tiff params: '") + key + "' is not a count");
  }
  uint64_t n = v->get<uint64_t>();
  if (n > max) {
    return InvalidArgumentError(std::string("tiff params: '") + key + "' = " + std::to_string(n) +
                                " is out of range");
  }
  return n;
}

// A list of base64 tables, null entries sharing the previous one.
Status ParseTables(const json& p, const char* key, size_t components, bool huffman,
                   std::vector<std::optional<std::string>>& out) {
  auto it = p.find(key);
  if (it == p.end() || it->is_null()) return OkStatus();
  if (!it->is_array()) return InvalidArgumentError(std::string("tiff params: '") + key + "' is not a list");
  if (it->empty()) return OkStatus();
  if (it->size() != components || !(*it)[0].is_string()) {
    return InvalidArgumentError(std::string("tiff params: '") + key + "' needs " +
                                std::to_string(components) + " tables, the first one given");
  }
  for (const json& e : *it) {
    if (e.is_null()) {
      out.emplace_back();
      continue;
    }
    if (!e.is_string()) return InvalidArgumentError(std::string("tiff params: bad '") + key + "'");
    ASSIGN_OR_RETURN(std::string table, DecodeBase64(e.get<std::string>()));
    size_t expected = 64;
    if (huffman) {
      expected = 16;
      for (size_t i = 0; i < 16 && i < table.size(); ++i) expected += static_cast<uint8_t>(table[i]);
    }
    if (table.size() != expected) {
      return InvalidArgumentError(std::string("tiff params: a table of '") + key + "' holds " +
                                  std::to_string(table.size()) + " bytes, expected " +
                                  std::to_string(expected));
    }
    out.push_back(std::move(table));
  }
  return OkStatus();
}

template <size_t N>
Status ParseFloats(const json& p, const char* key, float (&out)[N]) {
  auto it = p.find(key);
  if (it == p.end() || it->is_null()) return OkStatus();
  if (!it->is_array() || it->size() != N) {
    return InvalidArgumentError(std::string("tiff params: '") + key + "' needs " +
                                std::to_string(N) + " numbers");
  }
  for (size_t i = 0; i < N; ++i) {
    if (!(*it)[i].is_number()) return InvalidArgumentError(std::string("tiff params: bad '") + key + "'");
    out[i] = (*it)[i].get<float>();
  }
  return OkStatus();
}

// Old-style JPEG: the header and tables the scanner read (docs/contracts.md), and the layouts
// libtiff's codec decodes and GDAL serves: 8-bit grey, or 8-bit YCbCr pixels (interleaved).
Status ParseOldJpeg(const json& p, TiffParams& t) {
  auto header = p.find("ojpeg_header");
  if (header == p.end() || !header->is_string()) {
    return InvalidArgumentError("tiff params: old-style JPEG without 'ojpeg_header' (an index "
                                "written before refzarr decoded old-style JPEG: index the file again)");
  }
  ASSIGN_OR_RETURN(t.ojpeg.header, DecodeBase64(header->get<std::string>()));
  if (t.bits_per_sample != 8) {
    return UnsupportedError("tiff: old-style JPEG with " + std::to_string(t.bits_per_sample) +
                            "-bit samples (libjpeg decodes 8-bit ones)");
  }
  if (t.samples_per_pixel == 3) {
    if (t.photometric != PHOTOMETRIC_YCBCR) {
      return UnsupportedError("tiff: old-style JPEG with 3 samples in photometric " +
                              std::to_string(t.photometric) + " (only YCbCr is decoded)");
    }
    if (t.planar != PLANARCONFIG_CONTIG) {
      return UnsupportedError("tiff: old-style JPEG with separate sample planes");
    }
  } else if (t.samples_per_pixel != 1 || t.photometric > PHOTOMETRIC_MINISBLACK) {
    return UnsupportedError("tiff: old-style JPEG with " + std::to_string(t.samples_per_pixel) +
                            " samples in photometric " + std::to_string(t.photometric) +
                            " (only grey and YCbCr are decoded)");
  }
  const size_t components = t.samples_per_pixel;
  RETURN_IF_ERROR(ParseTables(p, "ojpeg_qtables", components, false, t.ojpeg.qtables));
  RETURN_IF_ERROR(ParseTables(p, "ojpeg_dctables", components, true, t.ojpeg.dctables));
  RETURN_IF_ERROR(ParseTables(p, "ojpeg_actables", components, true, t.ojpeg.actables));
  if (t.ojpeg.qtables.empty() != t.ojpeg.dctables.empty() ||
      t.ojpeg.qtables.empty() != t.ojpeg.actables.empty()) {
    return InvalidArgumentError("tiff params: old-style JPEG needs all three kinds of tables or none");
  }
  if (t.ojpeg.qtables.empty() && t.ojpeg.header.empty()) {
    return InvalidArgumentError("tiff params: old-style JPEG with neither a JPEG header nor tables");
  }
  ASSIGN_OR_RETURN(uint64_t proc, GetUint(p, "jpeg_proc", 1, 0xFFFF));
  ASSIGN_OR_RETURN(uint64_t restart, GetUint(p, "jpeg_restart_interval", 0, 0xFFFF));
  t.ojpeg.proc = static_cast<uint16_t>(proc);
  t.ojpeg.restart_interval = static_cast<uint16_t>(restart);
  RETURN_IF_ERROR(ParseFloats(p, "ycbcr_coefficients", t.ojpeg.ycbcr_coefficients));
  RETURN_IF_ERROR(ParseFloats(p, "reference_black_white", t.ojpeg.reference_black_white));
  // libtiff's codec decodes a tiled image as one JPEG frame one tile wide, the tiles one below
  // the other: with more than one tile across it decodes the first column's worth of rows only
  // (GDAL reads no more either).
  if (t.tiled && t.tile_width < t.image_width) {
    return UnsupportedError("tiff: old-style JPEG with " +
                            std::to_string((uint64_t{t.image_width} + t.tile_width - 1) / t.tile_width) +
                            " tiles across (libtiff's codec decodes a single tile column)");
  }
  // libtiff's codec, on a file of several strips, forces the restart interval to one strip and
  // refuses strips that are not whole rows of MCUs.
  const uint32_t sub_v = t.samples_per_pixel == 3 ? t.ycbcr_subsampling[1] : 1;
  const uint32_t strip_rows = t.tiled ? t.tile_length : t.rows_per_strip;
  if (strip_rows < t.image_length && strip_rows % (8 * sub_v) != 0) {
    return UnsupportedError("tiff: old-style JPEG " + std::string(t.tiled ? "tiles" : "strips") +
                            " of " + std::to_string(strip_rows) + " rows with vertical subsampling " +
                            std::to_string(sub_v) + " (libtiff needs multiples of " +
                            std::to_string(8 * sub_v) + ")");
  }
  return OkStatus();
}

Result<TiffParams> ParseParams(const json& p) {
  if (!p.is_object()) return InvalidArgumentError("tiff params: not an object");
  TiffParams t;
  ASSIGN_OR_RETURN(uint64_t compression, GetUint(p, "compression", 1, 0xFFFF));
  ASSIGN_OR_RETURN(uint64_t predictor, GetUint(p, "predictor", 1, 3));
  ASSIGN_OR_RETURN(uint64_t photometric, GetUint(p, "photometric", 1, 0xFFFF));
  ASSIGN_OR_RETURN(uint64_t bps, GetUint(p, "bits_per_sample", std::nullopt, 64));
  ASSIGN_OR_RETURN(uint64_t sample_format, GetUint(p, "sample_format", 1, 6));
  ASSIGN_OR_RETURN(uint64_t spp, GetUint(p, "samples_per_pixel", 1, 1024));
  ASSIGN_OR_RETURN(uint64_t planar, GetUint(p, "planar", 1, 2));
  ASSIGN_OR_RETURN(uint64_t fill_order, GetUint(p, "fill_order", 1, 2));
  ASSIGN_OR_RETURN(uint64_t width, GetUint(p, "image_width", std::nullopt, 0xFFFFFFFFu));
  ASSIGN_OR_RETURN(uint64_t length, GetUint(p, "image_length", std::nullopt, 0xFFFFFFFFu));
  t.compression = static_cast<uint16_t>(compression);
  t.predictor = static_cast<uint16_t>(predictor == 0 ? 1 : predictor);
  t.photometric = static_cast<uint16_t>(photometric);
  t.bits_per_sample = static_cast<uint16_t>(bps);
  t.sample_format = static_cast<uint16_t>(sample_format == 0 ? 1 : sample_format);
  t.samples_per_pixel = static_cast<uint16_t>(spp);
  t.planar = static_cast<uint16_t>(planar == 0 ? 1 : planar);
  t.fill_order = static_cast<uint16_t>(fill_order == 0 ? 1 : fill_order);
  t.image_width = static_cast<uint32_t>(width);
  t.image_length = static_cast<uint32_t>(length);
  if (bps == 0 || spp == 0 || width == 0 || length == 0) {
    return InvalidArgumentError("tiff params: zero bits_per_sample, samples_per_pixel or size");
  }
  auto tiled = p.find("tiled");
  t.tiled = tiled != p.end() && tiled->is_boolean() && tiled->get<bool>();
  if (t.tiled) {
    ASSIGN_OR_RETURN(uint64_t tw, GetUint(p, "tile_width", std::nullopt, 1u << 20));
    ASSIGN_OR_RETURN(uint64_t tl, GetUint(p, "tile_length", std::nullopt, 1u << 20));
    if (tw == 0 || tl == 0 || tw % 16 != 0 || tl % 16 != 0) {
      return InvalidArgumentError("tiff params: tile size " + std::to_string(tw) + "x" +
                                  std::to_string(tl) + " is not a positive multiple of 16");
    }
    t.tile_width = static_cast<uint32_t>(tw);
    t.tile_length = static_cast<uint32_t>(tl);
  } else {
    ASSIGN_OR_RETURN(uint64_t rps, GetUint(p, "rows_per_strip", length, 0xFFFFFFFFu));
    t.rows_per_strip = static_cast<uint32_t>(std::clamp<uint64_t>(rps, 1, length));
  }
  auto order = p.find("byte_order");
  if (order != p.end() && order->is_string()) {
    std::string o = order->get<std::string>();
    if (o != "<" && o != ">") return InvalidArgumentError("tiff params: byte_order '" + o + "'");
    t.big_endian = o == ">";
  }
  auto tables = p.find("jpeg_tables");
  if (tables != p.end() && tables->is_string()) {
    ASSIGN_OR_RETURN(t.jpeg_tables, DecodeBase64(tables->get<std::string>()));
  }
  auto sub = p.find("ycbcr_subsampling");
  if (sub != p.end() && sub->is_array()) {
    if (sub->size() != 2 || !IsCount((*sub)[0]) || !IsCount((*sub)[1])) {
      return InvalidArgumentError("tiff params: ycbcr_subsampling is not [h, v]");
    }
    uint64_t h = (*sub)[0].get<uint64_t>(), v = (*sub)[1].get<uint64_t>();
    auto valid = [](uint64_t s) { return s == 1 || s == 2 || s == 4; };
    if (!valid(h) || !valid(v)) {
      return InvalidArgumentError("tiff params: ycbcr_subsampling values must be 1, 2 or 4");
    }
    t.has_ycbcr_subsampling = true;
    t.ycbcr_subsampling[0] = static_cast<uint16_t>(h);
    t.ycbcr_subsampling[1] = static_cast<uint16_t>(v);
  }
  auto rgb = p.find("jpeg_colormode_rgb");
  t.jpeg_colormode_rgb = rgb != p.end() && rgb->is_boolean() && rgb->get<bool>();
  auto extra = p.find("extra_samples");
  if (extra != p.end() && extra->is_array()) {
    for (const json& e : *extra) {
      if (!IsCount(e) || e.get<uint64_t>() > 2) {
        return InvalidArgumentError("tiff params: bad extra_samples");
      }
      t.extra_samples.push_back(static_cast<uint16_t>(e.get<uint64_t>()));
    }
    if (t.extra_samples.size() >= t.samples_per_pixel) {
      return InvalidArgumentError("tiff params: more extra_samples than samples");
    }
  }
  for (auto [key, field] : {std::pair{"t4_options", &t.t4_options},
                            std::pair{"t6_options", &t.t6_options}}) {
    auto it = p.find(key);
    if (it != p.end() && IsCount(*it)) *field = it->get<int64_t>();
  }
  auto depth = p.find("image_depth");
  if (depth != p.end() && IsCount(*depth)) {
    t.image_depth = static_cast<uint32_t>(std::min<uint64_t>(depth->get<uint64_t>(), 0xFFFFFFFFu));
  }
  if (t.image_depth > 1) {
    return UnsupportedError("tiff: ImageDepth " + std::to_string(t.image_depth) + " (3-D tiles)");
  }
  if (!TIFFIsCODECConfigured(t.compression)) {
    return UnsupportedError("tiff: compression " + std::to_string(t.compression) +
                            " is not available in this libtiff");
  }
  if (t.compression == COMPRESSION_OJPEG) RETURN_IF_ERROR(ParseOldJpeg(p, t));
  return t;
}

// Writes one classic-TIFF IFD in the file's byte order.
class IfdWriter {
 public:
  explicit IfdWriter(bool big_endian) : big_(big_endian) {}

  void Short(uint16_t tag, std::vector<uint16_t> values) {
    Entry e{tag, 3, static_cast<uint32_t>(values.size()), {}, false};
    for (uint16_t v : values) Put16(e.value, v);
    entries_.push_back(std::move(e));
  }
  void Long(uint16_t tag, std::vector<uint32_t> values, bool is_byte_count = false) {
    Entry e{tag, 4, static_cast<uint32_t>(values.size()), {}, is_byte_count};
    for (uint32_t v : values) Put32(e.value, v);
    entries_.push_back(std::move(e));
  }
  void Undefined(uint16_t tag, std::string_view bytes) {
    Entry e{tag, 7, static_cast<uint32_t>(bytes.size()), {bytes.begin(), bytes.end()}, false};
    entries_.push_back(std::move(e));
  }

  // Lays out header + IFD + out-of-line values. Every offset-array entry (TileOffsets/StripOffsets)
  // must already hold `data_offset`, which the caller computes with DataOffset().
  void Finish(std::vector<uint8_t>& out, std::vector<size_t>& byte_count_positions) const {
    out.clear();
    byte_count_positions.clear();
    if (big_) {
      out.insert(out.end(), {'M', 'M', 0, 42});
    } else {
      out.insert(out.end(), {'I', 'I', 42, 0});
    }
    Put32(out, 8);
    std::vector<Entry> sorted = entries_;
    std::sort(sorted.begin(), sorted.end(), [](const Entry& a, const Entry& b) { return a.tag < b.tag; });
    Put16(out, static_cast<uint16_t>(sorted.size()));
    size_t external = 8 + 2 + 12 * sorted.size() + 4;
    std::vector<uint8_t> tail;
    for (const Entry& e : sorted) {
      Put16(out, e.tag);
      Put16(out, e.type);
      Put32(out, e.count);
      if (e.value.size() <= 4) {
        if (e.is_byte_count) {
          for (uint32_t i = 0; i < e.count; ++i) byte_count_positions.push_back(out.size() + 4 * i);
        }
        std::vector<uint8_t> v = e.value;
        v.resize(4, 0);
        out.insert(out.end(), v.begin(), v.end());
      } else {
        size_t at = external + tail.size();
        Put32(out, static_cast<uint32_t>(at));
        if (e.is_byte_count) {
          for (uint32_t i = 0; i < e.count; ++i) byte_count_positions.push_back(at + 4 * i);
        }
        tail.insert(tail.end(), e.value.begin(), e.value.end());
        if (tail.size() % 2) tail.push_back(0);
      }
    }
    Put32(out, 0);  // no next IFD
    out.insert(out.end(), tail.begin(), tail.end());
    out.resize(DataOffset(), 0);
  }

  // Where the chunk's stored bytes start: after header, IFD and out-of-line values, 16-aligned.
  size_t DataOffset() const {
    size_t n = 8 + 2 + 12 * entries_.size() + 4;
    for (const Entry& e : entries_) {
      if (e.value.size() > 4) n += e.value.size() + (e.value.size() % 2);
    }
    return (n + 15) / 16 * 16;
  }

  void Patch32(std::vector<uint8_t>& out, size_t at, uint32_t v) const {
    std::vector<uint8_t> b;
    Put32(b, v);
    std::memcpy(out.data() + at, b.data(), 4);
  }

 private:
  struct Entry {
    uint16_t tag;
    uint16_t type;
    uint32_t count;
    std::vector<uint8_t> value;
    bool is_byte_count;
  };
  void Put16(std::vector<uint8_t>& out, uint16_t v) const {
    if (big_) {
      out.push_back(static_cast<uint8_t>(v >> 8));
      out.push_back(static_cast<uint8_t>(v));
    } else {
      out.push_back(static_cast<uint8_t>(v));
      out.push_back(static_cast<uint8_t>(v >> 8));
    }
  }
  void Put32(std::vector<uint8_t>& out, uint32_t v) const {
    if (big_) {
      Put16(out, static_cast<uint16_t>(v >> 16));
      Put16(out, static_cast<uint16_t>(v));
    } else {
      Put16(out, static_cast<uint16_t>(v));
      Put16(out, static_cast<uint16_t>(v >> 16));
    }
  }

  bool big_;
  std::vector<Entry> entries_;
};

// The in-memory TIFF of one segment geometry: header + IFD, then the stored bytes at data_offset.
struct Template {
  std::vector<uint8_t> head;
  std::vector<size_t> byte_count_positions;
  bool big_endian = false;
};

// libtiff's old-style JPEG codec on a file of several strips (or tiles) sets the restart
// interval to one strip's MCUs (OJPEGReadHeaderInfo); a file of one strip keeps the tag's. The
// in-memory file holds one strip, so it is given the interval the whole file would have.
uint16_t OldJpegRestartInterval(const TiffParams& p) {
  const uint32_t strip_rows = p.tiled ? p.tile_length : p.rows_per_strip;
  if (strip_rows >= p.image_length) return p.ojpeg.restart_interval;
  const uint32_t width = p.tiled ? p.tile_width : p.image_width;
  const uint32_t h = p.samples_per_pixel == 3 ? p.ycbcr_subsampling[0] : 1;
  const uint32_t v = p.samples_per_pixel == 3 ? p.ycbcr_subsampling[1] : 1;
  return static_cast<uint16_t>((width + h * 8 - 1) / (h * 8) * (strip_rows / (v * 8)));
}

void PutMarker(std::string& out, uint8_t marker, std::string_view payload) {
  const size_t length = payload.size() + 2;
  out += static_cast<char>(0xFF);
  out += static_cast<char>(marker);
  out += static_cast<char>(length >> 8);
  out += static_cast<char>(length & 0xFF);
  out += payload;
}

// The JPEG header libtiff's old-style JPEG codec itself builds from JPEGQTables, JPEGDCTables and
// JPEGACTables when the file's JPEG stream has no frame header (OJPEGReadHeaderInfoSecTables*,
// OJPEGWriteStream*): one DQT and DHT per component's own table, SOF0 of one strip's width and
// the image's height, SOS. Handing libtiff the header whole, rather than the tables, keeps it
// from reading the chunk's first bytes as markers (entropy-coded data may start with 0xFF).
std::string OldJpegHeaderFromTables(const TiffParams& p) {
  const TiffParams::OldJpeg& j = p.ojpeg;
  const size_t n = j.qtables.size();
  std::string out = j.header;
  std::vector<uint8_t> tq(n), td(n), ta(n);
  for (size_t m = 0; m < n; ++m) {
    const auto id = static_cast<uint8_t>(m);
    if (j.qtables[m]) PutMarker(out, 0xDB, std::string(1, static_cast<char>(id)) + *j.qtables[m]);
    if (j.dctables[m]) PutMarker(out, 0xC4, std::string(1, static_cast<char>(id)) + *j.dctables[m]);
    if (j.actables[m]) {
      PutMarker(out, 0xC4, std::string(1, static_cast<char>(0x10 | id)) + *j.actables[m]);
    }
    tq[m] = j.qtables[m] ? id : tq[m - 1];
    td[m] = j.dctables[m] ? id : td[m - 1];
    ta[m] = j.actables[m] ? id : ta[m - 1];
  }
  const uint32_t width = p.tiled ? p.tile_width : p.image_width;
  const uint64_t height = p.tiled ? (uint64_t{p.image_length} + p.tile_length - 1) / p.tile_length *
                                        p.tile_length
                                  : p.image_length;
  const uint8_t h = n == 3 ? p.ycbcr_subsampling[0] : 1, v = n == 3 ? p.ycbcr_subsampling[1] : 1;
  std::string sof = {8, static_cast<char>(std::min<uint64_t>(height, 0xFFFF) >> 8),
                     static_cast<char>(std::min<uint64_t>(height, 0xFFFF) & 0xFF),
                     static_cast<char>(std::min<uint32_t>(width, 0xFFFF) >> 8),
                     static_cast<char>(std::min<uint32_t>(width, 0xFFFF) & 0xFF),
                     static_cast<char>(n)};
  std::string sos(1, static_cast<char>(n));
  for (size_t m = 0; m < n; ++m) {
    sof += {static_cast<char>(m), static_cast<char>(m == 0 ? (h << 4 | v) : 0x11),
            static_cast<char>(tq[m])};
    sos += {static_cast<char>(m), static_cast<char>(td[m] << 4 | ta[m])};
  }
  sos += {0, 63, 0};
  PutMarker(out, 0xC0, sof);
  PutMarker(out, 0xDA, sos);
  return out;
}

Template BuildTemplate(const TiffParams& p, uint32_t width, uint32_t rows) {
  const uint16_t spp = p.samples_per_pixel;
  const uint32_t segments = p.planar == 2 ? spp : 1;
  uint16_t photometric = p.photometric;
  // Decoding never looks at a palette; libtiff refuses a palette image without a ColorMap.
  if (photometric == PHOTOMETRIC_PALETTE) photometric = PHOTOMETRIC_MINISBLACK;
  const bool ojpeg = p.compression == COMPRESSION_OJPEG;
  // Bytes between the IFD and the stored chunk: the old-style JPEG header (JPEGInterchangeFormat).
  std::string prefix;
  if (ojpeg) prefix = p.ojpeg.qtables.empty() ? p.ojpeg.header : OldJpegHeaderFromTables(p);
  // Every entry; `base` is where the bytes after the IFD start, which depends on the number and
  // sizes of the entries only, not on their values.
  auto add_all = [&](IfdWriter& w, uint32_t base) {
    w.Long(TIFFTAG_IMAGEWIDTH, {width});
    w.Long(TIFFTAG_IMAGELENGTH, {rows});
    w.Short(TIFFTAG_BITSPERSAMPLE, std::vector<uint16_t>(spp, p.bits_per_sample));
    w.Short(TIFFTAG_COMPRESSION, {p.compression});
    w.Short(TIFFTAG_PHOTOMETRIC, {photometric});
    if (p.fill_order != 1) w.Short(TIFFTAG_FILLORDER, {p.fill_order});
    w.Short(TIFFTAG_SAMPLESPERPIXEL, {spp});
    w.Short(TIFFTAG_PLANARCONFIG, {p.planar});
    if (p.t4_options >= 0) w.Long(TIFFTAG_T4OPTIONS, {static_cast<uint32_t>(p.t4_options)});
    if (p.t6_options >= 0) w.Long(TIFFTAG_T6OPTIONS, {static_cast<uint32_t>(p.t6_options)});
    if (p.predictor != 1) w.Short(TIFFTAG_PREDICTOR, {p.predictor});
    std::vector<uint16_t> extra = p.extra_samples;
    if (extra.empty()) {
      int base_samples = (photometric == PHOTOMETRIC_RGB || photometric == PHOTOMETRIC_YCBCR ||
                          photometric == PHOTOMETRIC_CIELAB)
                             ? 3
                             : photometric == PHOTOMETRIC_SEPARATED ? 4 : 1;
      if (spp > base_samples) extra.assign(spp - base_samples, EXTRASAMPLE_UNSPECIFIED);
    }
    if (!extra.empty()) w.Short(TIFFTAG_EXTRASAMPLES, extra);
    w.Short(TIFFTAG_SAMPLEFORMAT, std::vector<uint16_t>(spp, p.sample_format));
    if (!p.jpeg_tables.empty()) w.Undefined(TIFFTAG_JPEGTABLES, p.jpeg_tables);
    if (photometric == PHOTOMETRIC_YCBCR && p.has_ycbcr_subsampling) {
      w.Short(TIFFTAG_YCBCRSUBSAMPLING, {p.ycbcr_subsampling[0], p.ycbcr_subsampling[1]});
    }
    if (ojpeg) {
      w.Short(TIFFTAG_JPEGPROC, {p.ojpeg.proc});
      w.Short(TIFFTAG_JPEGRESTARTINTERVAL, {OldJpegRestartInterval(p)});
      if (!prefix.empty()) {
        w.Long(TIFFTAG_JPEGIFOFFSET, {base});
        w.Long(TIFFTAG_JPEGIFBYTECOUNT, {static_cast<uint32_t>(prefix.size())});
      }
    }
    // Offsets and counts: one segment per plane, all pointing at the same stored bytes; the
    // counts are patched for each chunk.
    const uint32_t data = base + static_cast<uint32_t>(prefix.size());
    std::vector<uint32_t> offsets(segments, data), counts(segments, 0);
    if (p.tiled) {
      w.Long(TIFFTAG_TILEWIDTH, {p.tile_width});
      w.Long(TIFFTAG_TILELENGTH, {p.tile_length});
      w.Long(TIFFTAG_TILEOFFSETS, offsets);
      w.Long(TIFFTAG_TILEBYTECOUNTS, counts, /*is_byte_count=*/true);
    } else {
      w.Long(TIFFTAG_ROWSPERSTRIP, {rows});
      w.Long(TIFFTAG_STRIPOFFSETS, offsets);
      w.Long(TIFFTAG_STRIPBYTECOUNTS, counts, /*is_byte_count=*/true);
    }
  };
  IfdWriter probe(p.big_endian);
  add_all(probe, 0);
  IfdWriter w(p.big_endian);
  add_all(w, static_cast<uint32_t>(probe.DataOffset()));
  Template t;
  t.big_endian = p.big_endian;
  w.Finish(t.head, t.byte_count_positions);
  t.head.insert(t.head.end(), prefix.begin(), prefix.end());
  return t;
}

// The stored chunk as a read-only, memory-mapped "file" for TIFFClientOpenExt.
struct MemFile {
  const uint8_t* data = nullptr;
  uint64_t size = 0;
  uint64_t pos = 0;
};

tmsize_t MemRead(thandle_t h, void* buf, tmsize_t n) {
  auto* f = static_cast<MemFile*>(h);
  if (n <= 0 || f->pos >= f->size) return 0;
  uint64_t k = std::min<uint64_t>(static_cast<uint64_t>(n), f->size - f->pos);
  std::memcpy(buf, f->data + f->pos, k);
  f->pos += k;
  return static_cast<tmsize_t>(k);
}
tmsize_t MemWrite(thandle_t, void*, tmsize_t) { return 0; }
toff_t MemSeek(thandle_t h, toff_t off, int whence) {
  auto* f = static_cast<MemFile*>(h);
  uint64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? f->pos : f->size;
  f->pos = base + off;
  return f->pos;
}
int MemClose(thandle_t) { return 0; }
toff_t MemSize(thandle_t h) { return static_cast<MemFile*>(h)->size; }
int MemMap(thandle_t h, void** base, toff_t* size) {
  auto* f = static_cast<MemFile*>(h);
  *base = const_cast<uint8_t*>(f->data);
  *size = f->size;
  return 1;
}
void MemUnmap(thandle_t, void*, toff_t) {}

// libtiff's per-handle handlers: errors are collected for the Status, warnings dropped, and both
// return 1 so libtiff's global handlers (which print to stderr) never run.
int CollectError(TIFF*, void* user, const char* module, const char* fmt, va_list ap) {
  try {
    auto* sink = static_cast<std::string*>(user);
    char buf[512];
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    if (sink->size() < 2048) {
      if (!sink->empty()) sink->append("; ");
      sink->append(buf);
    }
  } catch (...) {
  }
  return 1;
}
int DropWarning(TIFF*, void*, const char*, const char*, va_list) { return 1; }

struct TiffCloser {
  void operator()(TIFF* t) const { TIFFClose(t); }
};
struct OptionsFree {
  void operator()(TIFFOpenOptions* o) const { TIFFOpenOptionsFree(o); }
};

struct CachedParams {
  TiffParams params;
  std::unordered_map<uint64_t, Template> templates;  // by (width << 32 | rows)
};

// Per-thread decoder state: parsed params and built templates by params text, plus scratch buffers.
struct ThreadState {
  std::unordered_map<std::string, CachedParams> by_params;
  std::unique_ptr<TIFFOpenOptions, OptionsFree> options;
  std::string errors;
  std::vector<uint8_t> file;
  std::vector<uint8_t> decoded;
};

ThreadState& State() {
  thread_local ThreadState state;
  if (!state.options) {
    state.options.reset(TIFFOpenOptionsAlloc());
    TIFFOpenOptionsSetErrorHandlerExtR(state.options.get(), CollectError, &state.errors);
    TIFFOpenOptionsSetWarningHandlerExtR(state.options.get(), DropWarning, nullptr);
    // Garbage params or bytes must not make libtiff allocate without bound.
    TIFFOpenOptionsSetMaxSingleMemAlloc(state.options.get(), 1ll << 30);
  }
  return state;
}

inline void ByteSwapInPlace(uint8_t* p, uint32_t size) { std::reverse(p, p + size); }

// Copies whole-byte samples (host order after libtiff) into the C-order chunk, de-interleaving
// `samples` interleaved samples into planes, and byte-swapping to big-endian when asked.
template <uint32_t kSize>
void CopySamples(const uint8_t* in, size_t in_stride, uint32_t rows, uint32_t cols,
                 uint32_t samples, uint8_t* out, uint64_t out_h, uint64_t out_w, bool swap) {
  for (uint32_t y = 0; y < rows; ++y) {
    const uint8_t* row = in + y * in_stride;
    if (samples == 1) {
      uint8_t* dst = out + (y * out_w) * kSize;
      std::memcpy(dst, row, static_cast<size_t>(cols) * kSize);
      if (swap) {
        for (uint32_t x = 0; x < cols; ++x) ByteSwapInPlace(dst + x * kSize, kSize);
      }
      continue;
    }
    for (uint32_t s = 0; s < samples; ++s) {
      uint8_t* dst = out + ((s * out_h + y) * out_w) * kSize;
      const uint8_t* src = row + s * kSize;
      for (uint32_t x = 0; x < cols; ++x) {
        std::memcpy(dst + x * kSize, src + static_cast<size_t>(x) * samples * kSize, kSize);
      }
      if (swap) {
        for (uint32_t x = 0; x < cols; ++x) ByteSwapInPlace(dst + x * kSize, kSize);
      }
    }
  }
}

void CopySamplesGeneric(uint32_t size, const uint8_t* in, size_t in_stride, uint32_t rows,
                        uint32_t cols, uint32_t samples, uint8_t* out, uint64_t out_h,
                        uint64_t out_w, bool swap) {
  switch (size) {
    case 1: return CopySamples<1>(in, in_stride, rows, cols, samples, out, out_h, out_w, false);
    case 2: return CopySamples<2>(in, in_stride, rows, cols, samples, out, out_h, out_w, swap);
    case 4: return CopySamples<4>(in, in_stride, rows, cols, samples, out, out_h, out_w, swap);
    case 8: return CopySamples<8>(in, in_stride, rows, cols, samples, out, out_h, out_w, swap);
  }
}

// Unpacks samples of `bits` bits (MSB first, rows starting on a byte) into `size`-byte integers.
void UnpackBits(uint32_t bits, uint32_t size, const uint8_t* in, size_t in_stride, uint32_t rows,
                uint32_t cols, uint32_t samples, uint8_t* out, uint64_t out_h, uint64_t out_w,
                bool big_endian_out) {
  for (uint32_t y = 0; y < rows; ++y) {
    const uint8_t* row = in + y * in_stride;
    uint64_t bit = 0;
    for (uint32_t x = 0; x < cols; ++x) {
      for (uint32_t s = 0; s < samples; ++s) {
        uint64_t v = 0;
        for (uint32_t i = 0; i < bits; ++i, ++bit) {
          v = (v << 1) | ((row[bit >> 3] >> (7 - (bit & 7))) & 1u);
        }
        uint8_t* dst = out + ((s * out_h + y) * out_w + x) * size;
        for (uint32_t b = 0; b < size; ++b) {
          uint32_t shift = 8 * (big_endian_out ? size - 1 - b : b);
          dst[b] = static_cast<uint8_t>(v >> shift);
        }
      }
    }
  }
}

// Constraints libtiff's codecs check only when they start decoding (a TIFFReadEncoded* call
// then fails whatever the bytes): predictors, and the sample layouts each codec takes.
Status CheckCodecLayout(const TiffParams& p) {
  const uint16_t c = p.compression, bps = p.bits_per_sample;
  const bool predicts = c == COMPRESSION_LZW || c == COMPRESSION_DEFLATE ||
                        c == COMPRESSION_ADOBE_DEFLATE || c == COMPRESSION_ZSTD ||
                        c == COMPRESSION_LZMA || c == COMPRESSION_PIXARLOG;
  if (predicts && p.predictor == PREDICTOR_HORIZONTAL && bps != 8 && bps != 16 && bps != 32 &&
      bps != 64) {
    return UnsupportedError("tiff: horizontal predictor with " + std::to_string(bps) +
                            "-bit samples (libtiff refuses it)");
  }
  if (predicts && p.predictor == PREDICTOR_FLOATINGPOINT &&
      (p.sample_format != SAMPLEFORMAT_IEEEFP || (bps != 16 && bps != 24 && bps != 32 && bps != 64))) {
    return UnsupportedError("tiff: floating-point predictor with " + std::to_string(bps) +
                            "-bit samples of SampleFormat " + std::to_string(p.sample_format) +
                            " (libtiff refuses it)");
  }
  if (c == COMPRESSION_JPEG && bps != 8) {
    return UnsupportedError("tiff: JPEG with " + std::to_string(bps) +
                            "-bit samples (this libtiff decodes 8-bit JPEG)");
  }
  if (c == COMPRESSION_WEBP && (bps != 8 || (p.samples_per_pixel != 3 && p.samples_per_pixel != 4))) {
    return UnsupportedError("tiff: WebP with " + std::to_string(p.samples_per_pixel) + " " +
                            std::to_string(bps) + "-bit samples (libtiff takes 3 or 4 8-bit ones)");
  }
  if (c == COMPRESSION_WEBP && p.planar != PLANARCONFIG_CONTIG) {
    return UnsupportedError("tiff: WebP with separate sample planes (libtiff refuses it)");
  }
  if (c == COMPRESSION_JPEG && p.photometric == PHOTOMETRIC_YCBCR && p.jpeg_colormode_rgb &&
      p.samples_per_pixel != 3) {
    return UnsupportedError("tiff: JPEG YCbCr with " + std::to_string(p.samples_per_pixel) +
                            " samples (libtiff converts 3 to RGB)");
  }
  // Codecs of a fixed sample size.
  struct Fixed {
    uint16_t compression, bits;
    const char* name;
  };
  for (const Fixed& f : {Fixed{COMPRESSION_CCITTRLE, 1, "CCITT"}, Fixed{COMPRESSION_CCITTFAX3, 1, "CCITT"},
                         Fixed{COMPRESSION_CCITTFAX4, 1, "CCITT"}, Fixed{COMPRESSION_CCITTRLEW, 1, "CCITT"},
                         Fixed{COMPRESSION_JBIG, 1, "JBIG"}, Fixed{COMPRESSION_THUNDERSCAN, 4, "ThunderScan"},
                         Fixed{COMPRESSION_NEXT, 2, "NeXT"}}) {
    if (c == f.compression && (bps != f.bits || p.samples_per_pixel != 1)) {
      return UnsupportedError("tiff: " + std::string(f.name) + " compression of " +
                              std::to_string(p.samples_per_pixel) + " " + std::to_string(bps) +
                              "-bit samples (libtiff takes one " + std::to_string(f.bits) + "-bit sample)");
    }
  }
  if ((c == COMPRESSION_JBIG || c == COMPRESSION_THUNDERSCAN) && p.tiled) {
    return UnsupportedError("tiff: compression " + std::to_string(c) +
                            " in tiles (libtiff decodes it in strips only)");
  }
  // SGILog and PixarLog decode into a data format libtiff guesses from the sample layout; without
  // one they refuse, and PixarLog's 11- and 12-bit formats are not the stored sample size.
  const uint16_t sf = p.sample_format, spp = p.samples_per_pixel;
  const bool fp32 = bps == 32 && sf == SAMPLEFORMAT_IEEEFP;
  const bool int16 = bps == 16 && sf != SAMPLEFORMAT_IEEEFP;
  const bool uint8 = bps == 8 && (sf == SAMPLEFORMAT_UINT || sf == SAMPLEFORMAT_VOID);
  const bool uint16 = bps == 16 && (sf == SAMPLEFORMAT_UINT || sf == SAMPLEFORMAT_VOID);
  if (c == COMPRESSION_SGILOG || c == COMPRESSION_SGILOG24) {
    const bool raw32 = bps == 32 && sf != SAMPLEFORMAT_IEEEFP;
    const bool ok = p.photometric == PHOTOMETRIC_LOGLUV
                        ? (spp == 3 && (fp32 || int16 || uint8)) || (spp == 1 && raw32)
                        : p.photometric == PHOTOMETRIC_LOGL && c == COMPRESSION_SGILOG && spp == 1 &&
                              (fp32 || int16 || uint8);
    if (!ok) {
      return UnsupportedError("tiff: SGILog compression of " + std::to_string(spp) + " " +
                              std::to_string(bps) + "-bit samples of SampleFormat " +
                              std::to_string(sf) + " in photometric " +
                              std::to_string(p.photometric) + " (libtiff has no data format for it)");
    }
  }
  if (c == COMPRESSION_PIXARLOG && !(fp32 || uint16 || uint8)) {
    return UnsupportedError("tiff: PixarLog compression of " + std::to_string(bps) +
                            "-bit samples of SampleFormat " + std::to_string(sf) +
                            " (decoded only to 8-, 16- or 32-bit float samples)");
  }
  return OkStatus();
}

// Whether the old-style JPEG YCbCr chunk is decoded through libtiff's RGBA interface, as GDAL
// does: libtiff's codec hands over subsampled YCbCr, which TIFFReadRGBA* converts to RGB.
bool DecodesToRgba(const TiffParams& p) {
  return p.compression == COMPRESSION_OJPEG && p.samples_per_pixel == 3;
}

// Rows and width of the stored segment the chunk at row `chunk_row` of the grid holds.
struct Segment {
  uint32_t width = 0, rows = 0;  // as stored: a whole tile, or a strip's rows in the image
  uint32_t rows_in_image = 0;    // of those, the rows inside the image
};

Result<Segment> SegmentOf(const TiffParams& p, uint64_t chunk_row) {
  const uint64_t rows = p.tiled ? p.tile_length : p.rows_per_strip;
  const uint64_t first_row = chunk_row * rows;
  if (first_row >= p.image_length) {
    return InvalidArgumentError(std::string(p.tiled ? "tile" : "strip") + " row " +
                                std::to_string(chunk_row) + " starts below the image");
  }
  const auto inside = static_cast<uint32_t>(std::min<uint64_t>(rows, p.image_length - first_row));
  if (p.tiled) return Segment{p.tile_width, p.tile_length, inside};
  return Segment{p.image_width, inside, inside};
}

// Everything about `array` that the params must agree with, so that a chunk is decoded into the
// chunk the array declares: no rows or samples left over, none fabricated.
Status CheckGeometry(const ArrayDesc& array, const TiffParams& p) {
  if (array.chunks.size() != 5 || array.shape.size() != 5) {
    return InvalidArgumentError("expected a 5-D (t,c,z,y,x) array");
  }
  if (array.shape[3] != p.image_length || array.shape[4] != p.image_width) {
    return InvalidArgumentError("array of " + std::to_string(array.shape[4]) + "x" +
                                std::to_string(array.shape[3]) + " pixels, params describe " +
                                std::to_string(p.image_width) + "x" + std::to_string(p.image_length));
  }
  const uint64_t out_samples = p.planar == 1 ? p.samples_per_pixel : 1;
  const uint64_t planes = array.chunks[0] * array.chunks[1] * array.chunks[2];
  if (planes != out_samples) {
    return InvalidArgumentError("chunk holds " + std::to_string(planes) + " planes, expected " +
                                std::to_string(out_samples) + " samples");
  }
  const uint64_t rows = p.tiled ? p.tile_length : p.rows_per_strip;
  const uint64_t cols = p.tiled ? p.tile_width : p.image_width;
  if (array.chunks[3] != rows || array.chunks[4] != cols) {
    return InvalidArgumentError("chunks of " + std::to_string(array.chunks[4]) + "x" +
                                std::to_string(array.chunks[3]) + " pixels, the " +
                                (p.tiled ? "tiles" : "strips") + " are " + std::to_string(cols) +
                                "x" + std::to_string(rows));
  }
  const uint32_t size = array.dtype.size;
  const uint16_t bps = p.bits_per_sample;
  if (bps > size * 8) {
    return InvalidArgumentError(std::to_string(bps) + "-bit samples do not fit " +
                                array.dtype.ToV2().dump());
  }
  const bool whole = bps % 8 == 0 && bps / 8 == size && (size == 1 || size == 2 || size == 4 || size == 8);
  if (bps % 8 == 0 && bps > 8 && !whole && bps != 24) {
    return UnsupportedError(std::to_string(bps) + "-bit samples into a " + std::to_string(size) +
                            "-byte dtype");
  }
  if (p.photometric == PHOTOMETRIC_YCBCR && p.has_ycbcr_subsampling &&
      (p.ycbcr_subsampling[0] != 1 || p.ycbcr_subsampling[1] != 1) &&
      !(p.compression == COMPRESSION_JPEG && p.jpeg_colormode_rgb) && !DecodesToRgba(p)) {
    return UnsupportedError("subsampled YCbCr without JPEG RGB conversion");
  }
  // The decoded segment must stay a reasonable buffer.
  const uint64_t row_bytes = DecodesToRgba(p) ? uint64_t{4} * cols
                                              : (cols * out_samples * bps + 7) / 8;
  if (row_bytes * rows > (uint64_t{1} << 31)) {
    return UnsupportedError("a decoded " + std::string(p.tiled ? "tile" : "strip") + " of " +
                            std::to_string(row_bytes * rows) + " bytes (limit 2 GiB)");
  }
  return CheckCodecLayout(p);
}

class TiffChunkDecoder final : public ChunkDecoder {
 public:
  std::string_view Family() const override { return "tiff"; }

  // Everything Decode() would refuse before looking at the stored bytes, including what libtiff
  // says of the in-memory TIFF of each segment geometry (a full and, for strips, the last one).
  Status CheckArray(const ArrayDesc& array) const override {
    ASSIGN_OR_RETURN(TiffParams p, ParseParams(array.encoding.params));
    RETURN_IF_ERROR(CheckGeometry(array, p));
    const uint64_t rows = p.tiled ? p.tile_length : p.rows_per_strip;
    const uint64_t last_row = (p.image_length - 1) / rows;
    ThreadState& st = State();
    for (uint64_t chunk_row : {uint64_t{0}, last_row}) {
      ASSIGN_OR_RETURN(Segment seg, SegmentOf(p, chunk_row));
      Template t = BuildTemplate(p, seg.width, seg.rows);
      MemFile mem{t.head.data(), t.head.size(), 0};
      st.errors.clear();
      std::unique_ptr<TIFF, TiffCloser> tif(
          TIFFClientOpenExt("chunk", "rc", &mem, MemRead, MemWrite, MemSeek, MemClose, MemSize,
                            MemMap, MemUnmap, st.options.get()));
      if (!tif) return UnsupportedError("libtiff refuses the chunk's description: " + st.errors);
      const int64_t size = p.tiled ? TIFFTileSize64(tif.get()) : TIFFStripSize64(tif.get());
      if (size <= 0) return UnsupportedError("libtiff computes no decoded size: " + st.errors);
      char why[1024] = "";
      if (DecodesToRgba(p) && !TIFFRGBAImageOK(tif.get(), why)) {
        return UnsupportedError(std::string("libtiff cannot convert the chunk to RGB: ") + why);
      }
    }
    return OkStatus();
  }

  Status Decode(const ArrayDesc& array, std::span<const uint64_t> coords, const ChunkRef& ref,
                std::span<const std::byte> stored, std::span<std::byte> out) const override {
    Status s = DecodeImpl(array, coords, stored, out);
    if (s.ok()) return s;
    std::string where = "tiff chunk";
    for (size_t i = 0; i < coords.size(); ++i) {
      where += (i == 0 ? " (" : ",") + std::to_string(coords[i]);
    }
    if (!coords.empty()) where += ")";
    where += " at offset " + std::to_string(ref.offset);
    return s.WithContext(where);
  }

 private:
  Status DecodeImpl(const ArrayDesc& array, std::span<const uint64_t> coords,
                    std::span<const std::byte> stored, std::span<std::byte> out) const {
    ThreadState& st = State();
    std::string key = array.encoding.params.dump();
    auto cached = st.by_params.find(key);
    if (cached == st.by_params.end()) {
      ASSIGN_OR_RETURN(TiffParams parsed, ParseParams(array.encoding.params));
      if (st.by_params.size() >= 64) st.by_params.clear();
      cached = st.by_params.emplace(std::move(key), CachedParams{std::move(parsed), {}}).first;
    }
    const TiffParams& p = cached->second.params;
    RETURN_IF_ERROR(CheckGeometry(array, p));
    if (coords.size() != 5) return InvalidArgumentError("expected 5 chunk coordinates");
    if (out.size() != array.ChunkBytes()) {
      return InvalidArgumentError("output holds " + std::to_string(out.size()) + " bytes, chunk is " +
                                  std::to_string(array.ChunkBytes()));
    }
    const uint32_t spp = p.samples_per_pixel;
    const uint32_t out_samples = (p.planar == 1) ? spp : 1;
    const uint64_t out_h = array.chunks[3], out_w = array.chunks[4];
    const uint32_t size = array.dtype.size;
    ASSIGN_OR_RETURN(Segment seg, SegmentOf(p, coords[3]));
    const uint32_t plane = p.planar == 2 ? static_cast<uint32_t>(coords[1] % spp) : 0;
    const bool ycbcr = p.photometric == PHOTOMETRIC_YCBCR;
    const bool jpeg = p.compression == COMPRESSION_JPEG;
    if (stored.size() > 0xFFFFFFF0u) return UnsupportedError("stored chunk larger than 4 GiB");

    uint64_t template_key = (static_cast<uint64_t>(seg.width) << 32) | seg.rows;
    auto& templates = cached->second.templates;
    auto tmpl = templates.find(template_key);
    if (tmpl == templates.end()) {
      if (templates.size() >= 16) templates.clear();
      tmpl = templates.emplace(template_key, BuildTemplate(p, seg.width, seg.rows)).first;
    }
    const Template& t = tmpl->second;

    // The in-memory file: template, then the stored bytes; counts patched to their size. Mode "c":
    // libtiff must not chop a large uncompressed strip into smaller ones.
    st.file.assign(t.head.begin(), t.head.end());
    IfdWriter patcher(t.big_endian);
    for (size_t at : t.byte_count_positions) {
      patcher.Patch32(st.file, at, static_cast<uint32_t>(stored.size()));
    }
    st.file.insert(st.file.end(), reinterpret_cast<const uint8_t*>(stored.data()),
                   reinterpret_cast<const uint8_t*>(stored.data()) + stored.size());
    MemFile mem{st.file.data(), st.file.size(), 0};
    st.errors.clear();
    std::unique_ptr<TIFF, TiffCloser> tif(
        TIFFClientOpenExt("chunk", "rc", &mem, MemRead, MemWrite, MemSeek, MemClose, MemSize, MemMap,
                          MemUnmap, st.options.get()));
    if (!tif) return CorruptError("libtiff cannot describe the chunk: " + st.errors);
    if (jpeg && ycbcr && p.jpeg_colormode_rgb) {
      if (!TIFFSetField(tif.get(), TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB)) {
        return InternalError("libtiff refused JPEGCOLORMODE_RGB: " + st.errors);
      }
    }
    const uint32_t cols = static_cast<uint32_t>(std::min<uint64_t>(seg.width, out_w));
    auto* dst = reinterpret_cast<uint8_t*>(out.data());
    if (DecodesToRgba(p)) return DecodeRgba(tif.get(), p, seg, cols, out_h, out_w, dst, st.errors);

    const int64_t expected = p.tiled ? TIFFTileSize64(tif.get()) : TIFFStripSize64(tif.get());
    if (expected <= 0 || expected > (int64_t{1} << 31)) {
      return InvalidArgumentError("libtiff computes a decoded size of " + std::to_string(expected) +
                                  " bytes: " + st.errors);
    }
    st.decoded.resize(static_cast<size_t>(expected));
    tmsize_t got = p.tiled ? TIFFReadEncodedTile(tif.get(), plane, st.decoded.data(), expected)
                           : TIFFReadEncodedStrip(tif.get(), plane, st.decoded.data(), expected);
    if (got < 0) {
      return CorruptError("libtiff cannot decode compression " + std::to_string(p.compression) +
                          ": " + (st.errors.empty() ? "no message" : st.errors));
    }

    // libtiff's layout: rows of seg.width pixels, each row padded to a byte. The chunk's rows
    // inside the image must all be decoded: fewer is damage, never zero rows.
    const uint32_t row_samples = seg.width * out_samples;
    const size_t in_stride = (static_cast<uint64_t>(row_samples) * p.bits_per_sample + 7) / 8;
    const uint64_t decoded_rows = static_cast<uint64_t>(got) / in_stride;
    if (decoded_rows < seg.rows_in_image) {
      return CorruptError("decodes to " + std::to_string(got) + " bytes (" +
                          std::to_string(decoded_rows) + " rows), its " +
                          std::to_string(seg.rows_in_image) + " rows in the image need " +
                          std::to_string(in_stride * seg.rows_in_image));
    }
    const uint32_t rows = static_cast<uint32_t>(std::min<uint64_t>(seg.rows, out_h));
    const bool big_out = array.dtype.byte_order == '>';
    const uint16_t bps = p.bits_per_sample;
    if (bps % 8 == 0 && bps / 8 == size && (size == 1 || size == 2 || size == 4 || size == 8)) {
      CopySamplesGeneric(size, st.decoded.data(), in_stride, rows, cols, out_samples, dst, out_h, out_w,
                         big_out);
    } else if (bps == 24) {
      // libtiff hands 24-bit samples over in host (little-endian) order.
      for (uint32_t y = 0; y < rows; ++y) {
        for (uint32_t x = 0; x < cols; ++x) {
          for (uint32_t s = 0; s < out_samples; ++s) {
            const uint8_t* src = st.decoded.data() + y * in_stride + (x * out_samples + s) * 3;
            uint64_t v = src[0] | (src[1] << 8) | (static_cast<uint32_t>(src[2]) << 16);
            uint8_t* d = dst + ((s * out_h + y) * out_w + x) * size;
            for (uint32_t b = 0; b < size; ++b) {
              d[b] = static_cast<uint8_t>(v >> (8 * (big_out ? size - 1 - b : b)));
            }
          }
        }
      }
    } else {
      UnpackBits(bps, size, st.decoded.data(), in_stride, rows, cols, out_samples, dst, out_h, out_w,
                 big_out);
    }
    return OkStatus();
  }

  // Old-style JPEG YCbCr: libtiff converts to RGB with the file's YCbCrCoefficients and
  // ReferenceBlackWhite, which is what GDAL serves for such files (it reads them the same way).
  static Status DecodeRgba(TIFF* tif, const TiffParams& p, const Segment& seg, uint32_t cols,
                           uint64_t out_h, uint64_t out_w, uint8_t* dst, const std::string& errors) {
    float coefficients[3], black_white[6];
    std::copy(std::begin(p.ojpeg.ycbcr_coefficients), std::end(p.ojpeg.ycbcr_coefficients),
              coefficients);
    std::copy(std::begin(p.ojpeg.reference_black_white), std::end(p.ojpeg.reference_black_white),
              black_white);
    if (!TIFFSetField(tif, TIFFTAG_YCBCRCOEFFICIENTS, coefficients) ||
        !TIFFSetField(tif, TIFFTAG_REFERENCEBLACKWHITE, black_white)) {
      return InternalError("libtiff refused the YCbCr coefficients: " + errors);
    }
    std::vector<uint32_t> raster(size_t{seg.width} * seg.rows);
    if (!TIFFReadRGBAImageOriented(tif, seg.width, seg.rows, raster.data(), ORIENTATION_TOPLEFT,
                                   /*stop_on_error=*/1)) {
      return CorruptError("libtiff cannot decode old-style JPEG: " +
                          (errors.empty() ? std::string("no message") : errors));
    }
    const uint32_t rows = static_cast<uint32_t>(std::min<uint64_t>(seg.rows, out_h));
    for (uint32_t y = 0; y < rows; ++y) {
      for (uint32_t x = 0; x < cols; ++x) {
        const uint32_t px = raster[size_t{y} * seg.width + x];
        dst[(0 * out_h + y) * out_w + x] = static_cast<uint8_t>(TIFFGetR(px));
        dst[(1 * out_h + y) * out_w + x] = static_cast<uint8_t>(TIFFGetG(px));
        dst[(2 * out_h + y) * out_w + x] = static_cast<uint8_t>(TIFFGetB(px));
      }
    }
    return OkStatus();
  }
};

}  // namespace

std::unique_ptr<ChunkDecoder> MakeTiffChunkDecoder() { return std::make_unique<TiffChunkDecoder>(); }

}  // namespace refzarr
