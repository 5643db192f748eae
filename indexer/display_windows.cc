#include "indexer/display_windows.h"

#include <algorithm>

#include "store/preview/plane.h"
#include "store/ref_store.h"
#include "store/transcode/transcode.h"

namespace refzarr {
namespace {

int AxisIndex(const ImageDesc& image, std::string_view name) {
  for (size_t i = 0; i < image.axes.size(); ++i) {
    if (image.axes[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

// Channels of 8 bits or fewer keep their dtype's range: it shows the data, and RGB stays balanced.
bool WideNumbers(const DType& d) {
  return (d.kind == 'u' || d.kind == 'i' || d.kind == 'f') && (d.size > 1 || d.kind == 'f');
}

}  // namespace

DisplayWindowSink::DisplayWindowSink(ScanSink& inner, ByteSource& source,
                                     const SourceOpeners& openers,
                                     std::span<const ChunkDecoder* const> decoders)
    : inner_(inner), source_(source), openers_(openers), decoders_(decoders) {}

Result<uint32_t> DisplayWindowSink::AddSource(std::string_view uri) {
  ASSIGN_OR_RETURN(uint32_t id, inner_.AddSource(uri));
  source_uris_[id] = std::string(uri);
  return id;
}

Status DisplayWindowSink::AddGroup(std::string_view path, const nlohmann::json& attributes) {
  return inner_.AddGroup(path, attributes);
}

Status DisplayWindowSink::AddImage(std::string_view path, const ImageDesc& image) {
  images_.emplace_back(std::string(path), image);
  return OkStatus();
}

Result<ArrayHandle> DisplayWindowSink::AddArray(std::string_view path, const ArrayDesc& array) {
  ASSIGN_OR_RETURN(ArrayHandle h, inner_.AddArray(path, array));
  Array& a = arrays_[h];
  a.desc = array;
  // Only arrays whose plane is within the bounds can give a window: keep their references alone.
  const size_t n = array.shape.size();
  a.kept = n >= 2 && array.shape[n - 1] * array.shape[n - 2] <= kMaxWindowPlaneElements &&
           WideNumbers(array.dtype) && array.ChunkCount() <= kMaxWindowRefs;
  handles_[std::string(path)] = h;
  return h;
}

Status DisplayWindowSink::AddChunk(ArrayHandle array, uint64_t chunk_index, const ChunkRef& ref) {
  RETURN_IF_ERROR(inner_.AddChunk(array, chunk_index, ref));
  auto it = arrays_.find(array);
  if (it != arrays_.end() && it->second.kept) {
    if (kept_refs_ >= kMaxWindowRefs) {
      it->second.kept = false;
      it->second.refs.clear();
    } else {
      it->second.refs[chunk_index] = ref;
      ++kept_refs_;
    }
  }
  return OkStatus();
}

Status DisplayWindowSink::AddInlineChunk(ArrayHandle array, uint64_t chunk_index,
                                         std::span<const std::byte> bytes) {
  RETURN_IF_ERROR(inner_.AddInlineChunk(array, chunk_index, bytes));
  auto it = arrays_.find(array);
  if (it != arrays_.end() && it->second.kept) {
    it->second.inline_chunks[chunk_index] =
        std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  return OkStatus();
}

Status DisplayWindowSink::AddFile(std::string_view path, std::string bytes) {
  return inner_.AddFile(path, std::move(bytes));
}

void DisplayWindowSink::Warn(std::string message) { inner_.Warn(std::move(message)); }

Status DisplayWindowSink::RefuseArray(std::string_view path, std::string reason) {
  if (auto h = handles_.find(path); h != handles_.end()) arrays_[h->second].refused = true;
  return inner_.RefuseArray(path, std::move(reason));
}

Status DisplayWindowSink::Finish() {
  for (auto& [path, image] : images_) {
    Status st = FillWindows(path, image);
    if (!st.ok()) {
      inner_.Warn("image " + (path.empty() ? std::string("(root)") : path) +
                  ": no display window from the data: " + st.message());
    }
    RETURN_IF_ERROR(inner_.AddImage(path, image));
  }
  images_.clear();
  return OkStatus();
}

Status DisplayWindowSink::FillWindows(const std::string& image_path, ImageDesc& image) {
  if (image.levels.empty()) return OkStatus();
  const std::string level = image.levels.back();
  auto h = handles_.find(JoinTreePath(image_path, level));
  if (h == handles_.end()) return OkStatus();
  Array& a = arrays_[h->second];
  if (!a.kept || a.refused) return OkStatus();
  const ArrayDesc& desc = a.desc;
  const int rank = static_cast<int>(desc.shape.size());
  int y_dim = AxisIndex(image, "y"), x_dim = AxisIndex(image, "x");
  if (y_dim < 0 || x_dim < 0 || y_dim >= rank || x_dim >= rank) y_dim = rank - 2, x_dim = rank - 1;
  const int c_dim = AxisIndex(image, "c"), z_dim = AxisIndex(image, "z");
  const uint64_t channels = c_dim >= 0 && c_dim < rank ? desc.shape[c_dim] : 1;
  bool wanted = false;
  for (uint64_t c = 0; c < channels; ++c) {
    wanted = wanted || c >= image.channels.size() || !image.channels[c].window;
  }
  if (!wanted) return OkStatus();

  std::vector<uint64_t> origin(rank, 0);
  const uint64_t z = z_dim >= 0 && z_dim < rank ? desc.shape[z_dim] / 2 : 0;
  if (z_dim >= 0 && z_dim < rank) origin[z_dim] = z;
  const std::vector<uint64_t> grid = desc.GridShape();
  uint64_t decoded = 0;
  DecodedChunkFetcher fetch =
      [&](std::span<const uint64_t> coords) -> Result<std::optional<std::string>> {
    const uint64_t linear = LinearChunkIndex(grid, coords);
    std::string out(desc.ChunkBytes(), '\0');
    decoded += out.size();
    if (decoded > kMaxWindowDecodedBytes) {
      return UnsupportedError("the plane needs more than " +
                              std::to_string(kMaxWindowDecodedBytes >> 20) + " MiB of decoded chunks");
    }
    auto out_bytes = std::as_writable_bytes(std::span(out));
    if (auto in = a.inline_chunks.find(linear); in != a.inline_chunks.end()) {
      RETURN_IF_ERROR(DecodeChunk(desc, coords, ChunkRef{}, std::as_bytes(std::span(in->second)),
                                  decoders_, out_bytes));
      return std::optional<std::string>(std::move(out));
    }
    auto it = a.refs.find(linear);
    if (it == a.refs.end()) return std::optional<std::string>();
    const ChunkRef& ref = it->second;
    ByteSource* from = &source_;
    if (ref.source != 0) {
      auto& open = companions_[ref.source];
      if (!open) {
        auto uri = source_uris_.find(ref.source);
        if (uri == source_uris_.end()) return InternalError("chunk of an unknown source");
        ASSIGN_OR_RETURN(open, openers_.Open(uri->second));
      }
      from = open.get();
    }
    std::string stored(ref.length, '\0');
    RETURN_IF_ERROR(from->ReadInto({ref.offset, ref.length}, std::as_writable_bytes(std::span(stored))));
    RETURN_IF_ERROR(DecodeChunk(desc, coords, ref, std::as_bytes(std::span(stored)), decoders_, out_bytes));
    return std::optional<std::string>(std::move(out));
  };
  while (image.channels.size() < channels) {
    image.channels.push_back({"Channel " + std::to_string(image.channels.size()), std::nullopt, std::nullopt, ""});
  }
  for (uint64_t c = 0; c < channels; ++c) {
    ChannelDesc& channel = image.channels[c];
    if (channel.window) continue;
    if (c_dim >= 0 && c_dim < rank) origin[c_dim] = c;
    ASSIGN_OR_RETURN(Plane plane, ReadPlane(desc, fetch, origin, y_dim, x_dim));
    auto q = Quantiles(plane.values, kWindowLowQuantile, kWindowHighQuantile);
    if (!q || q->second <= q->first) continue;  // flat or empty: the dtype's range stays
    channel.window = *q;
    channel.window_source = "percentiles 0.1/99.9 of level " + level + " (z " + std::to_string(z) + ", t 0)";
  }
  return OkStatus();
}

}  // namespace refzarr
