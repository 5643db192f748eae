#include "indexer/indexer.h"

#include <fnmatch.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <istream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include "formats/core/byte_source.h"
#include "formats/core/recording_sink.h"
#include "formats/registry/registry.h"
#include "indexer/chunk_checksums.h"
#include "store/ref_store.h"

namespace refzarr {
namespace {

namespace fs = std::filesystem;

// A file sequence to index as one image (IndexOptions::stacks).
struct StackJob {
  Sequence sequence;
  std::vector<std::string> uris;  // of sequence.members, in order
};

struct Job {
  std::string uri;     // file:///abs/path, https://..., s3://...; a stack's: its first member
  std::string group;
  bool named = false;  // given as an input itself, not found in a folder
  std::string refused;  // why the input cannot be placed in the tree; empty: it can
  /// What a listing said of the source (size and generation), when it came from one: the
  /// unchanged check then needs no request of its own.
  std::optional<SourceStat> listed;
  /// Set for a file sequence: its members are scanned and joined into one image.
  std::shared_ptr<const StackJob> stack;

  static Job Of(std::string uri, std::string group, bool named, std::string refused = {}) {
    Job j;
    j.uri = std::move(uri);
    j.group = std::move(group);
    j.named = named;
    j.refused = std::move(refused);
    return j;
  }
};

// An input as a URI: a remote one as given, a local path made absolute (file://).
std::string InputUri(const fs::path& input) {
  const std::string s = input.string();
  if (!UriScheme(s).empty()) return s;
  std::error_code ec;
  fs::path abs = fs::absolute(input, ec).lexically_normal();
  if (!abs.has_filename() && abs.has_relative_path()) abs = abs.parent_path();
  return FileUri(abs);
}

bool IsLocal(std::string_view uri) { return UriScheme(uri) == "file"; }

// A remote input naming a prefix (an object store "folder"): "s3://bucket/slides/".
bool IsRemotePrefix(std::string_view uri) { return !IsLocal(uri) && uri.ends_with('/'); }

// Whether the input `uri` is a folder: a local directory, or a remote prefix.
bool IsFolder(std::string_view uri) {
  if (!IsLocal(uri)) return IsRemotePrefix(uri);
  std::error_code ec;
  auto path = LocalPathOfUri(uri);
  return path.ok() && fs::is_directory(*path, ec);
}

// `uri` without a trailing '/' (a prefix names its folder).
std::string_view TrimSlash(std::string_view uri) {
  while (uri.ends_with('/') && !uri.ends_with("://")) uri.remove_suffix(1);
  return uri;
}

// The folder of `uri` (up to its last '/', exclusive), or empty when it is the authority alone.
std::string_view UriFolder(std::string_view uri) {
  const size_t authority = uri.find("://");
  const size_t slash = uri.rfind('/');
  if (authority == std::string_view::npos || slash == std::string_view::npos || slash < authority + 3) {
    return {};
  }
  const size_t path = uri.find('/', authority + 3);
  if (slash == path) return uri.substr(0, path);  // "s3://bucket/x": the bucket
  return uri.substr(0, slash);
}

// The '/'-separated segments of `s`.
std::vector<std::string_view> Segments(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    const size_t end = s.find('/', start);
    out.push_back(s.substr(start, end == std::string_view::npos ? s.npos : end - start));
    if (end == std::string_view::npos) return out;
    start = end + 1;
  }
}

// Percent-decodes a relative URI path into a tree path.
std::string DecodedPath(std::string_view rel) {
  std::string out;
  size_t start = 0;
  while (start <= rel.size()) {
    size_t end = rel.find('/', start);
    if (end == std::string_view::npos) end = rel.size();
    if (!out.empty() || start > 0) out += '/';
    out += PercentDecode(rel.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// Where inputs go in the tree: every source at its path relative to the index's root folder
// (recorded in the index on its first run), so the placement does not depend on the order of
// arguments or runs. A single file indexed alone into a new index is its root group. The root is
// a URI (file://, https://, s3://); inputs that share no folder (two servers, a bucket and a
// disk) are each placed under their own name (root kind "inputs").
class Placement {
 public:
  // The root for this run: `given` (--root), else the one recorded in the index, else one chosen
  // from the positional inputs (none with a list only: --root is then required).
  static Result<Placement> Choose(RefStore& store, const std::vector<fs::path>& inputs,
                                  const IndexOptions& options) {
    std::error_code ec;
    Placement p;
    p.as_ = options.as;
    if (!options.as.empty() && (inputs.size() != 1 || options.files_from)) {
      return InvalidArgumentError("--as places one input: give exactly one file or folder");
    }
    ASSIGN_OR_RETURN(std::optional<std::string> recorded, store.GetMeta("root"));
    ASSIGN_OR_RETURN(std::optional<std::string> recorded_kind, store.GetMeta("root_kind"));
    if (!options.root.empty()) {
      const std::string given = options.root.string();
      if (!UriScheme(given).empty()) {
        p.root_ = std::string(TrimSlash(given));
      } else {
        fs::path root = fs::absolute(options.root, ec).lexically_normal();
        if (!fs::is_directory(root, ec)) {
          return InvalidArgumentError("--root " + options.root.string() + " is not a folder");
        }
        p.root_ = FileUri(Trimmed(root));
      }
      if (recorded && (*recorded != p.root_ || recorded_kind.value_or("folder") != "folder")) {
        return InvalidArgumentError("the index's root is " + DisplaySource(*recorded) +
                                    ", not " + DisplaySource(p.root_) +
                                    " (a root is fixed by the first run; use a new index)");
      }
    } else if (recorded) {
      p.root_ = *recorded;
      p.kind_ = recorded_kind.value_or("folder");
    } else if (inputs.empty()) {
      return InvalidArgumentError(
          "a new index given only --files-from needs --root DIR: the folder tree paths are "
          "relative to");
    } else if (!options.as.empty()) {
      // Placed explicitly: the root is the input's folder, as for any single input.
      const std::string uri = InputUri(inputs[0]);
      p.root_ = std::string(IsFolder(uri) ? TrimSlash(uri) : UriFolder(uri));
    } else if (inputs.size() == 1 && !options.files_from) {
      const std::string uri = InputUri(inputs[0]);
      if (!IsFolder(uri)) p.kind_ = "file";
      p.root_ = std::string(TrimSlash(uri));
    } else {
      // The deepest folder that holds every input (a folder input keeps its own name in the
      // tree, as a file does: both count from the folder that holds them), by whole segments.
      std::optional<std::vector<std::string_view>> common;
      std::vector<std::string> uris;
      for (const fs::path& input : inputs) uris.push_back(InputUri(input));
      for (const std::string& uri : uris) {
        std::vector<std::string_view> parts = Segments(UriFolder(TrimSlash(uri)));
        if (!common) {
          common = std::move(parts);
          continue;
        }
        size_t n = 0;
        while (n < common->size() && n < parts.size() && (*common)[n] == parts[n]) ++n;
        common->resize(n);
      }
      // "scheme:", "", "authority": fewer shared segments share no folder (another scheme or
      // host): each input is placed by its name. Local inputs always share "/".
      if (common->size() < 3) {
        p.kind_ = "inputs";
      } else {
        std::string root;
        for (size_t i = 0; i < common->size(); ++i) root += (i ? "/" : "") + std::string((*common)[i]);
        p.root_ = common->size() == 3 && IsLocal(root) ? root + "/" : root;
      }
    }
    p.record_ = !recorded;
    return p;
  }

  // Records the root in the index on its first run.
  Status Record(RefStore& store) const {
    if (!record_) return OkStatus();
    RETURN_IF_ERROR(store.SetMeta("root", root_));
    return store.SetMeta("root_kind", kind_);
  }

  // The tree path of the input `uri` (as InputUri gives it), or why it has none.
  Result<std::string> Group(std::string_view input) const {
    if (!as_.empty()) return as_;
    const std::string_view uri = TrimSlash(input);
    if (kind_ == "inputs") return UriFileName(uri);
    if (kind_ == "file") {
      if (uri == root_) return std::string();
      return InvalidArgumentError(
          "this index serves the single file " + DisplaySource(root_) +
          " as its root; index " + DisplaySource(uri) + " into a new index, or give --as PATH to "
          "place it");
    }
    if (uri == root_) return std::string();
    const std::string folder = root_.ends_with('/') ? root_ : root_ + "/";
    if (!uri.starts_with(folder) || uri.size() <= folder.size()) {
      return InvalidArgumentError("outside the index's root " + DisplaySource(root_) +
                                  ": give --as PATH to place it in the tree, or `refzarr "
                                  "relocate` the index if its files moved");
    }
    return DecodedPath(uri.substr(folder.size()));
  }

 private:
  // Without a trailing separator ("dir/" names dir).
  static fs::path Trimmed(fs::path p) {
    if (!p.has_filename() && p.has_relative_path()) p = p.parent_path();
    return p;
  }

  std::string root_;  // URI of the root folder, or of the single file; empty for kind "inputs"
  std::string kind_ = "folder";  // "folder", "file" (a single file), "inputs" (no shared folder)
  bool record_ = false;
  std::string as_;
};

// What a worker hands to the committing thread.
struct Scanned {
  Job job;
  SourceInfo source;
  std::string scanner;
  std::optional<ScannedFile> scan;  // empty: failed, unchanged or skipped
  std::vector<SourceInfo> companions;
  std::string outcome;
  std::string error;
};

// A bounded queue between two sets of threads; Pop() returns nullopt once it is closed and empty.
template <typename T>
class BoundedQueue {
 public:
  explicit BoundedQueue(size_t capacity) : capacity_(capacity) {}
  void Push(T item) {
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [&] { return items_.size() < capacity_; });
    items_.push_back(std::move(item));
    not_empty_.notify_one();
  }
  /// The next item if one is queued now, without waiting.
  std::optional<T> TryPop() {
    std::lock_guard lock(mu_);
    if (items_.empty()) return std::nullopt;
    T item = std::move(items_.front());
    items_.pop_front();
    not_full_.notify_one();
    return item;
  }
  std::optional<T> Pop() {
    std::unique_lock lock(mu_);
    not_empty_.wait(lock, [&] { return !items_.empty() || closed_; });
    if (items_.empty()) return std::nullopt;
    T item = std::move(items_.front());
    items_.pop_front();
    not_full_.notify_one();
    return item;
  }
  void Close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    not_empty_.notify_all();
  }

 private:
  size_t capacity_;
  std::mutex mu_;
  std::condition_variable not_full_, not_empty_;
  std::deque<T> items_;
  bool closed_ = false;
};

// Every input must exist before anything is indexed.
Status CheckInputs(const std::vector<fs::path>& inputs) {
  std::error_code ec;
  for (const fs::path& input : inputs) {
    if (!UriScheme(input.string()).empty()) continue;  // a remote one fails alone when opened
    if (!fs::exists(fs::absolute(input, ec).lexically_normal(), ec)) {
      return NotFoundError(input.string() + ": no such file or folder");
    }
  }
  return OkStatus();
}

// The paths of an input list (IndexOptions::files_from), read one at a time as the walk reaches
// them: a list of millions of paths is never held in memory.
class ListReader {
 public:
  ListReader(std::istream* in, bool null) : in_(in), delim_(null ? '\0' : '\n') {}

  /// The next path of the list, or nullopt at its end (or without a list). kIo when the list
  /// cannot be read.
  Result<std::optional<fs::path>> Next() {
    if (peeked_) return std::exchange(peeked_, std::nullopt);
    std::string entry;
    while (in_ && std::getline(*in_, entry, delim_)) {
      // A list written on Windows ends its lines with "\r\n"; NUL-separated names are exact.
      if (delim_ == '\n' && entry.ends_with('\r')) entry.pop_back();
      if (!entry.empty()) return std::optional<fs::path>(std::move(entry));
    }
    if (in_ && in_->bad()) return IoError("the list of inputs could not be read");
    return std::optional<fs::path>();
  }

  /// Whether no path is left to read (reads up to the next one, which Next() then returns).
  Result<bool> Empty() {
    if (!peeked_) {
      ASSIGN_OR_RETURN(peeked_, Next());
    }
    return !peeked_.has_value();
  }

 private:
  std::istream* in_;
  char delim_;
  std::optional<fs::path> peeked_;
};

// Walks the inputs depth first, each folder's entries in name order, and hands every file to
// `emit` as it is found: memory holds the folders on the current path, not the archive's file
// list (nor the input list's paths). Files it passes over (excluded, hidden) are counted, and
// listed when options.file_list. kIo when a folder or the input list cannot be read.
class Walker {
 public:
  /// `cancelled`: asked before each file and folder; once true the walk ends (stopped()).
  /// `list_remote` false: a remote prefix is not listed, the walk fails (kUnsupported) instead.
  Walker(const fs::path& index, const IndexOptions& options, const Placement& placement,
         const SourceOpeners& openers, std::function<void(Job)> emit,
         std::function<bool()> cancelled = [] { return false; }, bool list_remote = true)
      : emit_(std::move(emit)), cancelled_(std::move(cancelled)), list_remote_(list_remote),
        options_(options), placement_(placement), openers_(openers) {
    std::error_code ec;
    index_abs_ = fs::absolute(index, ec).lexically_normal();
  }

  Status Walk(const std::vector<fs::path>& inputs, ListReader& list) {
    for (const fs::path& input : inputs) {
      if (Cancelled()) return OkStatus();
      RETURN_IF_ERROR(Input(input));
    }
    while (!Cancelled()) {
      ASSIGN_OR_RETURN(std::optional<fs::path> input, list.Next());
      if (!input) return OkStatus();
      RETURN_IF_ERROR(Input(*input));
    }
    return OkStatus();
  }

  /// Whether the walk ended early, cancelled: it did not see every file.
  bool stopped() const { return stopped_; }

  uint64_t skipped() const { return skipped_; }
  uint64_t other_shards() const { return other_shards_; }
  /// The files passed over (with options.file_list), in walk order.
  std::vector<IndexedFile> TakeSkipped() { return std::move(skipped_files_); }
  /// Per remote prefix walked (its URI as given), the XXH3-64 of every object URI its listing
  /// gave, skipped ones included, sorted: what PruneVanished keeps. 8 bytes an object.
  std::map<std::string, std::vector<uint64_t>> TakeListed() {
    for (auto& [prefix, hashes] : listed_) std::sort(hashes.begin(), hashes.end());
    return std::move(listed_);
  }

 private:
  Status Input(const fs::path& input) {
    const std::string uri = InputUri(input);
    const std::string name = UriFileName(TrimSlash(uri));
    Result<std::string> placed = placement_.Group(uri);
    const std::string prefix = placed.ok() ? *placed : name;
    const bool folder = IsFolder(uri);
    if (!placed.ok()) {
      // Failed alone, named; the rest of the run goes on.
      Emit(Job::Of(std::string(TrimSlash(uri)), prefix, true, placed.status().message()));
      return OkStatus();
    }
    // An input is excluded by its base name; being hidden does not pass over a named input.
    if (Excluded("", name)) {
      if (!folder) Skip(uri, prefix);
      return OkStatus();
    }
    // A path that is not a folder goes to the scan as named, a missing one too (a listed path
    // may be gone by now): its open fails it alone, named.
    if (!folder) {
      Emit(Job::Of(uri, prefix, true));
      return OkStatus();
    }
    if (!IsLocal(uri)) return RemoteFolder(uri, prefix);
    return Folder(*LocalPathOfUri(uri), prefix, "");
  }

  // An object store prefix, from its listing: the objects under it in key order, each placed at
  // its key relative to the prefix. Hidden names and excluded paths are passed over as in a
  // folder (any segment hidden or excluded hides what is under it).
  Status RemoteFolder(const std::string& prefix_uri, const std::string& group) {
    if (!list_remote_) return UnsupportedError(prefix_uri + ": not listed twice");
    std::vector<uint64_t>& seen = listed_[prefix_uri];
    return openers_.List(prefix_uri, [&](const ListedSource& listed) -> Status {
      if (Cancelled()) return OkStatus();
      seen.push_back(XXH3_64bits(listed.uri.data(), listed.uri.size()));
      const std::string rel = DecodedPath(std::string_view(listed.uri).substr(prefix_uri.size()));
      const std::string child = group.empty() ? rel : group + "/" + rel;
      std::string sofar;
      for (std::string_view part : Segments(rel)) {
        sofar += (sofar.empty() ? "" : "/") + std::string(part);
        if (PassedOver(sofar, std::string(part))) {
          Skip(listed.uri, child);
          return OkStatus();
        }
      }
      Job job = Job::Of(listed.uri, child, false);
      if (!listed.stat.generation.unknown()) job.listed = listed.stat;
      Emit(std::move(job));
      return OkStatus();
    });
  }

  // `rel`: the folder's path relative to its input ("" for the input itself).
  Status Folder(const fs::path& dir, const std::string& group, const std::string& rel) {
    std::vector<std::pair<std::string, bool>> entries;  // name, is a folder
    std::error_code ec;
    for (fs::directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
         it != end; it.increment(ec)) {
      if (ec) break;
      const bool folder = it->is_directory(ec) && !it->is_symlink(ec);
      if (!folder && !it->is_regular_file(ec)) continue;
      entries.emplace_back(it->path().filename().string(), folder);
    }
    if (ec) return IoError(dir.string() + ": " + ec.message());
    std::sort(entries.begin(), entries.end());
    const std::set<std::string> members = Sequences(dir, group, rel, entries);
    for (const auto& [name, folder] : entries) {
      if (Cancelled()) return OkStatus();
      if (!folder && members.count(name)) continue;
      fs::path p = dir / name;
      std::string child = group.empty() ? name : group + "/" + name;
      if (!folder && IsIndexFile(p)) continue;
      // Hidden and excluded entries are passed over before a folder is opened: a .snapshot
      // folder (a file server's view of past states) or an excluded mount is never read.
      const std::string child_rel = rel.empty() ? name : rel + "/" + name;
      if (PassedOver(child_rel, name)) {
        if (!folder) Skip(FileUri(p), child);
        continue;
      }
      if (folder) {
        RETURN_IF_ERROR(Folder(p, child, child_rel));
        continue;
      }
      Emit(Job::Of(FileUri(p), child, false));
    }
    return OkStatus();
  }

  // The file sequences of a folder (IndexOptions::stacks), each emitted as one job; returns the
  // names of their members, which are not indexed as files of their own. Hidden, excluded and
  // index files are never members.
  std::set<std::string> Sequences(const fs::path& dir, const std::string& group,
                                  const std::string& rel,
                                  const std::vector<std::pair<std::string, bool>>& entries) {
    std::set<std::string> taken_names;
    if (options_.stacks.empty()) return taken_names;
    std::vector<std::string> files, folders;
    for (const auto& [name, folder] : entries) {
      const std::string child_rel = rel.empty() ? name : rel + "/" + name;
      if (folder) {
        folders.push_back(name);
      } else if (!IsIndexFile(dir / name) && !PassedOver(child_rel, name)) {
        files.push_back(name);
      }
    }
    std::vector<bool> taken;
    for (Sequence& seq : FindSequences(options_.stacks, files, folders, taken)) {
      auto job = std::make_shared<StackJob>();
      for (const SequenceMember& m : seq.members) {
        job->uris.push_back(FileUri(dir / m.name));
        taken_names.insert(m.name);
      }
      const std::string at = group.empty() ? seq.name : group + "/" + seq.name;
      std::string problem = seq.problem;
      job->sequence = std::move(seq);
      Job j = Job::Of(job->uris.front(), at, false, std::move(problem));
      j.stack = std::move(job);
      Emit(std::move(j));
    }
    return taken_names;
  }

  // The index being written, or SQLite's files beside it: never scanned.
  bool IsIndexFile(const fs::path& p) const {
    const std::string name = p.filename().string();
    return p == index_abs_ || name.ends_with(".refs.db-wal") || name.ends_with(".refs.db-shm");
  }

  // A hidden entry (unless --hidden) or an excluded one: not indexed, a folder not read.
  bool PassedOver(const std::string& rel, const std::string& name) const {
    return (!options_.hidden && name.starts_with('.')) || Excluded(rel, name);
  }

  // Whether a --exclude glob matches: one with a '/' the path relative to the input, one
  // without the base name (so "*.tmp" matches at any depth, "raw/*.tif" only there).
  bool Excluded(const std::string& rel, const std::string& name) const {
    for (const std::string& glob : options_.exclude) {
      const bool match = glob.find('/') != std::string::npos
                             ? !rel.empty() && fnmatch(glob.c_str(), rel.c_str(), FNM_PATHNAME) == 0
                             : fnmatch(glob.c_str(), name.c_str(), 0) == 0;
      if (match) return true;
    }
    return false;
  }

  bool Cancelled() {
    if (!stopped_ && cancelled_()) stopped_ = true;
    return stopped_;
  }

  // Whether the file placed at `group` is this task's (every file when the run is not sharded).
  bool Mine(const std::string& group) const {
    return options_.shard.count == 0 || ShardOf(group, options_.shard.count) == options_.shard.index;
  }

  // Hands a file of this shard on; one of another shard is passed over, never opened.
  void Emit(Job job) {
    if (Cancelled()) return;
    if (!Mine(job.group)) {
      ++other_shards_;
      return;
    }
    emit_(std::move(job));
  }

  // A file passed over is counted by the shard it belongs to, so the shards' counts add up to
  // those of one run.
  void Skip(const std::string& uri, const std::string& group) {
    if (!Mine(group)) {
      ++other_shards_;
      return;
    }
    ++skipped_;
    if (!options_.file_list) return;
    IndexedFile f;
    f.path = DisplaySource(uri);
    f.group = group;
    f.outcome = "skipped";
    skipped_files_.push_back(std::move(f));
  }

  std::function<void(Job)> emit_;
  std::function<bool()> cancelled_;
  bool list_remote_ = true;
  bool stopped_ = false;
  const IndexOptions& options_;
  const Placement& placement_;
  const SourceOpeners& openers_;
  fs::path index_abs_;
  uint64_t skipped_ = 0;
  uint64_t other_shards_ = 0;
  std::vector<IndexedFile> skipped_files_;
  std::map<std::string, std::vector<uint64_t>> listed_;  // TakeListed
};

constexpr size_t kSniffBytes = 4096;

// What a file that no scanner recognises starts with: text as text, anything else in hex.
std::string DescribeHead(std::span<const std::byte> head) {
  if (head.empty()) return "it is empty";
  const size_t n = std::min<size_t>(head.size(), 16);
  bool text = true;
  for (size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(head[i]);
    text = text && ((c >= 0x20 && c < 0x7f) || c == '\n' || c == '\r' || c == '\t');
  }
  std::string out = "starts with ";
  if (text) {
    out += '"';
    for (size_t i = 0; i < n; ++i) {
      const char c = static_cast<char>(head[i]);
      out += c == '\n' ? std::string("\\n") : c == '\r' ? std::string("\\r")
             : c == '\t' ? std::string("\\t") : std::string(1, c);
    }
    return out + (head.size() > n ? "...\"" : "\"");
  }
  static const char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < std::min<size_t>(n, 8); ++i) {
    const auto c = static_cast<unsigned char>(head[i]);
    if (i) out += ' ';
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

// What preparing, scanning and completing a file need besides the job.
struct ScanTools {
  RefStore& store;
  const std::vector<std::unique_ptr<Scanner>>& scanners;
  ScanRunner& runner;
  const SourceOpeners& openers;
  bool force = false;
  uint64_t refs_in_memory = 0;
  bool checksums = false;
};

void Fail(Scanned& r, const Status& st) {
  r.outcome = "failed";
  r.error = st.message();
  r.scan.reset();
}

// Whether the members of a sequence indexed with the first member `main_id` are the same files,
// in the same order, each unchanged (one stat each); any doubt is a change.
bool StackUnchanged(const StackJob& stack, int64_t main_id, const ScanTools& tools) {
  Result<std::vector<int64_t>> ids = tools.store.FileSourceIds(main_id);
  if (!ids.ok() || ids->size() != stack.uris.size()) return false;
  for (size_t k = 1; k < ids->size(); ++k) {
    Result<SourceInfo> indexed = tools.store.GetSource((*ids)[k]);
    if (!indexed.ok() || indexed->uri != stack.uris[k]) return false;
    Result<SourceInfo> now = StatSource(stack.uris[k], tools.openers);
    if (!now.ok() || !DescribeChange(*indexed, *now).empty()) return false;
  }
  return true;
}

// Everything before the scan: the fingerprint, the sniff, whether the file changed. Leaves
// r.outcome empty when the file is to be scanned with r.scanner.
Scanned Prepare(Job queued, const ScanTools& tools) {
  Scanned r;
  r.job = std::move(queued);
  const Job& job = r.job;
  if (!job.refused.empty()) {
    Fail(r, InvalidArgumentError(job.refused));
    return r;
  }
  const std::string& uri = job.uri;
  // An unchanged file is decided by one stat (or what its listing said): same generation (for a
  // local file device, inode, size, times; for a remote one its ETag) as indexed, in the same
  // place of the tree. Nothing is opened. A remote stat is a round trip: a new file skips it.
  // A file not indexed before (or failed, or placed elsewhere) needs no stat: it is opened below.
  auto old = tools.force ? Result<std::optional<SourceInfo>>(std::nullopt) : tools.store.FindSource(uri);
  if (old.ok() && *old && (*old)->status == "ok" && (*old)->group == job.group) {
    Result<SourceInfo> now = [&]() -> Result<SourceInfo> {
      if (!job.listed) return StatSource(uri, tools.openers);
      SourceInfo listed;
      listed.uri = uri;
      listed.size = job.listed->size;
      listed.generation = job.listed->generation;
      return listed;
    }();
    if (!now.ok()) {
      Fail(r, now.status());
      return r;
    }
    if (DescribeChange(**old, *now).empty() &&
        (!job.stack || StackUnchanged(*job.stack, (*old)->id, tools))) {
      r.source = **old;
      r.outcome = "unchanged";
      return r;
    }
  }
  // A new or changed one is opened once: one read gives the fingerprint and the bytes to sniff.
  std::vector<std::byte> head;
  auto probed = ProbeSource(uri, &head, kSniffBytes, tools.openers);
  if (!probed.ok()) {
    Fail(r, probed.status());
    return r;
  }
  r.source = *probed;
  const Scanner* scanner = nullptr;
  for (const auto& s : tools.scanners) {
    if (s->Sniff(head)) {
      scanner = s.get();
      break;
    }
  }
  if (!scanner) {
    // A file the user named, or one that looks like an image by its name, is an error: saying
    // nothing would look like success.
    if (job.named || ImageExtension(UriFileName(job.uri))) {
      Fail(r, UnsupportedError("not a TIFF or HDF5 file (" + DescribeHead(head) + ")"));
    } else {
      r.outcome = "skipped";
    }
    return r;
  }
  r.scanner = std::string(scanner->Name());
  return r;
}

// Verified mode: the CRC-32C of every chunk of the scan, read from the file and companions as
// probed (a source whose generation moved since is stale: the scan may describe other bytes).
Status ChecksumScan(Scanned& r, const SourceOpeners& openers) {
  std::vector<std::unique_ptr<ByteSource>> open;
  std::vector<ByteSource*> sources;
  std::vector<const SourceInfo*> infos = {&r.source};
  for (const SourceInfo& c : r.companions) infos.push_back(&c);
  for (const SourceInfo* info : infos) {
    ASSIGN_OR_RETURN(open.emplace_back(), openers.Open(info->uri));
    ASSIGN_OR_RETURN(SourceStat st, open.back()->Stat());
    if (st.generation != info->generation || st.size != info->size) {
      return StaleError(DisplaySource(info->uri) + " changed while it was being indexed");
    }
    sources.push_back(open.back().get());
  }
  return ChecksumChunks(*r.scan, sources);
}

// Everything after the scan into `sink` that ended with `scanned`.
void Complete(Scanned& r, RecordingSink& sink, Status scanned, const ScanTools& tools) {
  if (scanned.ok()) scanned = sink.Finish();
  if (!scanned.ok()) return Fail(r, scanned);
  r.scan = std::move(sink).result();
  for (const std::string& c : r.scan->companions) {
    auto info = ProbeSource(c, nullptr, 0, tools.openers);
    if (!info.ok()) return Fail(r, info.status().WithContext("companion file"));
    info->status = "companion";
    r.companions.push_back(*info);
  }
  if (tools.checksums) {
    Status st = ChecksumScan(r, tools.openers);
    if (!st.ok()) return Fail(r, st.WithContext("checksums"));
  }
  r.outcome = "indexed";
}

// Scans the members of a file sequence (batches of kScanBatch through the runner, so each is
// crash-isolated like any file) and joins them into one image: r's scan. A member that fails
// its scan, or differs from the first, fails the sequence, named. Memory: one batch of member
// scans, and the joined references up to tools.refs_in_memory (then spilled).
void ScanStack(Scanned& r, const ScanTools& tools, size_t batch) {
  const StackJob& stack = *r.job.stack;
  RecordingSink out(tools.refs_in_memory);
  StackBuilder builder(stack.sequence, out);
  for (size_t begin = 0; begin < stack.uris.size(); begin += batch) {
    const size_t end = std::min(stack.uris.size(), begin + batch);
    std::vector<std::unique_ptr<RecordingSink>> sinks;
    std::vector<ScanRequest> requests;
    for (size_t k = begin; k < end; ++k) {
      sinks.push_back(std::make_unique<RecordingSink>(tools.refs_in_memory));
      requests.push_back({r.scanner, stack.uris[k], sinks.back().get()});
    }
    std::vector<Status> statuses = tools.runner.ScanAll(requests);
    for (size_t k = begin; k < end; ++k) {
      RecordingSink& member = *sinks[k - begin];
      Status st = statuses[k - begin];
      if (st.ok()) st = member.Finish();
      if (!st.ok()) return Fail(r, st.WithContext(DisplaySource(stack.uris[k])));
      st = builder.Add(k, stack.uris[k], member.result());
      if (!st.ok()) return Fail(r, st);
    }
  }
  Complete(r, out, builder.Finish(), tools);
}

// Files scanned together in one ScanRunner::ScanAll call at most, and the largest that joins a
// batch: small files share the runner's round trips (a worker process scans one while the next
// is on its way); a large file's scan, with its references held in memory, runs alone.
constexpr size_t kScanBatch = 16;
constexpr uint64_t kBatchedFileBytes = 16ull << 20;

// Scans `jobs` (prepared, in order) and returns their outcomes in the same order.
std::vector<Scanned> ScanBatch(std::vector<Job> jobs, const ScanTools& tools) {
  std::vector<Scanned> out;
  out.reserve(jobs.size());
  for (Job& job : jobs) out.push_back(Prepare(std::move(job), tools));
  size_t i = 0;
  while (i < out.size()) {
    // The files to scan from i on, up to the first large one (which goes alone).
    std::vector<size_t> members;
    size_t end = i;
    for (; end < out.size(); ++end) {
      if (!out[end].outcome.empty()) continue;
      if (out[end].job.stack) {  // a sequence is scanned alone, its members batched
        if (members.empty()) ScanStack(out[end], tools, kScanBatch), ++end;
        break;
      }
      const bool large = out[end].source.size > kBatchedFileBytes;
      if (large && !members.empty()) break;
      members.push_back(end);
      if (large) {
        ++end;
        break;
      }
    }
    if (!members.empty()) {
      std::vector<std::unique_ptr<RecordingSink>> sinks;
      std::vector<ScanRequest> requests;
      for (size_t m : members) {
        sinks.push_back(std::make_unique<RecordingSink>(tools.refs_in_memory));
        requests.push_back({out[m].scanner, out[m].source.uri, sinks.back().get()});
      }
      std::vector<Status> statuses = tools.runner.ScanAll(requests);
      for (size_t k = 0; k < members.size(); ++k) {
        Complete(out[members[k]], *sinks[k], statuses[k], tools);
      }
    }
    i = end;
  }
  return out;
}

// Sources indexed under a remote prefix walked in this run that its listing no longer gave
// (`listed`: Walker::TakeListed) are removed the same way: deleted objects leave the index.
// A hash that matches by chance keeps a deleted object, which then reads as stale.
Status PruneUnlisted(const std::string& prefix, const std::vector<uint64_t>& listed,
                     RefStore& store, IndexReport& report, std::ostream& log) {
  constexpr size_t kPage = 4096;
  std::string after = prefix;
  while (true) {
    ASSIGN_OR_RETURN(std::vector<std::string> indexed, store.SourcesUnder(prefix, after, kPage));
    for (const std::string& uri : indexed) {
      if (std::binary_search(listed.begin(), listed.end(), XXH3_64bits(uri.data(), uri.size()))) {
        continue;
      }
      RETURN_IF_ERROR(store.RemoveSource(uri));
      log << "refzarr: removed " << DisplaySource(uri) << " from the index (no longer listed under "
          << DisplaySource(prefix) << ")\n";
      ++report.removed;
    }
    if (indexed.size() < kPage) break;
    after = indexed.back();
  }
  return OkStatus();
}

// Files indexed earlier under an input folder that are no longer on disk are removed, so the
// index mirrors the folder. The indexed paths are read a page at a time.
Status PruneVanished(const std::vector<fs::path>& inputs, RefStore& store, IndexReport& report,
                     std::ostream& log, const std::map<std::string, std::vector<uint64_t>>& listed) {
  constexpr size_t kPage = 4096;
  for (const fs::path& input : inputs) {
    std::error_code ec;
    if (!UriScheme(input.string()).empty()) {
      const std::string uri = InputUri(input);
      auto it = listed.find(uri);
      if (IsRemotePrefix(uri) && it != listed.end()) {
        RETURN_IF_ERROR(PruneUnlisted(uri, it->second, store, report, log));
      }
      continue;
    }
    fs::path abs = fs::absolute(input, ec).lexically_normal();
    if (!fs::is_directory(abs, ec)) continue;
    std::string prefix = FileUri(abs);
    if (!prefix.ends_with('/')) prefix += '/';
    std::string after = prefix;
    while (true) {
      ASSIGN_OR_RETURN(std::vector<std::string> indexed, store.SourcesUnder(prefix, after, kPage));
      for (const std::string& uri : indexed) {
        auto path = LocalPathOfUri(uri);
        if (path.ok() && fs::exists(*path, ec)) continue;
        RETURN_IF_ERROR(store.RemoveSource(uri));
        log << "refzarr: removed " << DisplaySource(uri) << " from the index (no longer on disk)\n";
        ++report.removed;
      }
      if (indexed.size() < kPage) break;
      after = indexed.back();
    }
  }
  return OkStatus();
}

// A shard index holds one task of one sharded run: a run with another shard, or none, into it
// would mix files of several shards (which `merge` then finds twice) or leave some out.
Status CheckShard(RefStore& store, const fs::path& index, const ShardSpec& shard) {
  if (shard.count > 0 && shard.index >= shard.count) {
    return InvalidArgumentError("shard " + std::to_string(shard.index + 1) + " of " +
                                std::to_string(shard.count) + " does not exist (K is 1..N)");
  }
  ASSIGN_OR_RETURN(std::optional<std::string> recorded, store.GetMeta("shard"));
  ASSIGN_OR_RETURN(std::optional<std::string> root, store.GetMeta("root"));
  const std::string given = shard.count ? ShardName(shard) : "";
  if (recorded && given.empty()) {
    return InvalidArgumentError(index.string() + " is shard " + *recorded +
                                " of a sharded run: give --shard " + *recorded +
                                " to re-run that task, or `refzarr merge` the shards into one index");
  }
  if (recorded && *recorded != given) {
    return InvalidArgumentError(index.string() + " is shard " + *recorded + ", not " + given +
                                ": each task of a sharded run writes its own index (give a new file)");
  }
  if (!recorded && root && !given.empty()) {
    return InvalidArgumentError(index.string() + " was made without --shard: each task of a "
                                "sharded run writes its own new index");
  }
  return OkStatus();
}

}  // namespace

uint32_t ShardOf(std::string_view tree_path, uint32_t count) {
  return static_cast<uint32_t>(XXH3_64bits(tree_path.data(), tree_path.size()) % count);
}

std::string ShardName(const ShardSpec& shard) {
  return std::to_string(shard.index + 1) + "/" + std::to_string(shard.count);
}

bool ImageExtension(const fs::path& path) {
  std::string ext = path.extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static constexpr std::string_view kImage[] = {".tif", ".tiff", ".btf", ".tf8", ".svs",
                                                ".ome", ".h5",   ".hdf5", ".he5", ".ims",
                                                ".nwb", ".nc",   ".emd"};
  return std::find(std::begin(kImage), std::end(kImage), ext) != std::end(kImage);
}

Result<IndexReport> IndexPaths(const std::vector<fs::path>& inputs, const fs::path& index,
                               const IndexOptions& options, std::ostream& log) {
  auto start = std::chrono::steady_clock::now();
  RETURN_IF_ERROR(CheckInputs(inputs));
  ListReader list(options.files_from, options.files_from_null);
  if (inputs.empty()) {
    ASSIGN_OR_RETURN(const bool none, list.Empty());
    if (none) {
      return InvalidArgumentError(options.files_from
                                      ? "nothing to index: the list of inputs names no path"
                                      : "nothing to index: give files or folders");
    }
  }
  ASSIGN_OR_RETURN(auto store, OpenRefStore(index, OpenMode::kReadWrite));
  RETURN_IF_ERROR(CheckShard(*store, index, options.shard));
  std::vector<std::unique_ptr<Scanner>> default_scanners;
  if (!options.scanners) default_scanners = DefaultScanners();
  const auto& scanners = options.scanners ? *options.scanners : default_scanners;
  // Decoders judge servability where the scans run: only an in-process runner needs them here
  // (an isolated run then never initialises libhdf5 in this process).
  std::vector<std::unique_ptr<ChunkDecoder>> default_decoders;
  if (!options.decoders && !options.runner) default_decoders = DefaultDecoders();
  const auto& decoders = options.decoders ? *options.decoders : default_decoders;
  const SourceOpeners& openers = options.openers ? *options.openers : LocalSourceOpeners();
  std::unique_ptr<ScanRunner> in_process;
  if (!options.runner) {
    std::vector<const ChunkDecoder*> raw;
    for (const auto& d : decoders) raw.push_back(d.get());
    in_process = MakeInProcessScanRunner(scanners, std::move(raw), openers, options.scan);
  }
  ScanRunner& base_runner = options.runner ? *options.runner : *in_process;
  std::unique_ptr<ScanRunner> paired;
  if (!options.labels.empty()) paired = MakeLabelPairingRunner(base_runner, options.labels, openers);
  const ScanTools tools{*store, scanners, paired ? *paired : base_runner, openers, options.force,
                        options.refs_in_memory, options.checksums};
  const unsigned threads =
      options.threads ? options.threads : std::max(1u, std::thread::hardware_concurrency());

  // walker -> jobs -> scanning workers -> results -> this thread, which commits. Both queues are
  // bounded, so the walk runs at most a batch per thread ahead of the scans, and the scans a
  // batch ahead of the commits: memory does not grow with the archive.
  BoundedQueue<Job> jobs(kScanBatch * threads);
  BoundedQueue<Scanned> results(2 * threads);
  Status walk_status;
  ASSIGN_OR_RETURN(const Placement placement, Placement::Choose(*store, inputs, options));
  RETURN_IF_ERROR(placement.Record(*store));
  // Incomplete until this run ends: a task killed midway (a time limit, a node lost) leaves an
  // index that `merge` refuses, so a missing part cannot go unnoticed.
  if (options.shard.count) {
    RETURN_IF_ERROR(store->SetMeta("shard", ShardName(options.shard)));
    RETURN_IF_ERROR(store->SetMeta("shard_run", "incomplete"));
  }
  // Checked between files: a stop leaves every committed file in place and drops the rest.
  auto stopping = [&] { return options.stop && options.stop->load(std::memory_order_relaxed); };
  Walker walk(
      index, options, placement, openers, [&](Job job) { jobs.Push(std::move(job)); }, stopping);
  // The total for the progress display: the same walk again, counting, beside the run (it only
  // lists folders, and runs ahead of the scans). A list is read again only from a second
  // stream (standard input cannot be); remote folders are not listed again (requests cost).
  std::atomic<uint64_t> total{0};
  std::atomic<bool> total_known{false}, finished{false};
  std::thread counter;
  if (options.progress && (!options.files_from || options.files_from_again)) {
    counter = std::thread([&] {
      ListReader again(options.files_from_again, options.files_from_null);
      IndexOptions counting = options;
      counting.file_list = false;
      Walker count(
          index, counting, placement, openers,
          [&](Job) { total.fetch_add(1, std::memory_order_relaxed); },
          [&] { return finished.load() || stopping(); }, /*list_remote=*/false);
      if (count.Walk(inputs, again).ok() && !count.stopped()) total_known = true;
    });
  }
  std::thread walker([&] {
    walk_status = walk.Walk(inputs, list);
    jobs.Close();
  });
  std::atomic<unsigned> running{threads};
  std::vector<std::thread> workers;
  for (unsigned t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      while (std::optional<Job> job = jobs.Pop()) {
        if (stopping()) continue;  // drain what the walk queued, scan nothing more
        std::vector<Job> batch;
        batch.push_back(std::move(*job));
        while (batch.size() < kScanBatch) {
          std::optional<Job> more = jobs.TryPop();
          if (!more) break;
          batch.push_back(std::move(*more));
        }
        for (Scanned& s : ScanBatch(std::move(batch), tools)) results.Push(std::move(s));
      }
      if (--running == 0) results.Close();
    });
  }

  IndexReport report;
  Status fatal;
  bool stopped = false;
  IndexProgress progress;
  auto fill_progress = [&] {
    progress.indexed = report.indexed;
    progress.unchanged = report.unchanged;
    progress.failed = report.failed;
    progress.chunks = report.chunks;
    progress.files_total = total.load(std::memory_order_relaxed);
    progress.total_known = total_known.load();
    progress.elapsed_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return progress;
  };
  while (std::optional<Scanned> next = results.Pop()) {
    stopped = stopped || stopping();
    if (!fatal.ok() || stopped) continue;  // drain the workers, commit nothing more
    Scanned& s = *next;
    const Job& job = s.job;
    IndexedFile f;
    f.path = DisplaySource(job.uri);
    f.group = job.group;
    f.scanner = s.scanner;
    f.outcome = s.outcome;
    f.error = s.error;
    if (s.outcome == "indexed") {
      for (const std::string& w : s.scan->warnings) {
        if (options.file_list) report.warnings.push_back(w);
        log << "refzarr: warning: " << f.path << ": " << w << "\n";
      }
      for (const ScannedFile::Refusal& r : s.scan->refused) {
        log << "refzarr: warning: " << f.path << ": array " << r.path
            << " refused: " << r.reason << "\n";
        if (options.file_list) f.refused.emplace_back(r.path, r.reason);
      }
      Status st = store->PutFile(s.source, job.group, s.scanner, *s.scan, s.companions);
      if (st.code() == StatusCode::kInvalidArgument) {
        // A conflict of this file with the tree (two files mapping to one path, a chunk given
        // twice): this file fails.
        f.outcome = "failed";
        f.error = st.message();
      } else if (!st.ok()) {
        fatal = st.WithContext("index " + index.string());
        continue;
      } else {
        if (job.stack) {
          // Members indexed as files of their own before (a run without --stack) are now
          // part of the sequence.
          for (size_t k = 1; k < job.stack->uris.size() && st.ok(); ++k) {
            st = store->RemoveSource(job.stack->uris[k]);
          }
          if (!st.ok()) {
            fatal = st.WithContext("index " + index.string());
            continue;
          }
        }
        f.chunks = s.scan->ChunkCount();
        f.arrays = s.scan->arrays.size();
        report.chunks += f.chunks;
        report.arrays += f.arrays;
        report.refused += s.scan->refused.size();
      }
    }
    if (f.outcome == "failed") {
      log << "refzarr: index " << f.path << ": " << f.error << "\n";
      if (s.source.uri.empty()) s.source.uri = job.uri;
      Status st = store->PutFailure(s.source, job.group, f.error);
      if (!st.ok()) fatal = st.WithContext("index " + index.string());
    }
    if (f.outcome == "indexed") ++report.indexed;
    if (f.outcome == "unchanged") ++report.unchanged;
    if (f.outcome == "failed") ++report.failed;
    if (f.outcome == "skipped") ++report.skipped;
    if (f.outcome == "indexed" || f.outcome == "unchanged") progress.bytes_done += s.source.size;
    ++progress.files_done;
    if (options.file_list) report.files.push_back(std::move(f));
    if (options.progress) options.progress->Update(fill_progress());
  }
  walker.join();
  for (auto& w : workers) w.join();
  finished = true;
  if (counter.joinable()) counter.join();
  report.skipped += walk.skipped();
  report.other_shards = walk.other_shards();
  for (IndexedFile& f : walk.TakeSkipped()) report.files.push_back(std::move(f));
  report.stopped = stopped || walk.stopped();
  if (options.progress) options.progress->Done(fill_progress());
  if (!fatal.ok()) return fatal;
  // A walk that stopped early saw only part of the folders: nothing is pruned after it.
  if (!walk_status.ok()) return walk_status.WithContext("walk the inputs");
  if (report.stopped) {
    // A shard stays marked incomplete: merge refuses it until the task is run to its end.
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return report;
  }
  RETURN_IF_ERROR(PruneVanished(inputs, *store, report, log, walk.TakeListed()));
  if (options.shard.count) RETURN_IF_ERROR(store->SetMeta("shard_run", "complete"));
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace refzarr
