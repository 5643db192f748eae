#include "formats/hdf5/byte_source_vfd.h"

#include <H5FDpublic.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <exception>
#include <string>
#include <utility>

namespace refzarr::internal {

void ReadErrorLatch::Record(const Status& error) {
  if (error.ok()) return;
  std::lock_guard lock(mutex_);
  if (first_.ok()) first_ = error;
}

void ReadErrorLatch::RecordOpenFailure(const Status& error) {
  if (error.code() == StatusCode::kIo || error.code() == StatusCode::kStale) Record(error);
}

Status ReadErrorLatch::first() const {
  std::lock_guard lock(mutex_);
  return first_;
}

namespace {

// `error`, its message naming `source` (ByteSources name themselves; a message that does not is
// given the name in front).
Status NamingSource(const ByteSource& source, const Status& error) {
  const std::string name = source.Describe();
  if (error.message().find(name) != std::string::npos) return error;
  return Status(error.code(), name + ": " + error.message());
}

class LatchingSource final : public ByteSource {
 public:
  LatchingSource(ByteSource& inner, ReadErrorLatch& latch) : inner_(inner), latch_(latch) {}
  Result<SourceStat> Stat() override {
    Result<SourceStat> st = inner_.Stat();
    if (!st.ok()) latch_.Record(NamingSource(inner_, st.status()));
    return st;
  }
  int LocalDescriptor() const override { return inner_.LocalDescriptor(); }
  Status ReadInto(ByteRange range, std::span<std::byte> out) override {
    Status s = inner_.ReadInto(range, out);
    if (!s.ok()) latch_.Record(NamingSource(inner_, s));
    return s;
  }
  void Prefetch(std::span<const ByteRange> ranges) override { inner_.Prefetch(ranges); }
  bool ValidatesReads() const override { return inner_.ValidatesReads(); }
  std::string Describe() const override { return inner_.Describe(); }

 private:
  ByteSource& inner_;
  ReadErrorLatch& latch_;
};

// The driver's info in a file access property list (copied by fapl_copy, freed by fapl_free):
// the source of the file the list opens and the name it is opened under, and where the files the
// library opens on its own from that file are found: `siblings`, with names the library built
// under `folder` (the folder of `label`) taken relative to it.
struct DriverInfo {
  ByteSource* source = nullptr;  // not owned
  std::string label;
  std::string folder;
  ScanContext siblings;
  ReadErrorLatch* latch = nullptr;  // not owned, may be null
};

// What the driver keeps per open file. HDF5 allocates nothing: the driver returns `pub`, the
// first member of a standard-layout struct, and gets it back in every callback.
struct FileState {
  ByteSource* source = nullptr;        // what is read: `owned`, or the caller's
  std::unique_ptr<ByteSource> owned;   // a file the library opened itself (and its latch)
  std::unique_ptr<ByteSource> opened;  // ... the source `owned` reads
  DriverInfo info;                     // handed on to the files the library opens from this one
  haddr_t eoa = 0;
  haddr_t eof = 0;
};
struct File {
  H5FD_t pub;  // first: HDF5 casts between H5FD_t* and File*
  FileState* state;
};
static_assert(std::is_standard_layout_v<File>);

FileState& StateOf(const H5FD_t* f) { return *reinterpret_cast<const File*>(f)->state; }

// Pushes `message` on the calling thread's HDF5 error stack, where FromHdf5 finds it.
void PushError(hid_t minor, const std::string& message) {
  H5Epush2(H5E_DEFAULT, __FILE__, "ByteSourceDriver", __LINE__, H5E_ERR_CLS, H5E_VFL, minor, "%s",
           message.c_str());
}

// The name a file is opened under: only a label (the source comes from the driver info), but the
// library builds the names of the files it opens itself from its folder, so it is an absolute
// path-like name whose folder the driver recognises (see Open).
constexpr std::string_view kLabelRoot = "/byte-source/";

std::string LabelOf(const ByteSource& source) {
  std::string d = source.Describe();
  std::replace(d.begin(), d.end(), '/', '|');  // one path segment: the folder is kLabelRoot alone
  return std::string(kLabelRoot) + d;
}

void* FaplCopy(const void* info) {
  try {
    return new DriverInfo(*static_cast<const DriverInfo*>(info));
  } catch (const std::exception& e) {
    PushError(H5E_CANTCOPY, std::string("copy the ByteSource driver's info: ") + e.what());
    return nullptr;
  }
}

herr_t FaplFree(void* info) {
  delete static_cast<DriverInfo*>(info);
  return 0;
}

void* FaplGet(H5FD_t* f) { return FaplCopy(&StateOf(f).info); }

// The library opens a file with this driver in two cases: the caller's H5Fopen (name == the
// info's label, the info's source), or a file it opens while reading another (a virtual
// dataset's source file, with the other file's access properties): then `name` is the source's
// name as the library resolved it, absolute or under the other file's folder (the info's
// `folder`: the library prefixes the folder of the name it opened the other file under), and the
// file is opened beside the other one through its ScanContext.
Result<std::unique_ptr<FileState>> OpenState(const char* name, const DriverInfo& info) {
  auto state = std::make_unique<FileState>();
  state->info = info;
  if (info.label == name) {
    state->source = info.source;
  } else {
    std::string_view sibling(name);
    if (sibling.starts_with(info.folder)) sibling.remove_prefix(info.folder.size());
    auto opened = info.siblings.OpenSibling(sibling);
    if (!opened.ok()) {
      // A missing file is an answer (the library probes for the sources of "%b" mappings).
      if (info.latch) info.latch->RecordOpenFailure(opened.status());
      return opened.status();
    }
    state->opened = std::move(*opened);
    if (info.latch) {
      state->owned = LatchReadErrors(*state->opened, *info.latch);
      state->source = state->owned.get();
    } else {
      state->source = state->opened.get();
    }
    state->info.source = state->source;
    state->info.label = name;
    state->info.folder = std::string(name, std::string_view(name).rfind('/') + 1);
    state->info.siblings = ScanContext(info.siblings.SiblingUri(sibling), info.siblings.openers());
  }
  ASSIGN_OR_RETURN(const SourceStat st, state->source->Stat());
  state->eof = st.size;
  return state;
}

H5FD_t* Open(const char* name, unsigned flags, hid_t fapl, haddr_t maxaddr) {
  try {
    if (flags & (H5F_ACC_RDWR | H5F_ACC_CREAT | H5F_ACC_TRUNC | H5F_ACC_EXCL)) {
      PushError(H5E_CANTOPENFILE, "the ByteSource driver reads, it cannot write or create " + std::string(name));
      return nullptr;
    }
    if (maxaddr == 0 || maxaddr == HADDR_UNDEF) {
      PushError(H5E_CANTOPENFILE, "bogus maxaddr");
      return nullptr;
    }
    const auto* info = static_cast<const DriverInfo*>(H5Pget_driver_info(fapl));
    if (info == nullptr || info->source == nullptr) {
      PushError(H5E_CANTOPENFILE, "the ByteSource driver was given no source");
      return nullptr;
    }
    auto state = OpenState(name, *info);
    if (!state.ok()) {
      PushError(H5E_CANTOPENFILE, state.status().message());
      return nullptr;
    }
    auto* file = new File{};
    file->state = state->release();
    return &file->pub;
  } catch (const std::exception& e) {
    PushError(H5E_CANTOPENFILE, std::string("open through the ByteSource driver: ") + e.what());
    return nullptr;
  }
}

herr_t Close(H5FD_t* f) {
  auto* file = reinterpret_cast<File*>(f);
  delete file->state;
  delete file;
  return 0;
}

// Two files are the same when they read the same source object: the library shares one open
// file between H5Fopen calls that compare equal.
int Compare(const H5FD_t* a, const H5FD_t* b) {
  const auto x = reinterpret_cast<std::uintptr_t>(StateOf(a).source);
  const auto y = reinterpret_cast<std::uintptr_t>(StateOf(b).source);
  return x < y ? -1 : x > y ? 1 : 0;
}

// As the sec2 driver: metadata is accumulated (small metadata reads are merged into larger ones)
// and raw data sieved; the aggregation flags govern allocation, which a read-only file never does.
herr_t Query(const H5FD_t*, unsigned long* flags) {
  if (flags) {
    *flags = H5FD_FEAT_AGGREGATE_METADATA | H5FD_FEAT_ACCUMULATE_METADATA | H5FD_FEAT_DATA_SIEVE |
             H5FD_FEAT_AGGREGATE_SMALLDATA | H5FD_FEAT_SUPPORTS_SWMR_IO;
  }
  return 0;
}

haddr_t GetEoa(const H5FD_t* f, H5FD_mem_t) { return StateOf(f).eoa; }

herr_t SetEoa(H5FD_t* f, H5FD_mem_t, haddr_t addr) {
  StateOf(f).eoa = addr;
  return 0;
}

// The source's size when the file was opened: the source itself refuses bytes that changed since.
haddr_t GetEof(const H5FD_t* f, H5FD_mem_t) { return StateOf(f).eof; }

herr_t Read(H5FD_t* f, H5FD_mem_t, hid_t, haddr_t addr, size_t size, void* buf) {
  FileState& s = StateOf(f);
  if (addr == HADDR_UNDEF || size > UINT64_MAX - addr) {
    PushError(H5E_OVERFLOW, "read of " + std::to_string(size) + " bytes at an address out of range");
    return -1;
  }
  // What lies past the end of the source reads as zeros (the sec2 driver does the same: the
  // library reads whole blocks near the end of a file).
  const uint64_t have = addr >= s.eof ? 0 : std::min<uint64_t>(size, s.eof - addr);
  auto* out = static_cast<std::byte*>(buf);
  if (have > 0) {
    // No exception may cross into the C library.
    try {
      const Status read = s.source->ReadInto({addr, have}, std::span(out, have));
      if (!read.ok()) {
        PushError(H5E_READERROR, NamingSource(*s.source, read).message());
        return -1;
      }
    } catch (const std::exception& e) {
      PushError(H5E_READERROR, "read through the ByteSource driver failed: " + std::string(e.what()));
      return -1;
    }
  }
  if (have < size) std::memset(out + have, 0, size - have);
  return 0;
}

herr_t Write(H5FD_t* f, H5FD_mem_t, hid_t, haddr_t, size_t, const void*) {
  PushError(H5E_WRITEERROR, StateOf(f).source->Describe() + " is read through the ByteSource driver, which cannot write");
  return -1;
}

// Nothing to lock: a source is read-only. The library checks a file's "open for writing" flags
// only for drivers that lock (as sec2 does), so that a file its writer left flagged is refused,
// or read in SWMR-read mode when it was written for SWMR, as through sec2.
herr_t Lock(H5FD_t*, hbool_t) { return 0; }
herr_t Unlock(H5FD_t*) { return 0; }

H5FD_class_t MakeClass() {
  H5FD_class_t c{};
  c.name = "refzarr_byte_source";
  c.maxaddr = static_cast<haddr_t>(INT64_MAX);
  c.fc_degree = H5F_CLOSE_WEAK;
  c.fapl_size = sizeof(DriverInfo);
  c.fapl_get = FaplGet;
  c.fapl_copy = FaplCopy;
  c.fapl_free = FaplFree;
  c.open = Open;
  c.close = Close;
  c.cmp = Compare;
  c.query = Query;
  c.get_eoa = GetEoa;
  c.set_eoa = SetEoa;
  c.get_eof = GetEof;
  c.read = Read;
  c.write = Write;
  c.lock = Lock;
  c.unlock = Unlock;
  const H5FD_mem_t map[H5FD_MEM_NTYPES] = H5FD_FLMAP_DICHOTOMY;
  std::copy(std::begin(map), std::end(map), std::begin(c.fl_map));
  return c;
}

// The driver's id, registered on first use (and again should the library have been closed and
// reopened, which frees it). Call with Hdf5Mutex() held.
Result<hid_t> DriverId() {
  static const H5FD_class_t kClass = MakeClass();
  static hid_t id = H5I_INVALID_HID;
  if (id < 0 || H5Iis_valid(id) <= 0) {
    id = H5FDregister(&kClass);
    if (id < 0) return FromHdf5(StatusCode::kInternal, "register the ByteSource file driver");
  }
  return id;
}

}  // namespace

std::unique_ptr<ByteSource> LatchReadErrors(ByteSource& inner, ReadErrorLatch& latch) {
  return std::make_unique<LatchingSource>(inner, latch);
}

Result<H5Id> OpenHdf5OnSource(ByteSource& source, const Hdf5SourceOptions& options) {
  std::lock_guard lock(Hdf5Mutex());
  ASSIGN_OR_RETURN(const hid_t driver, DriverId());
  ASSIGN_OR_RETURN(H5Id fapl, CheckId(H5Pcreate(H5P_FILE_ACCESS), "file access properties", StatusCode::kInternal));
  RETURN_IF_ERROR(CheckErr(H5Pset_metadata_read_attempts(fapl.get(), kHdf5MetadataReadAttempts),
                           "metadata read attempts", StatusCode::kInternal));
  const DriverInfo info{&source, LabelOf(source), std::string(kLabelRoot), options.siblings, options.latch};
  RETURN_IF_ERROR(CheckErr(H5Pset_driver(fapl.get(), driver, &info), "file driver", StatusCode::kInternal));
  H5Id file(H5Fopen(info.label.c_str(), H5F_ACC_RDONLY, fapl.get()));
  // A failed read is no reason to try again (each try may be a remote request).
  const bool read_failed = options.latch != nullptr && !options.latch->first().ok();
  if (!file.valid() && !read_failed) {
    // A file whose writer crashed keeps its "open for writing" flag; SWMR-read mode reads it.
    H5Eclear2(H5E_DEFAULT);
    file = H5Id(H5Fopen(info.label.c_str(), H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, fapl.get()));
  }
  if (!file.valid()) return FromHdf5(StatusCode::kCorrupt, "open with the HDF5 library");
  return file;
}

}  // namespace refzarr::internal
