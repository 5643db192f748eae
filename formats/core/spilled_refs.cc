#include "formats/core/spilled_refs.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <type_traits>

namespace refzarr {
namespace {

// One reference on disk. The file never leaves the process, so native layout is fine.
struct Record {
  uint64_t index;
  uint64_t offset;
  uint64_t length;
  uint32_t source;
  uint32_t flags;
};
static_assert(sizeof(Record) == 32);

constexpr uint64_t kRecordsPerRead = 4096;  // 128 KiB per run while merging.

std::string Errno() { return std::strerror(errno); }

// Runs pread or pwrite until all `size` bytes at `offset` are done; false on an error or end of file.
template <typename Buffer, typename Call>
bool Whole(Call call, int fd, Buffer* buffer, size_t size, uint64_t offset) {
  auto* p = reinterpret_cast<std::conditional_t<std::is_const_v<Buffer>, const char, char>*>(buffer);
  auto at = static_cast<off_t>(offset);
  while (size > 0) {
    ssize_t n = call(fd, p, size, at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
    at += n;
  }
  return true;
}

}  // namespace

Result<std::shared_ptr<SpilledRefs>> SpilledRefs::Create() {
  std::error_code ec;
  std::filesystem::path dir = std::filesystem::temp_directory_path(ec);
  if (ec) dir = "/tmp";
  std::string name = (dir / "refzarr-refs-XXXXXX").string();
  int fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0) return IoError("temporary file for chunk references in " + dir.string() + ": " + Errno());
  ::unlink(name.c_str());  // Anonymous from now on: gone when closed, whatever happens.
  return std::shared_ptr<SpilledRefs>(new SpilledRefs(fd));
}

SpilledRefs::~SpilledRefs() { ::close(fd_); }

Status SpilledRefs::AppendRun(std::vector<std::pair<uint64_t, ChunkRef>>& refs) {
  std::stable_sort(refs.begin(), refs.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  std::vector<Record> records;
  records.reserve(std::min<size_t>(refs.size(), kRecordsPerRead));
  const uint64_t first = count_;
  auto flush = [&]() -> Status {
    if (!Whole(::pwrite, fd_, records.data(), records.size() * sizeof(Record), count_ * sizeof(Record))) {
      return IoError("writing chunk references to a temporary file: " + Errno());
    }
    count_ += records.size();
    records.clear();
    return OkStatus();
  };
  for (const auto& [index, ref] : refs) {
    records.push_back({index, ref.offset, ref.length, ref.source, ref.flags});
    if (ref.flags != 0) any_flagged_ = true;
    if (records.size() == kRecordsPerRead) RETURN_IF_ERROR(flush());
  }
  RETURN_IF_ERROR(flush());
  if (count_ > first) runs_.emplace_back(first, count_ - first);
  std::vector<std::pair<uint64_t, ChunkRef>>().swap(refs);
  return OkStatus();
}

Status SpilledRefs::Read(uint64_t first, uint64_t n,
                         std::vector<std::pair<uint64_t, ChunkRef>>& out) const {
  std::vector<Record> records(n);
  if (!Whole(::pread, fd_, records.data(), n * sizeof(Record), first * sizeof(Record))) {
    return IoError("reading chunk references back from a temporary file: " + Errno());
  }
  out.clear();
  for (const Record& r : records) {
    out.emplace_back(r.index, ChunkRef{r.source, r.offset, r.length, r.flags});
  }
  return OkStatus();
}

SortedChunkRefs::SortedChunkRefs(const std::vector<std::pair<uint64_t, ChunkRef>>& in_memory,
                                 const SpilledRefs* spilled)
    : in_memory_(in_memory), spilled_(spilled) {
  auto by_index = [](const auto& x, const auto& y) { return x.first < y.first; };
  if (!std::is_sorted(in_memory_.begin(), in_memory_.end(), by_index)) {
    order_.resize(in_memory_.size());
    for (size_t i = 0; i < order_.size(); ++i) order_[i] = i;
    std::stable_sort(order_.begin(), order_.end(), [&](size_t x, size_t y) {
      return in_memory_[x].first < in_memory_[y].first;
    });
  }
  if (spilled_ != nullptr) {
    for (const auto& [first, count] : spilled_->runs()) runs_.push_back({first, first + count, {}, 0});
  }
}

Status SortedChunkRefs::Refill(Run& run) {
  if (run.pos < run.buffer.size() || run.next == run.end) return OkStatus();
  const uint64_t n = std::min(kRecordsPerRead, run.end - run.next);
  RETURN_IF_ERROR(spilled_->Read(run.next, n, run.buffer));
  run.next += n;
  run.pos = 0;
  return OkStatus();
}

std::optional<uint64_t> SortedChunkRefs::Head(size_t s) const {
  if (s < runs_.size()) {
    const Run& run = runs_[s];
    if (run.pos < run.buffer.size()) return run.buffer[run.pos].first;
    return std::nullopt;
  }
  if (memory_pos_ >= in_memory_.size()) return std::nullopt;
  return in_memory_[order_.empty() ? memory_pos_ : order_[memory_pos_]].first;
}

Result<std::optional<std::pair<uint64_t, ChunkRef>>> SortedChunkRefs::Next() {
  if (!started_) {
    started_ = true;
    for (size_t s = 0; s <= runs_.size(); ++s) RETURN_IF_ERROR(Push(s));
  }
  if (heads_.empty()) return std::optional<std::pair<uint64_t, ChunkRef>>();
  const size_t s = heads_.top().second;
  heads_.pop();
  std::pair<uint64_t, ChunkRef> out;
  if (s < runs_.size()) {
    out = runs_[s].buffer[runs_[s].pos++];
  } else {
    out = in_memory_[order_.empty() ? memory_pos_ : order_[memory_pos_]];
    ++memory_pos_;
  }
  RETURN_IF_ERROR(Push(s));
  return std::optional<std::pair<uint64_t, ChunkRef>>(out);
}

Status SortedChunkRefs::Push(size_t s) {
  if (s < runs_.size()) RETURN_IF_ERROR(Refill(runs_[s]));
  if (std::optional<uint64_t> head = Head(s)) heads_.emplace(*head, s);
  return OkStatus();
}

}  // namespace refzarr
