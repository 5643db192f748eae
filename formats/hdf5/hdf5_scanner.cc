#include "formats/hdf5/hdf5_scanner.h"

#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "formats/hdf5/byte_source_vfd.h"
#include "formats/hdf5/chunk_index.h"
#include "formats/hdf5/hdf5_bioimage.h"
#include "formats/hdf5/hdf5_dataset.h"
#include "formats/hdf5/hdf5_decoder.h"
#include "formats/hdf5/hdf5_types.h"
#include "formats/hdf5/hdf5_util.h"

namespace refzarr {
namespace {

using internal::H5Id;
using nlohmann::json;

struct Object {
  std::string path;  // relative to the root, "" for the root group
  H5O_type_t type;
};

// Every object of the file. A visit aborted by a corrupt object keeps what it found (the rest of
// the file is still indexed); `error` says why it stopped.
std::vector<Object> ListObjects(hid_t file, Status& error) {
  std::vector<Object> out;
  const herr_t visited = H5Ovisit2(
      file, H5_INDEX_NAME, H5_ITER_INC,
      [](hid_t, const char* name, const H5O_info_t* info, void* data) -> herr_t {
        std::string path = std::strcmp(name, ".") == 0 ? "" : name;
        static_cast<std::vector<Object>*>(data)->push_back({std::move(path), info->type});
        return 0;
      },
      &out, H5O_INFO_BASIC);
  error = visited < 0 ? internal::FromHdf5(StatusCode::kCorrupt, "visit the file's objects") : OkStatus();
  H5Eclear2(H5E_DEFAULT);
  return out;
}

class Hdf5Scanner final : public Scanner {
 public:
  explicit Hdf5Scanner(std::unique_ptr<ChunkDecoder> decoder) : decoder_(std::move(decoder)) {}

  std::string_view Name() const override { return "hdf5"; }

  bool Sniff(std::span<const std::byte> head) const override {
    static constexpr unsigned char kSignature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    // The superblock follows a userblock of 512, 1024, 2048, ... bytes; look as far as `head` goes.
    for (size_t at = 0; at + 8 <= head.size(); at = at == 0 ? 512 : at * 2) {
      if (std::memcmp(head.data() + at, kSignature, 8) == 0) return true;
    }
    return false;
  }

  Status Scan(ByteSource& source, const ScanContext& context, ScanSink& out) const override {
    // Messages do not repeat the file's name: the indexer puts it in front of each one.
    std::lock_guard lock(internal::Hdf5Mutex());
    internal::Hdf5ErrorSilencer quiet;
    // The library may turn a failed read into a retry, a skipped attribute or an object it calls
    // corrupt (then refused): any failed read of the file or of a file beside it fails the scan.
    internal::ReadErrorLatch latch;
    const std::unique_ptr<ByteSource> latched = internal::LatchReadErrors(source, latch);
    const Status scanned = ScanFile(*latched, context, latch, out);
    const Status read = latch.first();
    if (!read.ok()) return Status(read.code(), "read failed: " + read.message());
    return scanned;
  }

 private:
  Status ScanFile(ByteSource& source, const ScanContext& context, internal::ReadErrorLatch& latch,
                  ScanSink& out) const {
    ASSIGN_OR_RETURN(Hdf5FileInfo info, ReadHdf5Superblock(source));
    ASSIGN_OR_RETURN(H5Id file, internal::OpenHdf5OnSource(source, {context, &latch}));
    internal::Hdf5FileContext ctx{file.get(),    &source, info, context, source.Describe(), decoder_.get(),
                                  context.FileName(), &latch};
    Status visit_error;
    const std::vector<Object> objects = ListObjects(file.get(), visit_error);
    if (objects.empty()) {
      return CorruptError("the root group cannot be read" +
                          (visit_error.ok() ? std::string() : " (" + visit_error.message() + ")"));
    }
    if (!visit_error.ok()) out.Warn(visit_error.message() + "; the objects found before are indexed");

    ASSIGN_OR_RETURN(bool bioimage, internal::DescribeBioimage(ctx, out));
    for (const Object& obj : objects) {
      // Stop at the first failed read (each further one may be a slow remote request).
      RETURN_IF_ERROR(latch.first());
      const std::string h5path = "/" + obj.path;
      if (obj.type == H5O_TYPE_GROUP) {
        H5Id group(H5Oopen(file.get(), h5path.c_str(), H5P_DEFAULT));
        json skipped = json::object();
        json attrs = group.valid() ? internal::ReadAttributes(group.get(), skipped) : json::object();
        if (!group.valid()) {
          out.Warn("group " + h5path + ": " +
                   internal::FromHdf5(StatusCode::kCorrupt, "open").message());
        }
        if (!skipped.empty()) attrs["_refzarr_skipped_attributes"] = skipped;
        if (obj.path.empty() && bioimage) attrs["bioformats2raw.layout"] = 3;
        RETURN_IF_ERROR(out.AddGroup(obj.path, attrs));
      } else if (obj.type == H5O_TYPE_DATASET) {
        auto plan = internal::PlanDataset(ctx, h5path);
        H5Eclear2(H5E_DEFAULT);
        if (!plan.ok()) {
          RETURN_IF_ERROR(out.RefuseArray(obj.path, plan.status().message()));
          continue;
        }
        RETURN_IF_ERROR(internal::EmitPlan(ctx, out, obj.path, *plan));
        H5Eclear2(H5E_DEFAULT);
      }
    }
    return OkStatus();
  }

  // Judges non-native arrays (CheckArray) as the indexer's "hdf5" decoder will; thread-safe.
  std::unique_ptr<ChunkDecoder> decoder_;
};

}  // namespace


std::unique_ptr<Scanner> MakeHdf5Scanner() { return std::make_unique<Hdf5Scanner>(MakeHdf5ChunkDecoder()); }

}  // namespace refzarr
