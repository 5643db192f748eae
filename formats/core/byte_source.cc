#include "formats/core/byte_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace refzarr {

SourceStat LocalFileStat(const struct stat& st) {
  auto ns = [](const timespec& t) {
    return std::to_string(static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec);
  };
  SourceStat out;
  out.size = static_cast<uint64_t>(st.st_size);
  // Device and inode: which file; size and both times: which bytes. The change time cannot be set
  // back by a copy that restores the mtime (cp -p, rsync -a), so a rewrite in place shows too.
  out.generation.value = "f1:" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) +
                         ":" + std::to_string(st.st_size) + ":" + ns(st.st_mtim) + ":" +
                         ns(st.st_ctim);
  return out;
}

namespace {

class LocalFileSource final : public ByteSource {
 public:
  LocalFileSource(int fd, std::filesystem::path path) : fd_(fd), path_(std::move(path)) {}
  ~LocalFileSource() override { ::close(fd_); }
  LocalFileSource(const LocalFileSource&) = delete;
  LocalFileSource& operator=(const LocalFileSource&) = delete;

  Result<SourceStat> Stat() override {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return IoError(Describe() + ": stat: " + std::strerror(errno));
    return LocalFileStat(st);
  }
  int LocalDescriptor() const override { return fd_; }

  Status ReadInto(ByteRange range, std::span<std::byte> out) override {
    if (out.size() < range.length) return InternalError(Describe() + ": read buffer too small");
    uint64_t done = 0;
    while (done < range.length) {
      ssize_t n = ::pread(fd_, out.data() + done, range.length - done,
                          static_cast<off_t>(range.offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return IoError(Describe() + ": read " + std::to_string(range.length) + " bytes at " +
                       std::to_string(range.offset) + ": " + std::strerror(errno));
      }
      if (n == 0) {
        return CorruptError(Describe() + ": truncated: wanted " + std::to_string(range.length) +
                            " bytes at offset " + std::to_string(range.offset) +
                            ", file ends first");
      }
      done += static_cast<uint64_t>(n);
    }
    return OkStatus();
  }

  std::string Describe() const override { return "file:" + path_.string(); }

 private:
  int fd_;
  std::filesystem::path path_;
};

class MemorySource final : public ByteSource {
 public:
  MemorySource(std::vector<std::byte> bytes, std::string name)
      : bytes_(std::move(bytes)), name_(std::move(name)) {}
  Result<SourceStat> Stat() override {
    // Its bytes never change: the size is generation enough.
    return SourceStat{bytes_.size(), Generation{"m" + std::to_string(bytes_.size())}};
  }
  Status ReadInto(ByteRange range, std::span<std::byte> out) override {
    if (range.offset > bytes_.size() || range.length > bytes_.size() - range.offset) {
      return CorruptError(Describe() + ": truncated: wanted " + std::to_string(range.length) +
                          " bytes at offset " + std::to_string(range.offset) + ", size is " +
                          std::to_string(bytes_.size()));
    }
    if (range.length > 0) std::memcpy(out.data(), bytes_.data() + range.offset, range.length);
    return OkStatus();
  }
  std::string Describe() const override { return "memory:" + name_; }

 private:
  std::vector<std::byte> bytes_;
  std::string name_;
};

}  // namespace

Result<std::unique_ptr<ByteSource>> OpenLocalFile(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    std::string m = path.string() + ": open: " + std::strerror(err);
    return err == ENOENT ? NotFoundError(m) : IoError(m);
  }
  return std::unique_ptr<ByteSource>(new LocalFileSource(fd, path));
}

std::unique_ptr<ByteSource> MakeMemorySource(std::vector<std::byte> bytes, std::string name) {
  return std::make_unique<MemorySource>(std::move(bytes), std::move(name));
}

Result<std::vector<std::byte>> ReadRange(ByteSource& source, ByteRange range) {
  std::vector<std::byte> out(range.length);
  RETURN_IF_ERROR(source.ReadInto(range, out));
  return out;
}

Result<std::string> ReadFileToString(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError(path.string() + ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return IoError(path.string() + ": read failed");
  return ss.str();
}

}  // namespace refzarr
