// An in-memory ZarrView for front-end tests: keys hold bytes, file slices or errors; directories are
// implied by the keys. Records every key asked for, so tests can prove what a front end requested.
#pragma once

#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "store/zarr_view.h"

namespace refzarr::testing {

class FakeZarrView final : public ZarrView {
 public:
  explicit FakeZarrView(int zarr_format = 2) { options_.zarr_format = zarr_format; }

  void AddBytes(const std::string& key, std::string bytes, bool is_metadata = false) {
    Entry& e = entries_[key];
    e.value.bytes = std::move(bytes);
    e.value.is_metadata = is_metadata;
  }
  void AddSlice(const std::string& key, FileSlice slice) { entries_[key].value.slice = slice; }
  /// A slice of the local file at `path`, opened as a view's SourcePool would hand it out.
  static FileSlice LocalSlice(const std::filesystem::path& path, uint64_t offset, uint64_t length) {
    auto source = OpenLocalFile(path);
    if (!source.ok()) throw std::runtime_error(source.status().message());
    return FileSlice{std::shared_ptr<ByteSource>(std::move(*source)), offset, length};
  }
  /// Get() of `key` fails with `status`; Stat() still reports a file of `size` bytes, as an index
  /// knows sizes without touching the source.
  void AddError(const std::string& key, Status status, uint64_t size) {
    Entry& e = entries_[key];
    e.error = std::move(status);
    e.value.bytes.assign(size, '\0');
  }

  Result<std::optional<Value>> Get(std::string_view key) override {
    Record(key);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++get_calls_[std::string(key)];
    }
    auto it = entries_.find(std::string(key));
    if (it == entries_.end()) return std::optional<Value>();
    if (!it->second.error.ok()) return it->second.error;
    return std::optional<Value>(it->second.value);
  }

  Result<std::string> Materialize(const Value& value) override {
    ++materialize_calls_;
    if (!value.slice) return value.bytes;
    std::string out(value.slice->length, '\0');
    RETURN_IF_ERROR(value.slice->source->ReadInto({value.slice->offset, value.slice->length},
                                                  std::as_writable_bytes(std::span(out))));
    return out;
  }

  Result<std::pair<EntryKind, uint64_t>> Stat(std::string_view key) override {
    Record(key);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++stat_calls_[std::string(key)];
    }
    auto it = entries_.find(std::string(key));
    if (it != entries_.end()) return std::make_pair(EntryKind::kFile, it->second.value.size());
    if (IsDirectory(key)) return std::make_pair(EntryKind::kDirectory, uint64_t{0});
    return std::make_pair(EntryKind::kMissing, uint64_t{0});
  }

  /// Pages of the implied directory, names ascending; every page asked is counted
  /// (list_pages()). AddListError makes pages of a directory fail.
  Result<std::optional<std::vector<DirEntry>>> ListPage(std::string_view prefix,
                                                        std::string_view after,
                                                        size_t limit) override {
    Record(prefix);
    ++list_pages_;
    if (!IsDirectory(prefix)) return std::optional<std::vector<DirEntry>>();
    auto failing = list_errors_.find(std::string(prefix));
    if (failing != list_errors_.end() && (!after.empty() || !failing->second.second)) {
      return failing->second.first;
    }
    std::string base = prefix.empty() ? "" : std::string(prefix) + "/";
    std::map<std::string, DirEntry> children;
    for (const auto& [key, entry] : entries_) {
      if (key.compare(0, base.size(), base) != 0 || key.size() == base.size()) continue;
      std::string rest = key.substr(base.size());
      size_t slash = rest.find('/');
      if (slash == std::string::npos) {
        // Like an index: slice and byte sizes are known, metadata sizes are not.
        std::optional<uint64_t> size;
        if (!entry.value.is_metadata) size = entry.value.size();
        children.emplace(rest, DirEntry{rest, false, size});
      } else {
        std::string name = rest.substr(0, slash);
        children[name] = DirEntry{name, true, std::nullopt};
      }
    }
    std::vector<DirEntry> out;
    for (auto it = children.upper_bound(std::string(after)); it != children.end(); ++it) {
      if (out.size() == limit) break;
      out.push_back(std::move(it->second));
    }
    return std::optional<std::vector<DirEntry>>(std::move(out));
  }

  /// ListPage of the directory `prefix` fails with `status`: every page, or with
  /// `first_page_ok` every page but the first (a listing that fails midway).
  void AddListError(const std::string& prefix, Status status, bool first_page_ok = false) {
    list_errors_[prefix] = {std::move(status), first_page_ok};
  }
  /// How many pages were listed so far.
  int list_pages() const { return list_pages_; }

  /// The front ends read keys only: a fake holds no arrays to decode.
  Result<std::unique_ptr<DecodedChunks>> OpenDecodedChunks(std::string_view path) override {
    return NotFoundError("fake view: no array at '" + std::string(path) + "'");
  }

  const ViewOptions& options() const override { return options_; }
  IndexVersion version() override {
    std::lock_guard<std::mutex> lock(mutex_);
    return version_;
  }
  /// What version() answers from now on (a view that moved to a new state of its index).
  void set_version(IndexVersion v) {
    std::lock_guard<std::mutex> lock(mutex_);
    version_ = v;
  }

  /// Every key passed to Get/Stat/List so far.
  std::set<std::string> keys_asked() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return asked_;
  }
  int materialize_calls() const { return materialize_calls_; }
  /// How many times Stat(key) was called.
  int stat_calls(const std::string& key) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = stat_calls_.find(key);
    return it == stat_calls_.end() ? 0 : it->second;
  }
  /// How many times Get(key) was called.
  int get_calls(const std::string& key) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = get_calls_.find(key);
    return it == get_calls_.end() ? 0 : it->second;
  }

 private:
  struct Entry {
    Value value;
    Status error;
  };

  bool IsDirectory(std::string_view key) const {
    if (key.empty()) return true;
    std::string base = std::string(key) + "/";
    auto it = entries_.lower_bound(base);
    return it != entries_.end() && it->first.compare(0, base.size(), base) == 0;
  }

  void Record(std::string_view key) {
    std::lock_guard<std::mutex> lock(mutex_);
    asked_.insert(std::string(key));
  }

  ViewOptions options_;
  IndexVersion version_{1, 0};
  std::map<std::string, Entry> entries_;  // Filled before the front end starts; read-only after.
  mutable std::mutex mutex_;
  std::set<std::string> asked_;
  std::map<std::string, int> get_calls_;
  std::map<std::string, int> stat_calls_;
  std::atomic<int> materialize_calls_{0};
  std::atomic<int> list_pages_{0};
  std::map<std::string, std::pair<Status, bool>> list_errors_;
};

}  // namespace refzarr::testing
