#include "formats/tiff/tiff_scanner.h"

#include <tiff.h>

#include <cctype>
#include <map>
#include <optional>
#include <tuple>

#include "formats/ome/imagej.h"
#include "formats/ome/ome_xml.h"
#include "formats/ome/plate.h"
#include "formats/tiff/tiff_pages.h"
#include "formats/tiff/tiff_series.h"
#include "formats/core/base64.h"

namespace refzarr {
namespace {

using nlohmann::json;

// The array dtype of a page's samples. Sub-byte and odd sizes decode to the next byte size.
Result<DType> PageDType(const TiffPage& p, bool big_endian) {
  int bits = p.bits_per_sample;
  char kind = p.sample_format == SAMPLEFORMAT_INT ? 'i'
              : p.sample_format == SAMPLEFORMAT_IEEEFP ? 'f'
              : p.sample_format == SAMPLEFORMAT_UINT || p.sample_format == SAMPLEFORMAT_VOID ? 'u'
              : 0;
  if (kind == 0) {
    return UnsupportedError("SampleFormat " + std::to_string(p.sample_format) +
                            " (complex or undefined) samples are not supported");
  }
  if (kind == 'f' && bits != 16 && bits != 32 && bits != 64) {
    return UnsupportedError(std::to_string(bits) + "-bit floating-point samples are not supported");
  }
  if (bits < 1 || bits > 64) {
    return UnsupportedError(std::to_string(bits) + "-bit samples are not supported");
  }
  uint32_t bytes = bits <= 8 ? 1 : bits <= 16 ? 2 : bits <= 32 ? 4 : 8;
  return DType::Make(kind, bytes, big_endian ? '>' : '<');
}

// How the page's stored tiles are encoded, in Zarr terms where standard codecs suffice.
ChunkEncoding PageEncoding(const TiffPage& p, bool big_endian) {
  ChunkEncoding e;
  // Samples that are exactly a dtype (8, 16, 32, 64 bits): 24-bit samples widen to 4 bytes.
  const uint16_t bps = p.bits_per_sample;
  bool whole_bytes = bps == 8 || bps == 16 || bps == 32 || bps == 64;
  bool plain = whole_bytes && p.predictor == 1 && p.fill_order == 1;
  switch (p.compression) {
    case COMPRESSION_NONE:
      e.compressor = nullptr;
      e.native = plain;
      break;
    case COMPRESSION_ADOBE_DEFLATE:
    case COMPRESSION_DEFLATE:
      e.compressor = {{"id", "zlib"}, {"level", 6}};
      e.native = plain;
      break;
    case COMPRESSION_ZSTD:
      // libtiff writes zstd frames without a content size, which numcodecs before 0.13 cannot
      // decode: standard clients get these chunks transcoded.
      e.compressor = {{"id", "zstd"}, {"level", 0}};
      e.native = false;
      break;
    case COMPRESSION_LZMA:
      e.compressor = {{"id", "lzma"}, {"format", 1}, {"check", -1}, {"preset", nullptr},
                      {"filters", nullptr}};
      e.native = plain;
      break;
    case COMPRESSION_LZW:
      e.compressor = {{"id", "imagecodecs_lzw"}};
      e.native = false;
      break;
    case COMPRESSION_JPEG: {
      json c = {{"id", "imagecodecs_jpeg"}, {"bitspersample", p.bits_per_sample}};
      if (!p.jpeg_tables.empty()) c["tables"] = EncodeBase64(p.jpeg_tables);
      if (p.photometric == PHOTOMETRIC_YCBCR) {
        c["colorspace_jpeg"] = "YCbCr";
        c["colorspace_data"] = "RGB";
      }
      e.compressor = c;
      e.native = false;
      break;
    }
    case COMPRESSION_PACKBITS:
      e.compressor = {{"id", "imagecodecs_packbits"}};
      e.native = false;
      break;
    case COMPRESSION_WEBP:
      e.compressor = {{"id", "imagecodecs_webp"}};
      e.native = false;
      break;
    default:
      e.compressor = {{"id", "imagecodecs_tiff_compression_" + std::to_string(p.compression)}};
      e.native = false;
  }
  if (p.predictor == 2) {
    e.filters = json::array({{{"id", "imagecodecs_delta"}, {"axis", -2}, {"dist", 1}}});
    e.native = false;
  } else if (p.predictor == 3) {
    e.filters = json::array({{{"id", "imagecodecs_floatpred"}, {"axis", -2}, {"dist", 1}}});
    e.native = false;
  }
  if (!e.native && !e.filters.is_array() && p.predictor == 1 && !whole_bytes) {
    e.filters = json::array({{{"id", "imagecodecs_packints"}, {"bitspersample", p.bits_per_sample}}});
  }
  e.decoder = "tiff";
  e.params = {{"compression", p.compression},
              {"predictor", p.predictor},
              {"photometric", p.photometric},
              {"bits_per_sample", p.bits_per_sample},
              {"sample_format", p.sample_format},
              {"samples_per_pixel", p.samples_per_pixel},
              {"planar", p.planar},
              {"tiled", p.tiled},
              {"tile_width", p.tile_width},
              {"tile_length", p.tile_length},
              {"rows_per_strip", p.tiled ? 0u : p.tile_length},
              {"image_width", p.width},
              {"image_length", p.length},
              {"byte_order", big_endian ? ">" : "<"},
              {"fill_order", p.fill_order},
              {"jpeg_colormode_rgb", p.compression == COMPRESSION_JPEG &&
                                         p.photometric == PHOTOMETRIC_YCBCR}};
  if (!p.jpeg_tables.empty()) e.params["jpeg_tables"] = EncodeBase64(p.jpeg_tables);
  if (p.old_jpeg) {
    // What libtiff's old-style JPEG codec reads outside the strip (docs/contracts.md).
    const OldJpeg& j = *p.old_jpeg;
    auto tables = [](const std::vector<std::string>& v) {
      json a = json::array();
      for (const std::string& t : v) a.push_back(t.empty() ? json(nullptr) : json(EncodeBase64(t)));
      return a;
    };
    e.params["ojpeg_header"] = EncodeBase64(j.header);
    e.params["ojpeg_qtables"] = tables(j.qtables);
    e.params["ojpeg_dctables"] = tables(j.dctables);
    e.params["ojpeg_actables"] = tables(j.actables);
    e.params["jpeg_proc"] = j.proc;
    e.params["jpeg_restart_interval"] = j.restart_interval;
    if (p.photometric == PHOTOMETRIC_YCBCR) {
      e.params["ycbcr_coefficients"] = json(std::vector<double>(p.ycbcr_coefficients,
                                                                p.ycbcr_coefficients + 3));
      e.params["reference_black_white"] = json(std::vector<double>(
          p.reference_black_white, p.reference_black_white + 6));
    }
  }
  if (p.photometric == PHOTOMETRIC_YCBCR) {
    e.params["ycbcr_subsampling"] = {p.ycbcr_subsampling[0], p.ycbcr_subsampling[1]};
  }
  if (p.samples_per_pixel > 1 && p.planar == PLANARCONFIG_CONTIG) e.stored_order = {0, 2, 3, 4, 1};
  return e;
}

// What the planners decided for one file.
struct Planned {
  TiffStructure pool;                  // this file's pages, then member files' pages
  std::vector<SeriesPlan> plans;
  std::vector<std::string> paths;      // group path of each plan ("0", "1", ...)
  std::optional<std::string> ome_xml;  // set for OME-TIFF: written to OME/METADATA.ome.xml
  std::vector<std::string> members;    // provisional source i + 1 is members[i] (a URI)
  std::vector<uint64_t> sizes;         // bytes of provisional source i (0: this file)
  // OME plates: the plate's wells and, per field, the plan it shows (fields are emitted as
  // images of their own at "<row>/<col>/<field>", beside the series).
  std::optional<PlateLayout> plate;
  std::vector<size_t> field_plans;     // plan index of plate->fields[i]
};

std::string_view TrimView(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && (std::isspace(static_cast<unsigned char>(s.back())) || s.back() == '\0')) {
    s.remove_suffix(1);
  }
  return s;
}

// tifffile's test: an OME-XML description ends with the OME root's end tag.
bool IsOmeXml(std::string_view description) {
  std::string_view d = TrimView(description);
  return d.starts_with("<") && d.ends_with("OME>");
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Plans an OME-TIFF: one series per Image. nullopt: the file is a BinaryOnly member, indexed as
// plain TIFF (see docs/tiff.md). Errors: the XML is malformed or contradicts the IFDs.
// `tiff` is the scanned file's own structure: empty for an OME-XML companion file, whose planes
// all live in member TIFFs.
Result<std::optional<Planned>> PlanOme(const TiffStructure& tiff, const std::string& xml,
                                       uint64_t file_size, const ScanContext& context,
                                       std::vector<std::string>& warnings) {
  ASSIGN_OR_RETURN(OmeDocument doc, ParseOmeXml(xml));
  for (std::string& w : doc.warnings) warnings.push_back("OME-XML: " + std::move(w));
  if (doc.binary_only) {
    warnings.push_back("OME-XML: BinaryOnly member of a multi-file set (metadata in \"" +
                       doc.binary_only->metadata_file + "\"): indexed as plain TIFF; index the "
                       "metadata file for the whole image");
    return std::optional<Planned>();
  }
  if (doc.images.empty()) return CorruptError("OME-XML has no Image");
  Planned out;
  out.pool = tiff;
  out.ome_xml = xml;
  out.sizes.push_back(file_size);
  std::vector<int> own_main;
  for (int i = 0; i < static_cast<int>(tiff.pages.size()); ++i) {
    if (tiff.pages[i].sub_index < 0) own_main.push_back(i);
  }
  ASSIGN_OR_RETURN(auto all_planes,
                   MapAllPlanes(doc, {own_main.size(), doc.uuid, context.FileName()}));

  // Member files, opened once each: main-chain page indices in the pool, or why they are unusable.
  struct Member {
    Status status;
    std::vector<int> main;
  };
  std::map<std::string, Member> members;  // by lower-case FileName + UUID
  auto open_member = [&](const OmeFileRef& ref) -> const Member& {
    std::string key = Lower(ref.file_name) + "\n" + ref.uuid;
    if (auto it = members.find(key); it != members.end()) return it->second;
    Member& m = members[key];
    m.status = [&]() -> Status {
      if (ref.file_name.empty()) {
        return CorruptError("TiffData UUID " + ref.uuid + " names no FileName");
      }
      const std::string uri = context.SiblingUri(ref.file_name);
      auto source = context.OpenSibling(ref.file_name);
      if (!source.ok()) {
        const StatusCode code = source.status().code();
        return Status(code, "member file \"" + ref.file_name + "\" " +
                                (code == StatusCode::kNotFound ? "is missing" : "cannot be opened") +
                                " (" + source.status().message() + ")");
      }
      auto member = ReadTiffStructure(**source);
      if (!member.ok() || member->pages.empty()) {
        return CorruptError("member file \"" + ref.file_name + "\" is not a readable TIFF" +
                            (member.ok() ? "" : ": " + member.status().message()));
      }
      ASSIGN_OR_RETURN(uint64_t size, (*source)->Size());
      std::string uuid;
      if (IsOmeXml(member->pages.front().description)) {
        auto member_doc = ParseOmeXml(member->pages.front().description);
        if (member_doc.ok()) uuid = member_doc->uuid;
      }
      if (!ref.uuid.empty() && uuid != ref.uuid) {
        return CorruptError("member file \"" + ref.file_name + "\" has UUID \"" + uuid +
                            "\", the TiffData expects \"" + ref.uuid + "\"");
      }
      out.members.push_back(uri);
      out.sizes.push_back(size);
      const uint32_t id = static_cast<uint32_t>(out.members.size());
      for (TiffPage& p : member->pages) {
        p.source = id;
        if (p.sub_index < 0) m.main.push_back(static_cast<int>(out.pool.pages.size()));
        out.pool.pages.push_back(std::move(p));
      }
      return OkStatus();
    }();
    return m;
  };

  std::string first_refusal;
  for (size_t i = 0; i < doc.images.size(); ++i) {
    const OmeImage& image = doc.images[i];
    std::vector<int> pages;
    Status image_status;
    for (const PlaneRef& ref : all_planes[i]) {
      if (ref.this_file) {
        pages.push_back(own_main[ref.ifd]);
        continue;
      }
      const Member& m = open_member(ref.file);
      if (!m.status.ok()) {
        image_status = m.status;
        break;
      }
      if (ref.ifd >= m.main.size()) {
        image_status = CorruptError("plane (t=" + std::to_string(ref.t) + ", c=" +
                                    std::to_string(ref.c) + ", z=" + std::to_string(ref.z) +
                                    ") is IFD " + std::to_string(ref.ifd) + " of \"" +
                                    ref.file.file_name + "\", which has " +
                                    std::to_string(m.main.size()) + " IFDs");
        break;
      }
      pages.push_back(m.main[ref.ifd]);
    }
    std::string label = "OME image " + std::to_string(i) +
                        (image.name.empty() ? "" : " (" + image.name + ")");
    if (!image_status.ok()) {
      warnings.push_back(label + " not indexed: " + image_status.message());
      if (first_refusal.empty()) first_refusal = label + ": " + image_status.message();
      continue;
    }
    ASSIGN_OR_RETURN(SeriesPlan plan, PlanOmeImage(out.pool, image, pages, warnings));
    out.plans.push_back(std::move(plan));
    out.paths.push_back(std::to_string(i));
  }
  if (out.plans.empty()) {
    return CorruptError("no OME image could be indexed" +
                        (first_refusal.empty() ? "" : " (" + first_refusal + ")"));
  }
  std::vector<bool> indexed(doc.images.size(), false);
  std::vector<size_t> plan_of(doc.images.size(), 0);
  for (size_t k = 0; k < out.paths.size(); ++k) {
    const size_t image = std::stoul(out.paths[k]);
    indexed[image] = true;
    plan_of[image] = k;
  }
  std::vector<std::string> reserved = out.paths;
  reserved.push_back("OME");
  auto plate = PlanPlate(doc, indexed, reserved, warnings);
  if (!plate.ok()) {
    warnings.push_back("OME-XML plate ignored (" + plate.status().message() +
                       "): its images stay series");
  } else if (*plate) {
    for (const PlateField& f : (*plate)->fields) out.field_plans.push_back(plan_of[f.image]);
    out.plate = std::move(**plate);
  }
  return std::optional<Planned>(std::move(out));
}

Planned PlanFile(TiffStructure tiff, uint64_t file_size, const ScanContext& context,
                 std::vector<std::string>& warnings) {
  const std::string& description = tiff.pages.front().description;
  auto fallback = [&](const std::string& what, const Status& why) {
    warnings.push_back(what + " ignored (" + why.message() + "); indexed as plain TIFF");
  };
  auto numbered = [&](Planned p) {
    for (size_t s = p.paths.size(); s < p.plans.size(); ++s) p.paths.push_back(std::to_string(s));
    return p;
  };
  if (IsOmeXml(description)) {
    auto ome = PlanOme(tiff, description, file_size, context, warnings);
    if (ome.ok() && *ome) return std::move(**ome);
    if (!ome.ok()) fallback("OME-XML", ome.status());
  } else if (description.starts_with("ImageJ=") || description.starts_with("SCIFIO=")) {
    auto info = ParseImageJDescription(description);
    TiffStructure copy = tiff;
    auto plans = info.ok() ? PlanImageJSeries(copy, file_size, *info, warnings)
                           : Result<std::vector<SeriesPlan>>(info.status());
    if (plans.ok()) return numbered({std::move(copy), std::move(*plans), {}, {}, {}, {file_size}, {}, {}});
    fallback("ImageJ description", plans.status());
  } else if (description.starts_with("Aperio")) {
    auto plans = PlanSvsSeries(tiff, warnings);
    if (plans.ok()) return numbered({std::move(tiff), std::move(*plans), {}, {}, {}, {file_size}, {}, {}});
    fallback("Aperio SVS layout", plans.status());
  }
  std::vector<SeriesPlan> plans = PlanDefaultSeries(tiff, warnings);
  return numbered({std::move(tiff), std::move(plans), {}, {}, {}, {file_size}, {}, {}});
}

class TiffScanner final : public Scanner {
 public:
  std::string_view Name() const override { return "tiff"; }
  bool Sniff(std::span<const std::byte> head) const override { return LooksLikeTiff(head); }

  Status Scan(ByteSource& source, const ScanContext& context, ScanSink& out) const override {
    ASSIGN_OR_RETURN(TiffStructure tiff, ReadTiffStructure(source));
    ASSIGN_OR_RETURN(uint64_t file_size, source.Size());
    for (std::string& w : tiff.warnings) out.Warn(std::move(w));
    tiff.warnings.clear();
    if (tiff.pages.empty()) return CorruptError("no IFD");
    std::vector<std::string> warnings;
    Planned planned = PlanFile(std::move(tiff), file_size, context, warnings);
    for (std::string& w : warnings) out.Warn(std::move(w));
    return EmitPlanned(std::move(planned), out);
  }

  /// Emits planned series (and, for OME files, the OME group and the original XML).
  static Status EmitPlanned(Planned planned, ScanSink& out) {
    nlohmann::json root = {{"bioformats2raw.layout", 3}};
    if (planned.plate) root.update(planned.plate->attributes);
    RETURN_IF_ERROR(out.AddGroup("", root));
    // Sources are registered only for member files a planned series uses.
    std::vector<uint32_t> source_ids(planned.members.size() + 1, 0);
    std::vector<bool> used(planned.members.size() + 1, false);
    for (const SeriesPlan& plan : planned.plans) {
      for (const auto& level : plan.levels) {
        for (int idx : level) used[planned.pool.pages[idx].source] = true;
      }
    }
    for (size_t i = 1; i < source_ids.size(); ++i) {
      if (!used[i]) continue;
      ASSIGN_OR_RETURN(source_ids[i], out.AddSource(planned.members[i - 1]));
    }
    const Sources sources{planned.sizes, source_ids};
    for (size_t s = 0; s < planned.plans.size(); ++s) {
      Status st = EmitSeries(planned.pool, sources, planned.plans[s], planned.paths[s], out);
      if (!st.ok()) return st.WithContext("series " + planned.paths[s]);
    }
    if (planned.plate) {
      // A field is the series it shows under a second path: its levels are arrays of their own
      // with the same chunk references (the tree has no links).
      for (const PlateWell& well : planned.plate->wells) {
        RETURN_IF_ERROR(out.AddGroup(well.path, well.attributes));
      }
      for (size_t f = 0; f < planned.plate->fields.size(); ++f) {
        const std::string& path = planned.plate->fields[f].path;
        Status st =
            EmitSeries(planned.pool, sources, planned.plans[planned.field_plans[f]], path, out);
        if (!st.ok()) return st.WithContext("plate field " + path);
      }
    }
    if (planned.ome_xml) {
      RETURN_IF_ERROR(out.AddGroup("OME", {{"series", planned.paths}}));
      RETURN_IF_ERROR(out.AddFile("OME/METADATA.ome.xml", std::move(*planned.ome_xml)));
    }
    return OkStatus();
  }

 private:
  struct Sources {
    const std::vector<uint64_t>& sizes;  // by provisional source
    const std::vector<uint32_t>& ids;    // provisional -> ScanSink source id
  };

  static Status EmitSeries(const TiffStructure& tiff, const Sources& sources,
                           const SeriesPlan& plan, const std::string& path, ScanSink& out) {
    ImageDesc image;
    image.name = plan.name;
    image.axes = plan.axes;
    image.channels = plan.channels;
    const TiffPage& base = tiff.pages[plan.levels[0].front()];
    for (size_t k = 0; k < plan.levels.size(); ++k) {
      const TiffPage& first = tiff.pages[plan.levels[k].front()];
      std::string level_path = path + "/" + std::to_string(k);
      RETURN_IF_ERROR(EmitLevel(tiff, sources, plan, plan.levels[k], level_path, out)
                          .WithContext("level " + std::to_string(k)));
      image.levels.push_back(std::to_string(k));
      std::vector<double> scale = plan.base_scale;
      scale[3] *= static_cast<double>(base.length) / first.length;
      scale[4] *= static_cast<double>(base.width) / first.width;
      image.scales.push_back(scale);
    }
    return out.AddImage(path, image);
  }

  // Emits one level as one array. What makes the array unservable (a damaged or missing chunk,
  // a layout the decoder cannot represent) refuses that array alone, through the sink: the rest
  // of the file is still indexed. Contradictions between the planner and the pages are errors.
  static Status EmitLevel(const TiffStructure& tiff, const Sources& sources,
                          const SeriesPlan& plan, const std::vector<int>& planes,
                          const std::string& path, ScanSink& out) {
    const TiffPage& p = tiff.pages[planes.front()];
    if (planes.size() != plan.size_t * plan.page_channels * plan.size_z) {
      return InternalError(std::to_string(planes.size()) + " planes for a (t, c, z) of " +
                           std::to_string(plan.size_t) + "x" + std::to_string(plan.page_channels) +
                           "x" + std::to_string(plan.size_z));
    }
    for (int idx : planes) {
      if (!UniformPages(p, tiff.pages[idx])) {
        return InternalError(tiff.pages[idx].Where() + " differs from the rest of its level");
      }
    }
    auto refuse = [&](const TiffPage& page, const std::string& why) {
      return out.RefuseArray(path, page.Where() + ": " + why);
    };
    if (p.depth > 1) {
      return refuse(p, "ImageDepth " + std::to_string(p.depth) + " (3-D tiles) is not supported");
    }
    auto dtype = PageDType(p, p.big_endian);
    if (!dtype.ok()) return refuse(p, dtype.status().message());
    for (int idx : planes) {
      const TiffPage& page = tiff.pages[idx];
      if (!page.damage.empty()) return refuse(page, page.damage);
      if (page.old_jpeg && !page.old_jpeg->refusal.empty()) {
        return refuse(page, page.old_jpeg->refusal);
      }
    }
    const uint64_t spp = p.samples_per_pixel;
    const bool chunky = spp > 1 && p.planar == PLANARCONFIG_CONTIG;
    ArrayDesc a;
    a.shape = {plan.size_t, plan.page_channels * spp, plan.size_z, p.length, p.width};
    a.chunks = {1, chunky ? spp : 1, 1, p.ChunkRows(), p.ChunkCols()};
    a.dtype = *dtype;
    a.fill_value = 0;
    a.encoding = PageEncoding(p, p.big_endian);
    a.dimension_names = {"t", "c", "z", "y", "x"};
    ASSIGN_OR_RETURN(ArrayHandle h, out.AddArray(path, a));

    const auto grid = a.GridShape();
    const uint32_t across = p.ChunksAcross(), down = p.ChunksDown();
    const uint64_t per_plane = uint64_t{across} * down;
    const uint64_t sample_planes = chunky ? 1 : spp;
    const bool uncompressed = p.compression == COMPRESSION_NONE;
    // Bytes of one stored row of a chunk: samples packed, each row starting on a byte.
    const uint64_t row_bytes =
        (uint64_t{p.ChunkCols()} * (chunky ? spp : 1) * p.bits_per_sample + 7) / 8;
    const char* kind = p.tiled ? "tile " : "strip ";
    for (uint64_t plane = 0; plane < planes.size(); ++plane) {
      const TiffPage& page = tiff.pages[planes[plane]];
      const uint64_t file_size = sources.sizes[page.source];
      const uint64_t z = plane % plan.size_z;
      const uint64_t tc = plane / plan.size_z;
      const uint64_t c_page = tc % plan.page_channels, t = tc / plan.page_channels;
      for (uint64_t s = 0; s < sample_planes; ++s) {
        for (uint32_t r = 0; r < down; ++r) {
          for (uint32_t q = 0; q < across; ++q) {
            uint64_t i = s * per_plane + uint64_t{r} * across + q;
            ChunkRef ref{sources.ids[page.source], page.offsets[i], page.byte_counts[i], 0};
            if (ref.offset == 0 || ref.length == 0) continue;  // sparse: fill value
            if (ref.offset > file_size || ref.length > file_size - ref.offset) {
              return refuse(page, kind + std::to_string(i) + " (offset " +
                                      std::to_string(ref.offset) + ", " +
                                      std::to_string(ref.length) + " bytes) lies past the end "
                                      "of the file (" + std::to_string(file_size) + " bytes)");
            }
            if (page.old_jpeg && i == 0) {
              // The decoder is given the first chunk's JPEG header apart (OldJpeg).
              if (page.old_jpeg->data_in_interchange) {
                std::tie(ref.offset, ref.length) = *page.old_jpeg->data_in_interchange;
              } else {
                ref.offset += page.old_jpeg->first_strip_header_bytes;
                ref.length -= page.old_jpeg->first_strip_header_bytes;
              }
            }
            const uint32_t rows = page.RowsIn(r);
            if (rows < page.ChunkRows()) ref.flags |= kChunkShort;
            if (uncompressed) {
              // Uncompressed: the chunk is exactly its rows (the last strip's bytes cover only
              // the rows left in the image); extra bytes are padding, fewer bytes are damage.
              const uint64_t needed = row_bytes * rows;
              if (ref.length < needed) {
                return refuse(page, kind + std::to_string(i) + " holds " +
                                        std::to_string(ref.length) + " bytes, its " +
                                        std::to_string(rows) + " rows need " +
                                        std::to_string(needed));
              }
              ref.length = needed;
            } else if (!a.encoding.native && ref.length > kMaxDecodedChunkBytes) {
              return refuse(page, kind + std::to_string(i) + " holds " +
                                      std::to_string(ref.length) + " bytes, more than the TIFF "
                                      "decoder takes (" + std::to_string(kMaxDecodedChunkBytes) +
                                      ")");
            }
            uint64_t c = chunky ? c_page : c_page * spp + s;
            std::vector<uint64_t> coords = {t, c, z, r, q};
            RETURN_IF_ERROR(out.AddChunk(h, LinearChunkIndex(grid, coords), ref));
          }
        }
      }
    }
    return OkStatus();
  }

  // The TIFF decoder wraps a stored chunk in a classic TIFF: 32-bit byte counts.
  static constexpr uint64_t kMaxDecodedChunkBytes = 0xFFFFFFF0u;
};

// An OME-XML companion file (".companion.ome", the MetadataFile of BinaryOnly members): the
// images it describes, with every plane in member TIFFs.
class OmeCompanionScanner final : public Scanner {
 public:
  std::string_view Name() const override { return "ome-companion"; }
  bool Sniff(std::span<const std::byte> head) const override {
    std::string_view text(reinterpret_cast<const char*>(head.data()), head.size());
    size_t start = text.find_first_not_of(" \t\r\n\xEF\xBB\xBF");
    if (start == std::string_view::npos || text[start] != '<') return false;
    return text.find("<OME") != std::string_view::npos ||
           text.find(":OME") != std::string_view::npos;
  }

  Status Scan(ByteSource& source, const ScanContext& context, ScanSink& out) const override {
    ASSIGN_OR_RETURN(uint64_t size, source.Size());
    if (size > kMaxXmlBytes) {
      return UnsupportedError("OME-XML of " + std::to_string(size) + " bytes (limit " +
                              std::to_string(kMaxXmlBytes) + ")");
    }
    std::string xml(size, '\0');
    RETURN_IF_ERROR(source.ReadInto({0, size}, std::as_writable_bytes(std::span(xml))));
    std::vector<std::string> warnings;
    auto planned = PlanOme(TiffStructure{}, xml, size, context, warnings);
    for (std::string& w : warnings) out.Warn(std::move(w));
    if (!planned.ok()) return planned.status().WithContext("OME-XML companion");
    if (!*planned) return CorruptError("OME-XML companion is itself BinaryOnly");
    return TiffScanner::EmitPlanned(std::move(**planned), out);
  }

 private:
  static constexpr uint64_t kMaxXmlBytes = 256ull << 20;
};

}  // namespace

std::unique_ptr<Scanner> MakeTiffScanner() { return std::make_unique<TiffScanner>(); }

std::unique_ptr<Scanner> MakeOmeCompanionScanner() {
  return std::make_unique<OmeCompanionScanner>();
}

}  // namespace refzarr
