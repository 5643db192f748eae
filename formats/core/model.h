// The format-neutral description that scanners emit and the store persists.
//
// A scanner describes one file as a small tree of Zarr-like nodes: groups (with attributes), arrays
// (shape, chunk grid, dtype, how each stored chunk is encoded) and the byte range of every stored chunk.
// Images that should appear as OME-NGFF multiscale images are declared with an ImageDesc; the store
// renders OME-NGFF 0.4 (Zarr v2) or 0.5 (Zarr v3) metadata from it, so nothing here is tied to a Zarr
// version. Paths are relative to the file's own group, '/'-separated, without leading or trailing '/'
// ("" is the file group itself, "0/1" is level 1 of series 0).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/core/status.h"

namespace refzarr {

/// Element type of an array, in numpy's terms.
struct DType {
  /// 'b' bool, 'i', 'u', 'f', 'c' complex, 'S' fixed bytes, 'V' structured, 'O' variable-length
  /// UTF-8 strings (numpy objects; chunks encoded with numcodecs' VLenUTF8, "vlen-utf8").
  char kind = 'u';
  uint32_t size = 1;       ///< Bytes per element.
  char byte_order = '|';   ///< '<' little, '>' big, '|' not applicable (size 1, 'S', 'V').
  nlohmann::json fields;   ///< Structured dtypes: numpy's list form [["x","<i4"],...]; null otherwise.

  /// Zarr v2 "dtype": a typestr like "<u2" or the fields list.
  nlohmann::json ToV2() const;
  /// Zarr v3 data type name ("uint16", "float32", "bool", "complex64"); nullopt when v3 has none.
  std::optional<std::string> V3Name() const;
  /// Parses a numpy typestr ("<u2", "|u1", ">f8", "|S10"). kInvalidArgument when malformed.
  static Result<DType> FromTypestr(std::string_view typestr);
  /// Byte-order-normalised constructor: size 1 gets '|'.
  static DType Make(char kind, uint32_t size, char byte_order = '<');
  friend bool operator==(const DType&, const DType&) = default;
};

/// How the stored bytes of each chunk of an array are encoded.
///
/// When `native` is true and `stored_order` is empty, the stored bytes of every chunk whose ChunkRef
/// flags are 0 decode to the array chunk with exactly the standard Zarr v2 `filters` and `compressor`
/// (numcodecs ids), so they can be served untouched. Otherwise `decoder` names the ChunkDecoder family
/// that can turn them into a plain C-order chunk, with `params` as that decoder's private description;
/// `filters`/`compressor` then name the codecs other tools use (e.g. "imagecodecs_lzw").
struct ChunkEncoding {
  nlohmann::json filters = nullptr;     ///< Zarr v2 "filters": array of codec configs, or null.
  nlohmann::json compressor = nullptr;  ///< Zarr v2 "compressor": codec config, or null.
  bool native = true;                   ///< Stored bytes decode with standard numcodecs alone.
  std::string decoder;                  ///< ChunkDecoder family ("tiff", "hdf5"); empty if none.
  nlohmann::json params = nlohmann::json::object();  ///< The decoder's own parameters.
  /// Decoded stored bytes are the chunk with its axes permuted: stored axis i is chunk axis
  /// stored_order[i] (Zarr v3 "transpose" order). Empty: plain C order. Interleaved RGB tiles of a
  /// (t,c,z,y,x) array are {0,2,3,4,1}.
  std::vector<int> stored_order;
};

/// An array node: a regular chunk grid over an N-dimensional shape.
struct ArrayDesc {
  std::vector<uint64_t> shape;   ///< Elements per dimension.
  std::vector<uint64_t> chunks;  ///< Elements per chunk per dimension (edge chunks are full size).
  DType dtype;
  nlohmann::json fill_value = 0;            ///< As Zarr v2 writes it: number, "NaN", null, base64.
  ChunkEncoding encoding;
  std::vector<std::string> dimension_names; ///< One per dimension, or empty.
  nlohmann::json attributes = nlohmann::json::object();

  /// Number of chunks along each dimension.
  std::vector<uint64_t> GridShape() const;
  /// Total number of chunks in the grid.
  uint64_t ChunkCount() const;
  /// Bytes of one decoded chunk (product of chunks x dtype.size).
  uint64_t ChunkBytes() const;
  nlohmann::json ToJson() const;
  static Result<ArrayDesc> FromJson(const nlohmann::json& j);
};

/// Linear (C-order) index of chunk `coords` in `grid`; coords must be inside the grid.
uint64_t LinearChunkIndex(std::span<const uint64_t> grid, std::span<const uint64_t> coords);
/// Inverse of LinearChunkIndex.
std::vector<uint64_t> ChunkCoords(std::span<const uint64_t> grid, uint64_t linear);

/// One axis of an OME-NGFF image.
struct Axis {
  std::string name;  ///< "t", "c", "z", "y", "x", ...
  std::string type;  ///< "time", "channel", "space", or empty.
  std::string unit;  ///< OME-NGFF unit name ("micrometer", "second"), or empty.
};

/// Display hints of one channel (OME-NGFF "omero" metadata).
struct ChannelDesc {
  std::string label;
  std::optional<uint32_t> color;                  ///< 0xRRGGBB.
  std::optional<std::pair<double, double>> window;  ///< Display range; default: the dtype's range.
  /// Where `window` came from, for `refzarr info`: "OME SignificantBits", "TIFF SMinSampleValue/
  /// SMaxSampleValue", "ImageJ display range", "Imaris ColorRange", "percentiles 0.1/99.9 of
  /// level 2"...; empty when unknown (indexes written before windows had a source).
  std::string window_source;
};

/// A group that is an OME-NGFF multiscale image. Its levels are arrays at paths relative to it.
struct ImageDesc {
  std::string name;
  std::vector<Axis> axes;
  std::vector<std::string> levels;                 ///< Highest resolution first ("0", "1", ...).
  std::vector<std::vector<double>> scales;         ///< One per level, one value per axis.
  std::vector<std::vector<double>> translations;   ///< Empty, or one per level.
  std::vector<ChannelDesc> channels;
  nlohmann::json ToJson() const;
  static Result<ImageDesc> FromJson(const nlohmann::json& j);
};

/// Where one stored chunk lives.
struct ChunkRef {
  uint32_t source = 0;  ///< 0: the scanned file; otherwise an id returned by ScanSink::AddSource.
  uint64_t offset = 0;  ///< Byte offset in the source.
  uint64_t length = 0;  ///< Byte count.
  uint32_t flags = 0;   ///< kChunk* bits; any set bit means "not encoded like the rest of the array".
  friend bool operator==(const ChunkRef&, const ChunkRef&) = default;
};

/// HDF5 filter mask of the chunk: bit i set means filter i of the pipeline was not applied.
inline constexpr uint32_t kChunkFilterMask = 0xFFFFu;
/// The chunk covers fewer elements than a full chunk (a short last TIFF strip).
inline constexpr uint32_t kChunkShort = 1u << 16;

/// Handle of an array while its file is being scanned.
using ArrayHandle = uint32_t;

/// Receives what a scanner finds in one file. Implemented by the store (one transaction per file)
/// and by in-memory recorders in tests. Any call may fail (e.g. a disk error); scanners propagate it.
class ScanSink {
 public:
  virtual ~ScanSink() = default;
  /// Registers a companion file that chunks may reference (HDF5 external storage, a multi-file
  /// OME-TIFF member) by its URI (ScanContext::SiblingUri) and returns its source id for
  /// ChunkRef::source; the same URI twice gives the same id.
  virtual Result<uint32_t> AddSource(std::string_view uri) = 0;
  /// Declares a group at `path` with `attributes` (a JSON object). Parents are created implicitly.
  virtual Status AddGroup(std::string_view path, const nlohmann::json& attributes) = 0;
  /// Declares that the group at `path` is an OME-NGFF multiscale image (creates it if needed).
  virtual Status AddImage(std::string_view path, const ImageDesc& image) = 0;
  /// Declares an array; chunks are then added with its handle.
  virtual Result<ArrayHandle> AddArray(std::string_view path, const ArrayDesc& array) = 0;
  /// Records the stored chunk with C-order linear index `chunk_index`. Any order; a repeated index
  /// is kInvalidArgument.
  virtual Status AddChunk(ArrayHandle array, uint64_t chunk_index, const ChunkRef& ref) = 0;
  /// Records a chunk whose bytes are held in the index itself (HDF5 compact datasets).
  virtual Status AddInlineChunk(ArrayHandle array, uint64_t chunk_index,
                                std::span<const std::byte> bytes) = 0;
  /// Adds a plain file to the tree (e.g. "OME/METADATA.ome.xml").
  virtual Status AddFile(std::string_view path, std::string bytes) = 0;
  /// A problem that does not stop the scan (malformed XML ignored, a fallback taken).
  virtual void Warn(std::string message) = 0;
  /// Declares that the array at `path` is not served: some of its chunks are known to be
  /// unservable (damaged, past the end of the file, a codec this build lacks). Whether or not it
  /// was declared already, the array and every chunk given for it are dropped, later chunks for
  /// it are ignored, and the refusal is reported with `reason` (which names the chunk, the bytes
  /// present and needed, or the codec). The rest of the file is still indexed. Image levels that
  /// name a refused array are dropped from their image.
  virtual Status RefuseArray(std::string_view path, std::string reason) = 0;
};

}  // namespace refzarr
