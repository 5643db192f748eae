#define FUSE_USE_VERSION 312

#include "cli/fuse/fuse_mount.h"

#include <fcntl.h>
#include <fuse.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <fstream>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

extern char** environ;

namespace refzarr {
namespace {

// libfuse splices a slice out of its source's descriptor after read_buf returns, on the same worker
// thread and before that thread takes another request. The view's handle is held here until then,
// so a handle the view's SourcePool drops meanwhile is not closed (and its descriptor number reused
// for another file) under the splice.
thread_local std::shared_ptr<ByteSource> t_splicing;

// In-memory values (metadata, transcoded chunks) larger than one kernel read, kept for a short time
// so that a value read in several requests is fetched from the view, and copied, once. Bounded in
// bytes; an entry older than `max_age`, or of another state of the index than the view's now
// (IndexVersion::serial), is fetched again (and its source checked again).
class RecentValues {
 public:
  RecentValues(uint64_t max_bytes, std::chrono::steady_clock::duration max_age)
      : max_bytes_(max_bytes), max_age_(max_age) {}

  std::shared_ptr<const std::string> Find(const std::string& key, uint64_t serial) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    if (it->second->serial != serial ||
        std::chrono::steady_clock::now() - it->second->fetched > max_age_) {
      Drop(it->second);
      return nullptr;
    }
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->bytes;
  }

  void Put(const std::string& key, uint64_t serial, std::shared_ptr<const std::string> bytes) {
    if (bytes->size() > max_bytes_) return;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = index_.find(key);
    if (it != index_.end()) Drop(it->second);
    lru_.push_front({key, bytes, std::chrono::steady_clock::now(), serial});
    index_[key] = lru_.begin();
    bytes_ += bytes->size();
    while (bytes_ > max_bytes_) Drop(std::prev(lru_.end()));
  }

 private:
  struct Entry {
    std::string key;
    std::shared_ptr<const std::string> bytes;
    std::chrono::steady_clock::time_point fetched;
    uint64_t serial = 0;  // the index state it was read from
  };

  void Drop(std::list<Entry>::iterator it) {
    bytes_ -= it->bytes->size();
    index_.erase(it->key);
    lru_.erase(it);
  }

  const uint64_t max_bytes_;
  const std::chrono::steady_clock::duration max_age_;
  std::mutex mu_;
  uint64_t bytes_ = 0;
  std::list<Entry> lru_;
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

// What every callback reaches through fuse_get_context()->private_data.
struct FsContext {
  FsContext(ZarrView& v, const MountOptions& o)
      : view(&v),
        options(o),
        recent(o.value_cache_bytes,
               std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                   std::chrono::duration<double>(o.revalidate_seconds))) {}

  ZarrView* view;
  MountOptions options;
  RecentValues recent;
  uid_t uid = ::getuid();
  gid_t gid = ::getgid();
  // The kernel handles opens itself once `open` answers ENOSYS. Set while INIT is answered, read
  // by whichever worker thread serves an open.
  std::atomic<bool> no_open{false};
  std::mutex log_mutex;
};

// Entries asked of the view per page of a directory being read.
constexpr size_t kReadDirPage = 1024;

// A directory being read: one page of its listing at a time, so reading a directory of millions
// of chunk keys holds one page. The kernel reads a handle in order (offsets only grow, except
// for rewinddir/seekdir, which restart from the first page).
struct OpenDir {
  std::string key;
  std::mutex mu;                  // the kernel may send readdirs of one handle on two threads
  uint64_t first = 0;             // listing index of entries[0]
  std::vector<DirEntry> entries;  // the current page; shorter than kReadDirPage: the last one
};

FsContext& Context() { return *static_cast<FsContext*>(fuse_get_context()->private_data); }

std::string_view KeyOf(const char* path) {
  std::string_view key = path != nullptr ? path : "";
  while (!key.empty() && key.front() == '/') key.remove_prefix(1);
  return key;
}

// One line on the mount's error log, written at once (the log may be a file a background mount
// keeps open for hours).
void LogLine(const std::string& line) {
  FsContext& ctx = Context();
  if (ctx.options.error_log == nullptr) return;
  std::lock_guard<std::mutex> lock(ctx.log_mutex);
  *ctx.options.error_log << "refzarr mount: " << line << std::endl;
}

// Turns a view error into an errno, reporting the message (the errno alone would lose it).
int Fail(const Status& status, std::string_view what) {
  LogLine(std::string(what) + ": " + status.message());
  switch (status.code()) {
    case StatusCode::kNotFound: return -ENOENT;
    case StatusCode::kInvalidArgument: return -EINVAL;
    default: return -EIO;
  }
}

// FUSE callbacks are C callbacks: no exception may cross them. `op` and `path` name the request
// for the log ("read a/0/0").
template <typename F>
int Guarded(std::string_view op, const char* path, F&& body) {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    LogLine(std::string(op) + " " + std::string(KeyOf(path)) + ": out of memory");
    return -ENOMEM;
  } catch (const std::exception& e) {
    LogLine(std::string(op) + " " + std::string(KeyOf(path)) + ": " + e.what());
    return -EIO;
  } catch (...) {
    LogLine(std::string(op) + " " + std::string(KeyOf(path)) + ": unknown error");
    return -EIO;
  }
}

void FillStat(struct stat* st, bool is_directory, uint64_t size) {
  FsContext& ctx = Context();
  std::memset(st, 0, sizeof *st);
  st->st_mode = is_directory ? (S_IFDIR | 0555) : (S_IFREG | 0444);
  st->st_nlink = is_directory ? 2 : 1;
  st->st_size = static_cast<off_t>(size);
  st->st_blksize = 65536;
  st->st_blocks = static_cast<blkcnt_t>((size + 511) / 512);
  st->st_uid = ctx.uid;
  st->st_gid = ctx.gid;
  // Every entry's times are those of the index state the view answers from: when the view moves
  // to a new state (a re-index), the kernel sees new mtimes as attributes expire and drops the
  // pages and directory listings it cached (auto_inval_data, below).
  const int64_t ns = ctx.view->version().loaded_ns;
  st->st_mtim = st->st_ctim = st->st_atim = timespec{static_cast<time_t>(ns / 1000000000),
                                                     static_cast<long>(ns % 1000000000)};
}

void* Init(fuse_conn_info* conn, fuse_config* cfg) {
  FsContext& ctx = Context();
  // Pages stay cached across opens: a value changes only when its source does (then reads fail)
  // or when the index does (then its mtime does).
  cfg->kernel_cache = 1;
  cfg->entry_timeout = ctx.options.revalidate_seconds;
  cfg->attr_timeout = ctx.options.revalidate_seconds;
  cfg->negative_timeout = ctx.options.negative_seconds;
  cfg->nullpath_ok = 0;  // Reads carry no handle (no-open mode): they are served by path.
  cfg->use_ino = 0;
  ctx.no_open = (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT) != 0;
  // A re-indexed archive changes what keys hold without changing their sources: the mtimes of
  // the new state tell the kernel to drop what it cached (one getattr per file per
  // revalidate_seconds of reading, when the attributes expire).
  if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA) conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
  // Let fuse_reply_data splice slice bytes from the source file into /dev/fuse.
  if (conn->capable & FUSE_CAP_SPLICE_WRITE) conn->want |= FUSE_CAP_SPLICE_WRITE;
  if (conn->capable & FUSE_CAP_SPLICE_MOVE) conn->want |= FUSE_CAP_SPLICE_MOVE;
  return &ctx;
}

int GetAttr(const char* path, struct stat* st, fuse_file_info* /*fi*/) {
  return Guarded("stat", path, [&] {
    if (path == nullptr) return -ESTALE;
    std::string_view key = KeyOf(path);
    Result<std::pair<EntryKind, uint64_t>> stat = Context().view->Stat(key);
    if (!stat.ok()) return Fail(stat.status(), "stat " + std::string(key));
    if (stat->first == EntryKind::kMissing) return -ENOENT;
    FillStat(st, stat->first == EntryKind::kDirectory, stat->second);
    return 0;
  });
}

// Reads the page of `dir` that starts at listing index `first`, after the entry named `after`.
Status FetchPage(OpenDir& dir, uint64_t first, const std::string& after) {
  ASSIGN_OR_RETURN(auto page, Context().view->ListPage(dir.key, after, kReadDirPage));
  dir.first = first;
  dir.entries = page ? std::move(*page) : std::vector<DirEntry>();
  return OkStatus();
}

// Makes the current page of `dir` hold listing index `index`: forward page by page, or from the
// first page again for an index before the current page. False past the end of the listing.
Result<bool> SeekDir(OpenDir& dir, uint64_t index) {
  if (index < dir.first) RETURN_IF_ERROR(FetchPage(dir, 0, ""));
  while (index >= dir.first + dir.entries.size()) {
    if (dir.entries.size() < kReadDirPage) return false;
    const std::string after = dir.entries.back().name;
    RETURN_IF_ERROR(FetchPage(dir, dir.first + dir.entries.size(), after));
  }
  return true;
}

int OpenDirectory(const char* path, fuse_file_info* fi) {
  return Guarded("list", path, [&] {
    auto dir = std::make_unique<OpenDir>();
    dir->key = std::string(KeyOf(path));
    Result<std::optional<std::vector<DirEntry>>> page =
        Context().view->ListPage(dir->key, "", kReadDirPage);
    if (!page.ok()) return Fail(page.status(), "list " + dir->key);
    if (!page->has_value()) return -ENOTDIR;
    dir->entries = std::move(**page);
    fi->fh = reinterpret_cast<uint64_t>(dir.release());
    fi->cache_readdir = 1;
    fi->keep_cache = 1;
    return 0;
  });
}

// Offsets: 0 starts the listing; position p ("." and ".." first, then listing index p - 2) has
// offset p + 1, so a listing of millions of chunks goes out one kernel buffer at a time, read
// from the view one page at a time. When the kernel asks for attributes too (readdirplus),
// entries whose size the index knows get them, which saves a lookup per file for `cp -r`,
// `ls -l` and any walk followed by reads.
int ReadDirectory(const char* path, void* buf, fuse_fill_dir_t filler, off_t offset,
                  fuse_file_info* fi, fuse_readdir_flags flags) {
  return Guarded("list", path, [&] {
    OpenDir& dir = *reinterpret_cast<OpenDir*>(fi->fh);
    std::lock_guard<std::mutex> lock(dir.mu);
    const bool plus = (flags & FUSE_READDIR_PLUS) != 0;
    for (uint64_t p = static_cast<uint64_t>(std::max<off_t>(offset, 0));; ++p) {
      struct stat st{};
      std::string name;
      auto fill = static_cast<fuse_fill_dir_flags>(0);
      if (p < 2) {
        name = p == 0 ? "." : "..";
        st.st_mode = S_IFDIR;
      } else {
        Result<bool> more = SeekDir(dir, p - 2);
        if (!more.ok()) return Fail(more.status(), "list " + dir.key);
        if (!*more) break;
        const DirEntry& entry = dir.entries[p - 2 - dir.first];
        name = entry.name;
        if (plus && (entry.is_directory || entry.size)) {
          FillStat(&st, entry.is_directory, entry.size.value_or(0));
          fill = FUSE_FILL_DIR_PLUS;
        } else {
          st.st_mode = entry.is_directory ? S_IFDIR : S_IFREG;
        }
      }
      if (filler(buf, name.c_str(), &st, static_cast<off_t>(p + 1), fill)) {
        break;  // The kernel's buffer is full; it asks again from this offset.
      }
    }
    return 0;
  });
}

int ReleaseDirectory(const char* /*path*/, fuse_file_info* fi) {
  delete reinterpret_cast<OpenDir*>(fi->fh);
  return 0;
}

// Reads are served by path, so an open needs nothing from the view: the lookup before it already
// checked the key (and, for a chunk, its source). Answering ENOSYS puts the kernel in no-open mode:
// later opens (and their releases) never leave the kernel, and a file in the page cache is read
// without a single request. Kernels without that mode get a successful open with no handle.
int Open(const char* /*path*/, fuse_file_info* fi) {
  if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC) != 0) return -EROFS;
  if (Context().no_open) return -ENOSYS;
  fi->keep_cache = 1;
  return 0;
}

// Copies bytes [start, start + n) of `bytes` into a buffer that libfuse frees.
int ReplyFromMemory(fuse_bufvec* vec, const std::string& bytes, uint64_t start, size_t n) {
  if (n == 0) return 0;
  vec->buf[0].mem = std::malloc(n);
  if (vec->buf[0].mem == nullptr) return -ENOMEM;
  std::memcpy(vec->buf[0].mem, bytes.data() + start, n);
  return 0;
}

// One kernel read: the value's bytes at [offset, offset + size). Every read that is not answered
// from the recent in-memory values asks the view, which re-checks the source. libfuse frees the
// bufvec and every memory buffer in it with free().
int ReadBuf(const char* path, fuse_bufvec** bufp, size_t size, off_t offset, fuse_file_info* /*fi*/) {
  return Guarded("read", path, [&] {
    if (path == nullptr) return -ESTALE;
    FsContext& ctx = Context();
    const std::string key(KeyOf(path));
    auto* vec = static_cast<fuse_bufvec*>(std::malloc(sizeof(fuse_bufvec)));
    if (vec == nullptr) return -ENOMEM;
    *vec = FUSE_BUFVEC_INIT(0);
    auto clip = [&](uint64_t total) {
      const uint64_t start = std::min<uint64_t>(static_cast<uint64_t>(offset), total);
      vec->buf[0].size = static_cast<size_t>(std::min<uint64_t>(size, total - start));
      return start;
    };
    int rc = 0;
    const uint64_t serial = ctx.view->version().serial;
    if (std::shared_ptr<const std::string> recent = ctx.recent.Find(key, serial)) {
      const uint64_t start = clip(recent->size());
      rc = ReplyFromMemory(vec, *recent, start, vec->buf[0].size);
    } else {
      Result<std::optional<Value>> value = ctx.view->Get(key);
      if (!value.ok()) {
        rc = Fail(value.status(), "read " + key);
      } else if (!value->has_value()) {
        rc = -ENOENT;
      } else if (!(*value)->pieces.empty()) {
        // A shard: the pieces behind this read. One local slice (a read inside an inner chunk)
        // is spliced like a chunk; otherwise the pieces are read into memory. A shard made
        // only of bytes (transcoded) is kept whole for the kernel's next reads.
        Value& shard = **value;
        const uint64_t total = shard.size();
        const uint64_t start = clip(total);
        std::vector<ValuePiece> parts = ValueRange(shard, start, vec->buf[0].size);
        const bool in_memory = std::none_of(shard.pieces.begin(), shard.pieces.end(),
                                            [](const ValuePiece& p) { return p.slice.has_value(); });
        const int local = parts.size() == 1 && parts[0].slice && parts[0].slice->source
                              ? parts[0].slice->source->LocalDescriptor()
                              : -1;
        if (local >= 0) {
          t_splicing = parts[0].slice->source;
          vec->buf[0].flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
          vec->buf[0].fd = local;
          vec->buf[0].pos = static_cast<off_t>(parts[0].slice->offset);
        } else if (in_memory && shard.pieces.size() == 1 && shard.pieces[0].offset == 0 &&
                   shard.pieces[0].length == shard.pieces[0].bytes->size()) {
          std::shared_ptr<const std::string> bytes = shard.pieces[0].bytes;
          rc = ReplyFromMemory(vec, *bytes, start, vec->buf[0].size);
          if (bytes->size() > start + vec->buf[0].size) ctx.recent.Put(key, serial, std::move(bytes));
        } else {
          Value range;
          range.pieces = std::move(parts);
          Result<std::string> bytes = range.pieces.empty() ? Result<std::string>(std::string())
                                                           : ctx.view->Materialize(range);
          rc = bytes.ok() ? ReplyFromMemory(vec, *bytes, 0, vec->buf[0].size)
                          : Fail(bytes.status(), "read " + key);
        }
      } else if ((*value)->slice) {
        const FileSlice& slice = *(*value)->slice;
        const int local = slice.source ? slice.source->LocalDescriptor() : -1;
        const uint64_t start = clip(slice.length);
        if (local >= 0) {
          t_splicing = slice.source;
          vec->buf[0].flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
          vec->buf[0].fd = local;
          vec->buf[0].pos = static_cast<off_t>(slice.offset + start);
        } else {
          Result<std::string> bytes = ctx.view->Materialize(**value);
          rc = bytes.ok() ? ReplyFromMemory(vec, *bytes, start, vec->buf[0].size)
                          : Fail(bytes.status(), "read " + key);
        }
      } else {
        auto bytes = std::make_shared<const std::string>(std::move((*value)->bytes));
        const uint64_t start = clip(bytes->size());
        rc = ReplyFromMemory(vec, *bytes, start, vec->buf[0].size);
        // Worth keeping only when the kernel will come back for the rest.
        if (bytes->size() > start + vec->buf[0].size) ctx.recent.Put(key, serial, std::move(bytes));
      }
    }
    if (rc != 0) {
      std::free(vec);
      return rc;
    }
    *bufp = vec;
    return 0;
  });
}

int StatFs(const char* /*path*/, struct statvfs* st) {
  std::memset(st, 0, sizeof *st);
  st->f_bsize = 65536;
  st->f_frsize = 65536;
  st->f_namemax = 255;
  st->f_flag = ST_RDONLY;
  return 0;
}

// Every modification: the mount is also "ro" at the kernel level, these are a second wall.
int ReadOnly() { return -EROFS; }

fuse_operations MakeOperations() {
  fuse_operations ops{};
  ops.init = &Init;
  ops.getattr = &GetAttr;
  ops.opendir = &OpenDirectory;
  ops.readdir = &ReadDirectory;
  ops.releasedir = &ReleaseDirectory;
  ops.open = &Open;
  ops.read_buf = &ReadBuf;
  ops.statfs = &StatFs;
  ops.write = [](const char*, const char*, size_t, off_t, fuse_file_info*) { return ReadOnly(); };
  ops.create = [](const char*, mode_t, fuse_file_info*) { return ReadOnly(); };
  ops.mknod = [](const char*, mode_t, dev_t) { return ReadOnly(); };
  ops.mkdir = [](const char*, mode_t) { return ReadOnly(); };
  ops.unlink = [](const char*) { return ReadOnly(); };
  ops.rmdir = [](const char*) { return ReadOnly(); };
  ops.symlink = [](const char*, const char*) { return ReadOnly(); };
  ops.rename = [](const char*, const char*, unsigned int) { return ReadOnly(); };
  ops.link = [](const char*, const char*) { return ReadOnly(); };
  ops.chmod = [](const char*, mode_t, fuse_file_info*) { return ReadOnly(); };
  ops.chown = [](const char*, uid_t, gid_t, fuse_file_info*) { return ReadOnly(); };
  ops.truncate = [](const char*, off_t, fuse_file_info*) { return ReadOnly(); };
  ops.utimens = [](const char*, const timespec*, fuse_file_info*) { return ReadOnly(); };
  ops.setxattr = [](const char*, const char*, const char*, size_t, int) { return ReadOnly(); };
  ops.removexattr = [](const char*, const char*) { return ReadOnly(); };
  ops.fallocate = [](const char*, int, off_t, off_t, fuse_file_info*) { return ReadOnly(); };
  return ops;
}

// Whether `dir` is the mount point of a mount, by /proc/self/mountinfo (a bind mount of a
// directory of the same file system has the same st_dev as its parent, so st_dev alone misses it).
bool IsMountPoint(const std::filesystem::path& dir) {
  std::error_code ec;
  const std::string want = std::filesystem::weakly_canonical(dir, ec).string();
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // Fields: id parent major:minor root mount-point ...; the mount point escapes ' ', '\t',
    // '\n' and '\\' as octal.
    std::istringstream fields(line);
    std::string id, parent, device, root, point;
    if (!(fields >> id >> parent >> device >> root >> point)) continue;
    std::string decoded;
    for (size_t i = 0; i < point.size(); ++i) {
      if (point[i] == '\\' && i + 3 < point.size()) {
        decoded += static_cast<char>(std::strtol(point.substr(i + 1, 3).c_str(), nullptr, 8));
        i += 3;
      } else {
        decoded += point[i];
      }
    }
    if (decoded == want) return true;
  }
  return false;
}

}  // namespace

Result<MountpointCheck> CheckMountpoint(const std::filesystem::path& mountpoint) {
  const std::string where = "mount " + mountpoint.string();
  struct stat st {};
  if (::stat(mountpoint.c_str(), &st) != 0) {
    if (errno == ENOTCONN) {
      return InvalidArgumentError(
          where + ": a mount whose file system is gone is still there; unmount it first "
                  "(fusermount3 -u " + mountpoint.string() + ")");
    }
    return IoError(where + ": " + std::strerror(errno) +
                   " (the mount point must be an existing directory)");
  }
  if (!S_ISDIR(st.st_mode)) return InvalidArgumentError(where + ": not a directory");
  if (IsMountPoint(mountpoint)) {
    return InvalidArgumentError(where + ": already a mount point; unmount it first " +
                                "(fusermount3 -u " + mountpoint.string() +
                                ") or pick another directory");
  }
  MountpointCheck check;
  std::error_code ec;
  check.empty = std::filesystem::is_empty(mountpoint, ec) || ec;
  return check;
}

namespace {

struct FuseDeleter {
  void operator()(fuse* f) const { fuse_destroy(f); }
};
using FusePtr = std::unique_ptr<fuse, FuseDeleter>;

struct LoopConfigDeleter {
  void operator()(fuse_loop_config* c) const { fuse_loop_cfg_destroy(c); }
};

// A mounted file system: the fuse handle plus the context its callbacks see.
class Mounted {
 public:
  // Checks the mount point and mounts; `say` gets the warnings (a mount point that is not empty).
  static Result<std::unique_ptr<Mounted>> Create(
      ZarrView& view, const MountOptions& options,
      const std::function<void(const std::string&)>& say) {
    ASSIGN_OR_RETURN(MountpointCheck check, CheckMountpoint(options.mountpoint));
    if (!check.empty) {
      say("refzarr mount: warning: " + options.mountpoint.string() +
          " is not empty; its files are hidden while the index is mounted on it");
    }
    auto m = std::unique_ptr<Mounted>(new Mounted(view, options));

    std::string mount_options = "ro,default_permissions,fsname=refzarr,subtype=refzarr";
    if (options.allow_other) mount_options += ",allow_other";
    std::vector<std::string> argv = {"refzarr", "-o", mount_options};
    if (options.debug) argv.push_back("-d");
    std::vector<char*> raw;
    for (std::string& a : argv) raw.push_back(a.data());
    fuse_args args = FUSE_ARGS_INIT(static_cast<int>(raw.size()), raw.data());
    fuse_operations ops = MakeOperations();
    m->fuse_.reset(fuse_new(&args, &ops, sizeof ops, &m->context_));
    fuse_opt_free_args(&args);
    if (!m->fuse_) return InternalError("fuse_new failed for options " + mount_options);
    if (fuse_mount(m->fuse_.get(), options.mountpoint.c_str()) != 0) {
      m->fuse_.reset();
      return IoError("mount " + options.mountpoint.string() +
                     ": failed (is it an existing directory, not mounted already, and may this "
                     "user use /dev/fuse?)");
    }
    m->mounted_ = true;
    return m;
  }

  ~Mounted() { Close(); }

  // Serves requests until the file system is unmounted or the session is told to exit.
  int Loop() {
    std::unique_ptr<fuse_loop_config, LoopConfigDeleter> config(fuse_loop_cfg_create());
    if (context_.options.max_threads != 0) {
      fuse_loop_cfg_set_max_threads(config.get(), context_.options.max_threads);
    }
    return fuse_loop_mt(fuse_.get(), config.get());
  }

  // Detaches the kernel mount (fuse_unmount notices a mount already gone) and frees the handle.
  void Close() {
    if (!fuse_) return;
    if (mounted_) fuse_unmount(fuse_.get());
    mounted_ = false;
    fuse_.reset();
  }

  fuse* handle() { return fuse_.get(); }

 private:
  Mounted(ZarrView& view, const MountOptions& options) : context_(view, options) {}
  FsContext context_;
  FusePtr fuse_;
  bool mounted_ = false;
};

// Asks the kernel to drop the mount, which ends the request loop (reads of /dev/fuse fail). Root
// can umount2 itself; other users go through the setuid fusermount3, as `fusermount3 -u` would.
Status DetachMount(const std::filesystem::path& mountpoint) {
  if (::geteuid() == 0) {
    if (::umount2(mountpoint.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
      return IoError("unmount " + mountpoint.string() + ": " + std::strerror(errno));
    }
    return OkStatus();
  }
  std::string path = mountpoint.string();
  std::vector<char*> argv = {const_cast<char*>("fusermount3"), const_cast<char*>("-u"),
                             const_cast<char*>("-z"), const_cast<char*>("-q"), path.data(),
                             nullptr};
  pid_t pid = 0;
  if (posix_spawnp(&pid, "fusermount3", nullptr, nullptr, argv.data(), environ) != 0) {
    return IoError("unmount " + path + ": cannot run fusermount3");
  }
  int wstatus = 0;
  ::waitpid(pid, &wstatus, 0);
  return OkStatus();
}

class BackgroundMount final : public FuseMount {
 public:
  BackgroundMount(std::unique_ptr<Mounted> mounted, std::filesystem::path mountpoint)
      : mounted_(std::move(mounted)), mountpoint_(std::move(mountpoint)) {
    thread_ = std::thread([this] { mounted_->Loop(); });
  }
  ~BackgroundMount() override { Unmount().IgnoreError(); }

  Status Unmount() override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!thread_.joinable()) return OkStatus();
    Status status = DetachMount(mountpoint_);
    if (!status.ok()) return status;
    thread_.join();
    mounted_->Close();
    return OkStatus();
  }

 private:
  std::unique_ptr<Mounted> mounted_;
  std::filesystem::path mountpoint_;
  std::mutex mutex_;
  std::thread thread_;
};

}  // namespace

Result<std::unique_ptr<FuseMount>> StartFuseMount(ZarrView& view, const MountOptions& options) {
  auto say = [&](const std::string& line) {
    if (options.error_log != nullptr) *options.error_log << line << std::endl;
  };
  ASSIGN_OR_RETURN(std::unique_ptr<Mounted> mounted, Mounted::Create(view, options, say));
  return std::unique_ptr<FuseMount>(
      std::make_unique<BackgroundMount>(std::move(mounted), options.mountpoint));
}

Status Mount(ZarrView& view, const MountOptions& options, std::ostream& log) {
  // Lines for the user go to `log` and to the error log when that is another stream (--log): a
  // background mount has nothing else once detached.
  auto say = [&](const std::string& line) {
    log << line << std::endl;
    if (options.error_log != nullptr && options.error_log != &log) {
      *options.error_log << line << std::endl;
    }
  };
  ASSIGN_OR_RETURN(std::unique_ptr<Mounted> mounted, Mounted::Create(view, options, say));
  fuse_session* session = fuse_get_session(mounted->handle());
  if (fuse_set_signal_handlers(session) != 0) {
    return InternalError("cannot install signal handlers for the mount");
  }
  const std::string at = options.mountpoint.string();
  say("refzarr: mounted Zarr v" + std::to_string(view.options().zarr_format) + " at " + at +
      (options.foreground ? " (unmount with Ctrl-C or fusermount3 -u " + at + ")"
                          : " in the background (unmount with fusermount3 -u " + at + ")"));
  if (!options.foreground && fuse_daemonize(0) != 0) {
    fuse_remove_signal_handlers(session);
    return InternalError("cannot detach into the background");
  }
  int rc = mounted->Loop();
  fuse_remove_signal_handlers(session);
  mounted->Close();
  say("refzarr: unmounted " + at);
  if (rc != 0 && rc != SIGINT && rc != SIGTERM && rc != SIGHUP) {
    return IoError("serving the mount at " + at + " failed (" + std::to_string(rc) + ")");
  }
  return OkStatus();
}

}  // namespace refzarr
