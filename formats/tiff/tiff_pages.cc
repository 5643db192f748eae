#include "formats/tiff/tiff_pages.h"

#include <tiffio.h>

#include <algorithm>
#include <cstdarg>
#include <cstring>
#include <memory>

namespace refzarr {
namespace {

// libtiff reads through these callbacks; `position` is the stream position libtiff expects.
struct ClientHandle {
  ByteSource* source = nullptr;
  uint64_t size = 0;
  uint64_t position = 0;
  std::string first_error;  // libtiff's first error message for this handle
};

tmsize_t ClientRead(thandle_t h, void* buf, tmsize_t n) {
  auto* c = static_cast<ClientHandle*>(h);
  if (n <= 0 || c->position >= c->size) return 0;
  uint64_t len = std::min<uint64_t>(static_cast<uint64_t>(n), c->size - c->position);
  Status st = c->source->ReadInto({c->position, len}, {static_cast<std::byte*>(buf), len});
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

Status ReadPage(TIFF* tif, ClientHandle& h, int index, int sub_index, TiffPage& p) {
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
    TIFFGetFieldDefaulted(tif, TIFFTAG_YCBCRSUBSAMPLING, &p.ycbcr_subsampling[0],
                          &p.ycbcr_subsampling[1]);
  }
  if (char* d = nullptr; TIFFGetField(tif, TIFFTAG_IMAGEDESCRIPTION, &d) && d) p.description = d;
  if (char* s = nullptr; TIFFGetField(tif, TIFFTAG_SOFTWARE, &s) && s) p.software = s;
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
  return OkStatus();
}

}  // namespace

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
  TiffStructure s;
  s.big_endian = TIFFIsBigEndian(tif.get());
  s.bigtiff = TIFFIsBigTIFF(tif.get());
  const bool big_endian = s.big_endian;
  std::vector<uint64_t> main_offsets;
  for (int index = 0;; ++index) {
    TiffPage page;
    h.first_error.clear();
    RETURN_IF_ERROR(ReadPage(tif.get(), h, index, -1, page));
    page.big_endian = big_endian;
    main_offsets.push_back(page.ifd_offset);
    s.pages.push_back(std::move(page));

    uint16_t sub_count = 0;
    uint64_t* sub_offsets_raw = nullptr;
    if (TIFFGetField(tif.get(), TIFFTAG_SUBIFD, &sub_count, &sub_offsets_raw) && sub_count > 0) {
      std::vector<uint64_t> subs(sub_offsets_raw, sub_offsets_raw + sub_count);
      for (size_t k = 0; k < subs.size(); ++k) {
        h.first_error.clear();
        if (!TIFFSetSubDirectory(tif.get(), subs[k])) {
          return CorruptError("IFD " + std::to_string(index) + " SubIFD " +
                              std::to_string(k) + " at offset " + std::to_string(subs[k]) +
                              " unreadable" + (h.first_error.empty() ? "" : ": " + h.first_error));
        }
        TiffPage sub;
        RETURN_IF_ERROR(ReadPage(tif.get(), h, index, static_cast<int>(k), sub));
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
  }
  return s;
}

}  // namespace refzarr
