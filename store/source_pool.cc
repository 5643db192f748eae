#include "store/source_pool.h"

namespace refzarr {
namespace {

// Rows kept (a source's index row each); past it they are dropped and read again on demand.
constexpr size_t kMaxRows = 100000;

std::string Changed(const SourceInfo& indexed, const std::string& change) {
  return "source " + DisplaySource(indexed.uri) + " changed since it was indexed (" + change +
         "); re-index it";
}

}  // namespace

SourcePool::SourcePool(RefStore& store, SourcePoolOptions options)
    : store_(store), options_(options) {
  if (!options_.openers) options_.openers = &LocalSourceOpeners();
  if (options_.max_open == 0) options_.max_open = 1;
}

std::shared_ptr<ByteSource> SourcePool::FindOpen(int64_t id) {
  auto it = open_index_.find(id);
  if (it == open_index_.end()) return nullptr;
  open_.splice(open_.begin(), open_, it->second);
  return it->second->second;
}

void SourcePool::KeepOpen(int64_t id, std::shared_ptr<ByteSource> source) {
  if (FindOpen(id)) return;
  open_.emplace_front(id, std::move(source));
  open_index_[id] = open_.begin();
  if (open_.size() > options_.max_open) {
    // Closed once the last read holding it lets go.
    open_index_.erase(open_.back().first);
    open_.pop_back();
  }
}

Result<CheckedSource> SourcePool::Get(int64_t id, bool open, bool verify_content) {
  const auto now = std::chrono::steady_clock::now();
  const auto fresh_for = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(options_.revalidate_seconds));
  Row row;
  std::shared_ptr<ByteSource> handle;
  bool known = false;
  {
    std::lock_guard lock(mu_);
    auto it = rows_.find(id);
    if (it != rows_.end()) {
      row = it->second;
      known = true;
      handle = FindOpen(id);
      if (options_.revalidate_seconds > 0 && now - row.checked <= fresh_for &&
          (!open || handle) && (!verify_content || row.verified)) {
        return CheckedSource{row.indexed, open ? handle : nullptr};
      }
    }
  }
  if (!known) {
    ASSIGN_OR_RETURN(row.indexed, store_.GetSource(id));
  }
  const SourceInfo& indexed = row.indexed;
  // What the URI names now.
  Result<SourceStat> st = options_.openers->Stat(indexed.uri);
  if (!st.ok()) {
    if (st.status().code() != StatusCode::kNotFound) return st.status();
    return StaleError("source " + DisplaySource(indexed.uri) + " is missing (indexed " +
                      std::to_string(indexed.size) + " bytes); re-index it");
  }
  SourceInfo seen = indexed;
  seen.size = st->size;
  seen.generation = st->generation;
  seen.fingerprint.clear();
  if (std::string change = DescribeChange(indexed, seen); !change.empty()) {
    return StaleError(Changed(indexed, change));
  }
  if ((open || (verify_content && !row.verified)) && !handle) {
    ASSIGN_OR_RETURN(std::unique_ptr<ByteSource> source, options_.openers->Open(indexed.uri));
    // The file opened may not be the one just stat'ed (replaced in between): check the handle.
    ASSIGN_OR_RETURN(SourceStat opened, source->Stat());
    if (opened.generation != indexed.generation || opened.size != indexed.size) {
      return StaleError(Changed(indexed, "replaced while being opened"));
    }
    handle = std::move(source);
  }
  if (verify_content && !row.verified) {
    ASSIGN_OR_RETURN(std::string fingerprint, ContentFingerprint(*handle, indexed.size));
    if (fingerprint != indexed.fingerprint) return StaleError(Changed(indexed, "content changed"));
    row.verified = true;
  }
  row.checked = now;
  CheckedSource out{row.indexed, open ? handle : nullptr};
  std::lock_guard lock(mu_);
  if (rows_.size() >= kMaxRows) rows_.clear();
  Row& kept = rows_[id];
  const bool verified = kept.verified || row.verified;
  kept = std::move(row);
  kept.verified = verified;
  if (handle) KeepOpen(id, std::move(handle));
  return out;
}

}  // namespace refzarr
