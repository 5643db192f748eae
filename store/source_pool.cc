#include "store/source_pool.h"

#include <algorithm>

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
  auto seconds = [](double s) {
    return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(s));
  };
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
      const bool verified = !verify_content || row.verified;
      // A source whose reads validate themselves (a read of another version fails with kStale
      // instead of returning its bytes) is stat'ed at most every validating_revalidate_seconds:
      // between stats, bytes it already holds (cached) are the indexed version's.
      const double window = row.validating ? std::max(options_.revalidate_seconds,
                                                      options_.validating_revalidate_seconds)
                                           : options_.revalidate_seconds;
      if (window > 0 && now - row.checked <= seconds(window) && (!open || handle) && verified) {
        return CheckedSource{row.indexed, open ? handle : nullptr};
      }
    }
  }
  if (!known) {
    ASSIGN_OR_RETURN(row.indexed, store_.GetSource(id));
    Result<const SourceOpener*> opener = options_.openers->Find(row.indexed.uri);
    row.validating = opener.ok() && (*opener)->ValidatesReads();
  }
  const SourceInfo& indexed = row.indexed;
  auto missing = [&] {
    return StaleError("source " + DisplaySource(indexed.uri) + " is missing (indexed " +
                      std::to_string(indexed.size) + " bytes); re-index it");
  };
  auto compare = [&](const SourceStat& st) -> Status {
    SourceInfo seen = indexed;
    seen.size = st.size;
    seen.generation = st.generation;
    seen.fingerprint.clear();
    if (std::string change = DescribeChange(indexed, seen); !change.empty()) {
      return StaleError(Changed(indexed, change));
    }
    return OkStatus();
  };
  if ((open || (verify_content && !row.verified)) && !handle) {
    // Opened and checked as opened (its own stat: for a local file the descriptor's, for a
    // remote one the version its reads ask for), so no read goes through a handle of another
    // version than the one checked; no separate stat of the URI is needed.
    Result<std::unique_ptr<ByteSource>> source = options_.openers->Open(indexed.uri);
    if (!source.ok()) {
      if (source.status().code() == StatusCode::kNotFound) return missing();
      return source.status();
    }
    ASSIGN_OR_RETURN(SourceStat opened, (*source)->Stat());
    RETURN_IF_ERROR(compare(opened));
    row.validating = row.validating && (*source)->ValidatesReads();
    handle = std::move(*source);
  } else {
    // What the URI names now.
    Result<SourceStat> st = options_.openers->Stat(indexed.uri);
    if (!st.ok()) {
      if (st.status().code() != StatusCode::kNotFound) return st.status();
      return missing();
    }
    RETURN_IF_ERROR(compare(*st));
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
