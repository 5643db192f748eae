#include "store/index_merge.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>

#include <nlohmann/json.hpp>

#include "formats/core/source.h"
#include "store/ref_store.h"
#include "store/sqlite.h"

namespace refzarr {
namespace {

namespace fs = std::filesystem;
using internal::FromSqlite;
using internal::SqliteClose;
using internal::Statement;

// Where each input's rows landed: its source ids in the output are (offset, last].
struct InputRange {
  fs::path path;
  int64_t offset = 0, last = 0;
};

// The merge's own connection to the output. Opened with URI filenames so that every input is
// attached with mode=ro: SQLite then cannot write to it, not even a WAL checkpoint on detach.
class MergeDb {
 public:
  Status Open(const fs::path& path) {
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, nullptr);
    db_.reset(db);
    if (rc != SQLITE_OK) return FromSqlite(db, rc, "open " + path.string());
    sqlite3_extended_result_codes(db, 1);
    return OkStatus();
  }
  Status Exec(const std::string& sql) {
    int rc = sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, nullptr);
    return FromSqlite(db_.get(), rc, sql.substr(0, 60));
  }
  // Statements are few and run once per input: no cache.
  Result<std::unique_ptr<Statement>> Prepare(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db_.get(), sql.c_str(), static_cast<int>(sql.size()), &stmt,
                                nullptr);
    if (rc != SQLITE_OK) return FromSqlite(db_.get(), rc, "prepare " + sql.substr(0, 60));
    return std::make_unique<Statement>(db_.get(), stmt);
  }
  Result<int64_t> Scalar(const std::string& sql, int64_t a = 0) {
    ASSIGN_OR_RETURN(auto s, Prepare(sql));
    if (sql.find("?1") != std::string::npos) s->Bind(1, a);
    ASSIGN_OR_RETURN(bool row, s->Step());
    return row ? s->ColumnInt(0) : 0;
  }
  // Runs an INSERT with ?1 = source id offset, ?2 = node id offset; returns the rows written.
  Result<uint64_t> Copy(const std::string& sql, int64_t sources, int64_t nodes) {
    ASSIGN_OR_RETURN(auto s, Prepare(sql));
    if (sql.find("?1") != std::string::npos) s->Bind(1, sources);
    if (sql.find("?2") != std::string::npos) s->Bind(2, nodes);
    RETURN_IF_ERROR(s->Run());
    return static_cast<uint64_t>(sqlite3_changes64(db_.get()));
  }
  sqlite3* handle() const { return db_.get(); }
  void Close() { db_.reset(); }

 private:
  std::unique_ptr<sqlite3, SqliteClose> db_;
};

// refzarr_shift_sources(meta, offset): an array's meta with `offset` added to every global source
// id of its "sources" list. Chunk blocks name sources by their position in that list, so they are
// copied byte for byte and only this small JSON changes.
void ShiftSources(sqlite3_context* ctx, int, sqlite3_value** argv) {
  const unsigned char* text = sqlite3_value_text(argv[0]);
  int64_t offset = sqlite3_value_int64(argv[1]);
  if (text) {
    const std::string_view view(reinterpret_cast<const char*>(text),
                                static_cast<size_t>(sqlite3_value_bytes(argv[0])));
    if (std::optional<std::string> out = internal::ShiftSourcesInText(view, offset)) {
      sqlite3_result_text(ctx, out->data(), static_cast<int>(out->size()), SQLITE_TRANSIENT);
      return;
    }
  }
  nlohmann::json meta = nlohmann::json::parse(
      text ? reinterpret_cast<const char*>(text) : "", nullptr, /*allow_exceptions=*/false);
  if (meta.is_discarded() || !meta.is_object() || !meta.contains("sources") ||
      !meta["sources"].is_array()) {
    sqlite3_result_error(ctx, "array node without a valid \"sources\" list", -1);
    return;
  }
  for (auto& id : meta["sources"]) {
    if (!id.is_number_integer()) {
      sqlite3_result_error(ctx, "array node with a non-integer source id", -1);
      return;
    }
    id = id.get<int64_t>() + offset;
  }
  std::string out = meta.dump();
  sqlite3_result_text(ctx, out.c_str(), static_cast<int>(out.size()), SQLITE_TRANSIENT);
}

// A file: URI for ATTACH that reads `path` only (characters with a meaning in URIs escaped).
std::string ReadOnlyUri(const fs::path& path) {
  std::string uri = "file:";
  for (char c : fs::absolute(path).string()) {
    if (c == '%' || c == '?' || c == '#') {
      static const char* hex = "0123456789ABCDEF";
      uri += '%';
      uri += hex[(c >> 4) & 0xF];
      uri += hex[c & 0xF];
    } else {
      uri += c;
    }
  }
  return uri + "?mode=ro";
}

// Removes the temporary output (and SQLite's side files) when the merge ends, failed or not: a
// finished merge has linked it to its final name first.
class TempOutput {
 public:
  explicit TempOutput(fs::path path) : path_(std::move(path)) {}
  ~TempOutput() {
    std::error_code ec;
    for (const char* suffix : {"", "-journal", "-wal", "-shm"}) {
      fs::remove(path_.string() + suffix, ec);
    }
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// The sql text of an inclusive range of paths below folder `p` on column `col`: '0' follows '/'.
std::string UnderFolder(const std::string& col) {
  return "(?1 = '' OR " + col + " = ?1 OR (" + col + " >= ?1 || '/' AND " + col + " < ?1 || '0'))";
}

class Merger {
 public:
  Merger(MergeDb& db, std::vector<InputRange>& done) : db_(db), done_(done) {}

  // The input of the output's source `id`.
  const fs::path& InputOf(int64_t id) const {
    for (const InputRange& r : done_) {
      if (id > r.offset && id <= r.last) return r.path;
    }
    return done_.back().path;  // unreachable: every output id comes from an input
  }

  // A scanned file of `schema` ("main" or "inp") that a node at `path` belongs to: its owner, or
  // for a folder group the first file below it. Returns (source id, display name).
  Result<std::pair<int64_t, std::string>> OwnerOf(const std::string& schema, const std::string& path,
                                                  std::optional<int64_t> owner) {
    std::string sql;
    if (owner) {
      sql = "SELECT id, uri FROM " + schema + ".sources WHERE id = ?2";
    } else {
      sql = "SELECT id, uri FROM " + schema + ".sources WHERE owner = 0 AND " + UnderFolder("grp") +
            " ORDER BY grp LIMIT 1";
    }
    ASSIGN_OR_RETURN(auto s, db_.Prepare(sql));
    s->Bind(1, path);
    if (owner) s->Bind(2, *owner);
    ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) return std::make_pair(int64_t{0}, std::string("(no source)"));
    std::string name = DisplaySource(s->ColumnText(1));
    if (!owner) name = "the folder above " + name;
    return std::make_pair(s->ColumnInt(0), name);
  }

  // The first conflict between the attached input `in` and what the output holds, if any.
  Status CheckConflicts(const fs::path& in) {
    {
      ASSIGN_OR_RETURN(auto s, db_.Prepare(
          "SELECT i.uri, o.id FROM inp.sources AS i JOIN main.sources AS o "
          "ON o.uri = i.uri AND o.owner = 0 WHERE i.owner = 0 LIMIT 1"));
      ASSIGN_OR_RETURN(bool row, s->Step());
      if (row) {
        std::string name = DisplaySource(s->ColumnText(0));
        return InvalidArgumentError("merge conflict: " + InputOf(s->ColumnInt(1)).string() +
                                    " and " + in.string() + " both index the source " + name +
                                    "; merge indexes of different sources");
      }
    }
    // Folder groups (owner NULL) are shared; any other node at the same path is a conflict.
    ASSIGN_OR_RETURN(auto s, db_.Prepare(
        "SELECT i.path, i.owner, o.owner FROM inp.nodes AS i JOIN main.nodes AS o "
        "ON o.path = i.path WHERE i.owner IS NOT NULL OR o.owner IS NOT NULL LIMIT 1"));
    ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) return OkStatus();
    std::string path = s->ColumnText(0);
    auto owner = [&](int col) {
      return s->ColumnIsNull(col) ? std::optional<int64_t>() : s->ColumnInt(col);
    };
    std::optional<int64_t> in_owner = owner(1), out_owner = owner(2);
    s.reset();
    ASSIGN_OR_RETURN(auto theirs, OwnerOf("main", path, out_owner));
    ASSIGN_OR_RETURN(auto ours, OwnerOf("inp", path, in_owner));
    return InvalidArgumentError("merge conflict: the tree path '" + path + "' is in both " +
                                InputOf(theirs.first).string() + " (" + theirs.second + ") and " +
                                in.string() + " (" + ours.second +
                                "); merge indexes of different paths");
  }

  Status Add(const fs::path& in, MergeReport& report) {
    RETURN_IF_ERROR(db_.Exec("ATTACH DATABASE '" + Quote(ReadOnlyUri(in)) + "' AS inp"));
    Status st = AddAttached(in, report);
    Status detach = db_.Exec("DETACH DATABASE inp");
    RETURN_IF_ERROR(st);
    return detach;
  }

 private:
  static std::string Quote(const std::string& s) {
    std::string out;
    for (char c : s) {
      out += c;
      if (c == '\'') out += '\'';
    }
    return out;
  }

  Status AddAttached(const fs::path& in, MergeReport& report) {
    RETURN_IF_ERROR(db_.Exec("BEGIN IMMEDIATE"));
    Status st = CopyAttached(in, report);
    if (!st.ok()) {
      // Without a journal this only ends the transaction: the output is deleted after it.
      db_.Exec("ROLLBACK").IgnoreError();
      return st;
    }
    return db_.Exec("COMMIT");
  }

  // The attached input's placement as the indexer records it: its root (a URI; empty when it
  // records none) and the root's kind ("folder", or "file" for a single file served as the root).
  Result<std::pair<std::string, std::string>> PlacementOfAttached() {
    std::pair<std::string, std::string> out;
    for (auto [key, value] : {std::pair{"root", &out.first}, {"root_kind", &out.second}}) {
      ASSIGN_OR_RETURN(auto s, db_.Prepare("SELECT value FROM inp.meta WHERE key = ?1"));
      s->Bind(1, std::string_view(key));
      ASSIGN_OR_RETURN(bool row, s->Step());
      if (row) *value = s->ColumnText(0);
    }
    return out;
  }

  // Every input must be placed under the same root: tree paths are relative to it. The merged
  // index records it, so that indexing into it later places files as its inputs did.
  Status CheckAndCopyPlacement(const fs::path& in) {
    ASSIGN_OR_RETURN(auto placement, PlacementOfAttached());
    if (done_.size() == 1) {
      placement_ = placement;
      return db_.Copy("INSERT OR REPLACE INTO main.meta(key, value) SELECT key, value FROM "
                      "inp.meta WHERE key IN ('root', 'root_kind')", 0, 0).status();
    }
    if (placement == placement_) return OkStatus();
    auto show = [](const std::pair<std::string, std::string>& p) {
      if (p.first.empty()) return std::string("records no root");
      return "has the root " + DisplaySource(p.first) + (p.second == "file" ? " (a file)" : "");
    };
    return InvalidArgumentError("merge conflict: " + done_.front().path.string() + " " +
                                show(placement_) + ", " + in.string() + " " + show(placement) +
                                "; merge indexes made with the same --root");
  }

  Status CopyAttached(const fs::path& in, MergeReport& report) {
    RETURN_IF_ERROR(CheckConflicts(in));
    // Ids of this input move past everything already merged; ids are never reused, so every
    // reference between rows (owners, "sources" lists, blocks, refusals) shifts by one offset.
    ASSIGN_OR_RETURN(int64_t src, db_.Scalar("SELECT coalesce(max(id), 0) FROM main.sources"));
    ASSIGN_OR_RETURN(int64_t node, db_.Scalar("SELECT coalesce(max(id), 0) FROM main.nodes"));
    ASSIGN_OR_RETURN(int64_t in_last, db_.Scalar("SELECT coalesce(max(id), 0) FROM inp.sources"));
    done_.push_back({in, src, src + in_last});
    RETURN_IF_ERROR(CheckAndCopyPlacement(in));

    ASSIGN_OR_RETURN(uint64_t files, db_.Scalar("SELECT count(*) FROM inp.sources WHERE owner = 0"));
    ASSIGN_OR_RETURN(uint64_t failed, db_.Scalar("SELECT count(*) FROM inp.sources WHERE status = 'failed'"));
    ASSIGN_OR_RETURN(uint64_t refs, db_.Scalar("SELECT coalesce(sum(chunks), 0) FROM inp.nodes"));
    report.files += files;
    report.failed_files += failed;
    report.chunk_refs += refs;

    RETURN_IF_ERROR(db_.Copy(
        "INSERT INTO main.sources(id, uri, owner, size, generation, fingerprint, status, error, "
        "grp, scanner) SELECT id + ?1, uri, CASE WHEN owner = 0 THEN 0 ELSE owner + ?1 END, size, "
        "generation, fingerprint, status, error, grp, scanner FROM inp.sources ORDER BY id",
        src, node).status());
    ASSIGN_OR_RETURN(uint64_t nodes, db_.Copy(
        "INSERT INTO main.nodes(id, path, parent, kind, owner, chunks, meta) "
        "SELECT id + ?2, path, parent, kind, owner + ?1, chunks, "
        "CASE WHEN kind = 1 THEN refzarr_shift_sources(meta, ?1) ELSE meta END "
        "FROM inp.nodes AS i WHERE i.owner IS NOT NULL OR NOT EXISTS "
        "(SELECT 1 FROM main.nodes AS o WHERE o.path = i.path) ORDER BY id",
        src, node));
    report.nodes += nodes;
    for (const char* table : {"chunk_blocks(node, block, data) SELECT node + ?2, block, data FROM inp.chunk_blocks",
                              "inline_chunks(node, chunk, data) SELECT node + ?2, chunk, data FROM inp.inline_chunks",
                              "files(node, data) SELECT node + ?2, data FROM inp.files"}) {
      RETURN_IF_ERROR(db_.Copy(std::string("INSERT INTO main.") + table, src, node).status());
    }
    ASSIGN_OR_RETURN(uint64_t refused, db_.Copy(
        "INSERT INTO main.refusals(source, path, reason) SELECT source + ?1, path, reason "
        "FROM inp.refusals ORDER BY rowid", src, node));
    report.refusals += refused;
    return OkStatus();
  }

  MergeDb& db_;
  std::vector<InputRange>& done_;
  std::pair<std::string, std::string> placement_;  // the first input's (PlacementOfAttached)
};

// Shard indexes (`index --shard K/N` records "shard" and "shard_run" in meta) are merged only
// whole: each task's run finished, and every shard of a run given once. A task killed by a time
// limit, or one whose index was left out, would otherwise give an index quietly missing files.
Status CheckShards(const std::vector<fs::path>& inputs) {
  std::map<uint64_t, std::map<uint64_t, fs::path>> runs;  // N -> K -> input
  for (const fs::path& in : inputs) {
    ASSIGN_OR_RETURN(auto store, OpenRefStore(in, OpenMode::kReadOnly));
    ASSIGN_OR_RETURN(std::optional<std::string> shard, store->GetMeta("shard"));
    if (!shard) continue;
    ASSIGN_OR_RETURN(std::optional<std::string> run, store->GetMeta("shard_run"));
    if (run.value_or("") != "complete") {
      return InvalidArgumentError(in.string() + " (shard " + *shard +
                                  ") is incomplete: its run stopped before the end or is still "
                                  "going; re-run that task (the same command), then merge");
    }
    const size_t slash = shard->find('/');
    uint64_t k = 0, n = 0;
    try {
      k = std::stoull(shard->substr(0, slash));
      n = slash == std::string::npos ? 0 : std::stoull(shard->substr(slash + 1));
    } catch (const std::exception&) {
    }
    if (k == 0 || k > n) return CorruptError(in.string() + ": invalid shard '" + *shard + "'");
    auto [it, fresh] = runs[n].emplace(k, in);
    if (!fresh) {
      return InvalidArgumentError(it->second.string() + " and " + in.string() +
                                  " are both shard " + *shard + ": give each shard of a run once");
    }
  }
  for (const auto& [n, shards] : runs) {
    std::string missing;
    uint64_t count = 0;
    for (uint64_t k = 1; k <= n; ++k) {
      if (shards.count(k)) continue;
      if (++count <= 8) missing += (missing.empty() ? "" : ", ") + std::to_string(k);
    }
    if (count == 0) continue;
    if (count > 8) missing += ", ...";
    return InvalidArgumentError(std::to_string(count) + " of the " + std::to_string(n) +
                                " shards of the run missing (K = " + missing + "; " +
                                shards.begin()->second.string() +
                                " is one of them): give every shard's index");
  }
  return OkStatus();
}

}  // namespace

namespace internal {

// The array meta `text` with `offset` added to each id of its top-level "sources" list, rewritten
// in the text itself: the index writes that list as plain non-negative integers ("sources":[3,4]),
// so no JSON is parsed or dumped (they were a quarter of a merge's time per file). nullopt when
// the text is not of that shape; the caller then parses it.
std::optional<std::string> ShiftSourcesInText(std::string_view text, int64_t offset) {
  constexpr std::string_view kKey = "\"sources\":[";
  int depth = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (ch == '"') {
      if (depth == 1 && text.substr(i, kKey.size()) == kKey) {
        std::string out(text.substr(0, i + kKey.size()));
        size_t at = i + kKey.size();
        while (at < text.size() && text[at] != ']') {
          size_t end = at;
          int64_t id = 0;
          while (end < text.size() && text[end] >= '0' && text[end] <= '9' && end - at < 18) {
            id = id * 10 + (text[end] - '0');
            ++end;
          }
          if (end == at || end >= text.size() || (text[end] != ',' && text[end] != ']')) {
            return std::nullopt;
          }
          out += std::to_string(id + offset);
          if (text[end] == ',') out += ',';
          at = end + (text[end] == ',' ? 1 : 0);
          if (text[end] == ',' && (at >= text.size() || text[at] == ']')) return std::nullopt;
        }
        if (at >= text.size()) return std::nullopt;
        out.append(text.substr(at));
        return out;
      }
      // Skip the string (keys and values), escapes included.
      for (++i; i < text.size() && text[i] != '"'; ++i) {
        if (text[i] == '\\') ++i;
      }
      continue;
    }
    if (ch == '{' || ch == '[') ++depth;
    if (ch == '}' || ch == ']') --depth;
  }
  return std::nullopt;
}

}  // namespace internal

Result<MergeReport> MergeIndexes(const std::vector<fs::path>& inputs, const fs::path& out) {
  if (inputs.empty()) return InvalidArgumentError("merge: no input index given");
  std::error_code ec;
  if (fs::exists(out, ec) || fs::is_symlink(out, ec)) {
    return InvalidArgumentError("merge: " + out.string() +
                                " already exists; the merged index is written to a new file");
  }
  // Each input must be an index this refzarr reads (a clear message for a wrong file).
  for (const fs::path& in : inputs) {
    RETURN_IF_ERROR(OpenRefStore(in, OpenMode::kReadOnly).status().WithContext("merge"));
  }
  RETURN_IF_ERROR(CheckShards(inputs));
  // Written under a temporary name beside OUT, renamed at the end: OUT exists only when complete.
  fs::path parent = out.parent_path().empty() ? fs::path(".") : out.parent_path();
  TempOutput tmp(parent / ("." + out.filename().string() + ".merging-" + std::to_string(getpid())));
  {
    ASSIGN_OR_RETURN(auto created, OpenRefStore(tmp.path(), OpenMode::kReadWrite));
  }
  MergeDb db;
  RETURN_IF_ERROR(db.Open(tmp.path()));
  // A file that is deleted on failure needs no crash safety while it is written, and no undo:
  // a failed input fails the whole merge. So no journal at all (a rollback journal would write
  // every index page it changes once more: hash-sharded inputs change most of them, each), and
  // a cache that keeps the indexes' pages between inputs instead of reading them back (bounded:
  // 16 MiB, whatever the inputs' sizes).
  RETURN_IF_ERROR(db.Exec("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; "
                          "PRAGMA cache_size=-16384"));
  int rc = sqlite3_create_function(db.handle(), "refzarr_shift_sources", 2,
                                   SQLITE_UTF8 | SQLITE_DETERMINISTIC, nullptr, ShiftSources,
                                   nullptr, nullptr);
  RETURN_IF_ERROR(FromSqlite(db.handle(), rc, "register refzarr_shift_sources"));

  MergeReport report;
  std::vector<InputRange> done;
  Merger merger(db, done);
  for (const fs::path& in : inputs) {
    RETURN_IF_ERROR(merger.Add(in, report));
    ++report.inputs;
  }
  // Back to the mode RefStore writes in, then durable before it gets its name.
  RETURN_IF_ERROR(db.Exec("PRAGMA journal_mode=WAL"));
  db.Close();
  int fd = ::open(tmp.path().c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  // link() fails if OUT appeared meanwhile, where rename() would replace it; file systems
  // without hard links get a rename after a last check.
  if (::link(tmp.path().c_str(), out.c_str()) != 0) {
    int err = errno;
    bool no_links = err == EPERM || err == ENOTSUP || err == EOPNOTSUPP || err == EMLINK;
    if (!no_links || fs::exists(out, ec) || ::rename(tmp.path().c_str(), out.c_str()) != 0) {
      if (!no_links || fs::exists(out, ec)) errno = err;
      return IoError("merge: cannot create " + out.string() + ": " + std::strerror(errno));
    }
  }
  return report;
}

}  // namespace refzarr
