#include "store/ref_store.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "formats/core/byte_source.h"
#include "formats/core/crc32c.h"
#include "store/sqlite.h"

namespace refzarr {
namespace {

using internal::Connection;
using internal::Statement;
using internal::Transaction;
using nlohmann::json;

constexpr std::string_view kRootParent = "/";  // parent of the root node "": matches no real path

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sources(
  id INTEGER PRIMARY KEY,
  uri TEXT NOT NULL,              -- file:///abs/path (later https://, s3://)
  owner INTEGER NOT NULL,         -- 0 for a scanned file, else the id of the file it serves
  size INTEGER NOT NULL,
  generation TEXT NOT NULL,       -- the opener's opaque version of the bytes
  fingerprint TEXT NOT NULL,
  status TEXT NOT NULL,           -- ok | failed | companion
  error TEXT NOT NULL DEFAULT '',
  grp TEXT NOT NULL DEFAULT '',
  scanner TEXT NOT NULL DEFAULT '',
  UNIQUE(uri, owner));
CREATE INDEX IF NOT EXISTS sources_by_owner ON sources(owner);
CREATE TABLE IF NOT EXISTS nodes(
  id INTEGER PRIMARY KEY,
  path TEXT NOT NULL UNIQUE,
  parent TEXT NOT NULL,
  kind INTEGER NOT NULL,          -- 0 group, 1 array, 2 file
  owner INTEGER,                  -- source id of the scanned file, NULL for folder groups
  chunks INTEGER NOT NULL DEFAULT 0,
  meta TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS nodes_by_parent ON nodes(parent, path);
CREATE INDEX IF NOT EXISTS nodes_by_owner ON nodes(owner);
CREATE TABLE IF NOT EXISTS chunk_blocks(
  node INTEGER NOT NULL, block INTEGER NOT NULL, data BLOB NOT NULL,
  PRIMARY KEY(node, block)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS inline_chunks(
  node INTEGER NOT NULL, chunk INTEGER NOT NULL, data BLOB NOT NULL,
  PRIMARY KEY(node, chunk)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS files(node INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS refusals(
  source INTEGER NOT NULL,        -- id of the scanned file that declared the array
  path TEXT NOT NULL,             -- tree path the array would have had
  reason TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS refusals_by_source ON refusals(source);
CREATE INDEX IF NOT EXISTS refusals_by_path ON refusals(path);
)sql";

std::string ParentOf(std::string_view path) {
  if (path.empty()) return std::string(kRootParent);
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? std::string() : std::string(path.substr(0, slash));
}


constexpr const char* kSourceColumns =
    "id, uri, size, generation, fingerprint, status, error, grp, scanner";

SourceInfo ReadSourceRow(const Statement& s) {
  // Columns: kSourceColumns
  SourceInfo i;
  i.id = s.ColumnInt(0);
  i.uri = s.ColumnText(1);
  i.size = static_cast<uint64_t>(s.ColumnInt(2));
  i.generation.value = s.ColumnText(3);
  i.fingerprint = s.ColumnText(4);
  i.status = s.ColumnText(5);
  i.error = s.ColumnText(6);
  i.group = s.ColumnText(7);
  i.scanner = s.ColumnText(8);
  return i;
}

constexpr const char* kNodeColumns = "id, path, kind, meta, owner";

Result<NodeRecord> ReadNodeRow(const Statement& s) {
  // Columns: kNodeColumns
  NodeRecord n;
  n.id = s.ColumnInt(0);
  n.path = s.ColumnText(1);
  n.kind = static_cast<NodeKind>(s.ColumnInt(2));
  if (!s.ColumnIsNull(4)) n.owner = s.ColumnInt(4);
  try {
    n.meta = json::parse(s.ColumnText(3));
  } catch (const json::exception& e) {
    return CorruptError("index: node '" + n.path + "': bad metadata: " + e.what());
  }
  return n;
}

class SqliteRefStore final : public RefStore {
 public:
  SqliteRefStore(std::filesystem::path path, OpenMode mode) : path_(std::move(path)), mode_(mode) {}

  Status Init() {
    bool read_only = mode_ != OpenMode::kReadWrite;
    if (read_only && !std::filesystem::exists(path_)) {
      return NotFoundError(path_.string() + ": no such index");
    }
    ASSIGN_OR_RETURN(writer_, Connection::Open(path_, read_only));
    if (!read_only) {
      RETURN_IF_ERROR(writer_->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"));
      ASSIGN_OR_RETURN(bool fresh, IsEmptyDatabase());
      if (fresh) {
        Transaction t(*writer_);
        RETURN_IF_ERROR(t.Begin());
        RETURN_IF_ERROR(writer_->Exec(kSchema));
        ASSIGN_OR_RETURN(Statement * s, writer_->Prepare(
            "INSERT INTO meta(key, value) VALUES ('schema_version', ?), ('created_by', ?)"));
        RETURN_IF_ERROR(s->Bind(1, std::to_string(kIndexSchemaVersion))
                            .Bind(2, std::string_view("refzarr"))
                            .Run());
        RETURN_IF_ERROR(t.Commit());
      }
    }
    Status st = CheckSchema().WithContext(path_.string());
    writer_->ResetAll();
    RETURN_IF_ERROR(st);
    if (mode_ == OpenMode::kSnapshot) {
      // The connection that checked the schema becomes the first pinned reader: its read
      // transaction fixes the generation every later reader must see.
      RETURN_IF_ERROR(writer_->Exec("BEGIN"));
      ASSIGN_OR_RETURN(pinned_generation_, ReadGeneration(*writer_));
      pool_.push_back(std::move(writer_));
      pinned_readers_ = 1;
    }
    return OkStatus();
  }

  // Writes need the writer connection, which a read-only store opens read-only and a kSnapshot
  // store has made its first reader.
  Status CheckWritable() const {
    if (mode_ == OpenMode::kReadWrite) return OkStatus();
    return InvalidArgumentError(path_.string() + ": the index was opened read-only");
  }

  // The generation as `c` sees it now (inside its transaction, if one is open).
  static Result<uint64_t> ReadGeneration(Connection& c) {
    ASSIGN_OR_RETURN(Statement * s, c.Prepare("SELECT value FROM meta WHERE key = 'generation'"));
    ASSIGN_OR_RETURN(bool row, s->Step());
    uint64_t g = row ? static_cast<uint64_t>(s->ColumnInt(0)) : 0;
    s->Reset();
    return g;
  }

  // One write of the index: the write lock, then (Begin) one transaction on the writer; Commit
  // raises the index generation in that same transaction, so readers pinned to a state
  // (kSnapshot) and servers watching the index tell every state apart. Rolls back unless
  // committed.
  class Write {
   public:
    explicit Write(SqliteRefStore& store) : lock_(store.write_mu_), store_(store) {}
    Status Begin() {
      RETURN_IF_ERROR(store_.CheckWritable());
      store_.writer_->ResetAll();
      transaction_.emplace(*store_.writer_);
      return transaction_->Begin();
    }
    Status Commit() {
      RETURN_IF_ERROR(store_.writer_->Exec(
          "INSERT INTO meta(key, value) VALUES ('generation', 1) ON CONFLICT(key) DO UPDATE "
          "SET value = CAST(value AS INTEGER) + 1"));
      return transaction_->Commit();
    }

   private:
    std::lock_guard<std::mutex> lock_;
    SqliteRefStore& store_;
    std::optional<Transaction> transaction_;
  };

  Result<bool> IsEmptyDatabase() {
    ASSIGN_OR_RETURN(Statement * s, writer_->Prepare("SELECT count(*) FROM sqlite_master"));
    ASSIGN_OR_RETURN(bool row, s->Step());
    return row && s->ColumnInt(0) == 0;
  }

  Status CheckSchema() {
    auto s = writer_->Prepare("SELECT value FROM meta WHERE key = 'schema_version'");
    if (!s.ok()) return CorruptError("not a refzarr index (" + s.status().message() + ")");
    ASSIGN_OR_RETURN(bool row, (*s)->Step());
    if (!row) return CorruptError("not a refzarr index (no schema version)");
    std::string v = (*s)->ColumnText(0);
    if (v != std::to_string(kIndexSchemaVersion)) {
      return CorruptError("index schema version " + v + ", this refzarr reads version " +
                          std::to_string(kIndexSchemaVersion) +
                          ": index the files again into a new index");
    }
    return OkStatus();
  }

  // ---- writing ----

  Status PutFile(const SourceInfo& main, std::string_view group, std::string_view scanner,
                 const ScannedFile& scan, const std::vector<SourceInfo>& companions) override {
    if (companions.size() != scan.companions.size()) {
      return InternalError("PutFile: companion count mismatch");
    }
    Write t(*this);
    RETURN_IF_ERROR(t.Begin());
    RETURN_IF_ERROR(RemoveFile(main.uri));
    ASSIGN_OR_RETURN(int64_t file_id, InsertSource(main, 0, "ok", "", group, scanner));
    std::vector<int64_t> global_ids = {file_id};
    for (const SourceInfo& c : companions) {
      ASSIGN_OR_RETURN(int64_t cid, InsertSource(c, file_id, "companion", "", "", ""));
      global_ids.push_back(cid);
    }
    RETURN_IF_ERROR(EnsureFolderGroups(group));

    // The file group, then every group and array the scan declared, with implicit parents.
    std::map<std::string, const ScannedFile::Group*> groups;
    for (const auto& g : scan.groups) groups[g.path] = &g;
    std::set<std::string> created;
    auto put_group = [&](const std::string& rel) -> Status {
      if (created.count(rel)) return OkStatus();
      created.insert(rel);
      json meta = {{"attributes", json::object()}, {"image", nullptr}, {"file_root", rel.empty()}};
      auto it = groups.find(rel);
      if (it != groups.end()) {
        meta["attributes"] = it->second->attributes;
        if (it->second->image) meta["image"] = it->second->image->ToJson();
      }
      return InsertNode(JoinTreePath(group, rel), NodeKind::kGroup, file_id, 0, meta).status();
    };
    auto put_parents = [&](const std::string& rel) -> Status {
      RETURN_IF_ERROR(put_group(""));
      for (size_t pos = rel.find('/'); pos != std::string::npos; pos = rel.find('/', pos + 1)) {
        RETURN_IF_ERROR(put_group(rel.substr(0, pos)));
      }
      return OkStatus();
    };
    for (const auto& g : scan.groups) {
      RETURN_IF_ERROR(put_parents(g.path));
      RETURN_IF_ERROR(put_group(g.path));
    }
    RETURN_IF_ERROR(put_parents(""));
    for (const auto& a : scan.arrays) {
      RETURN_IF_ERROR(put_parents(a.path));
      RETURN_IF_ERROR(PutArray(JoinTreePath(group, a.path), file_id, global_ids, a));
    }
    for (const ScannedFile::Refusal& r : scan.refused) {
      ASSIGN_OR_RETURN(Statement * s, writer_->Prepare(
          "INSERT INTO refusals(source, path, reason) VALUES (?, ?, ?)"));
      RETURN_IF_ERROR(s->Bind(1, file_id).Bind(2, JoinTreePath(group, r.path)).Bind(3, r.reason).Run());
    }
    for (const auto& f : scan.files) {
      RETURN_IF_ERROR(put_parents(f.path));
      ASSIGN_OR_RETURN(int64_t id, InsertNode(JoinTreePath(group, f.path), NodeKind::kFile, file_id, 0,
                                              json{{"size", f.bytes.size()}}));
      ASSIGN_OR_RETURN(Statement * s, writer_->Prepare("INSERT INTO files(node, data) VALUES (?, ?)"));
      RETURN_IF_ERROR(s->Bind(1, id).BindBlob(2, std::as_bytes(std::span(f.bytes))).Run());
    }
    return t.Commit();
  }

  Status PutFailure(const SourceInfo& main, std::string_view group,
                    std::string_view error) override {
    Write t(*this);
    RETURN_IF_ERROR(t.Begin());
    RETURN_IF_ERROR(RemoveFile(main.uri));
    RETURN_IF_ERROR(InsertSource(main, 0, "failed", error, group, "").status());
    return t.Commit();
  }

  Status RemoveSource(std::string_view path) override {
    Write t(*this);
    RETURN_IF_ERROR(t.Begin());
    RETURN_IF_ERROR(RemoveFile(path));
    // Folder groups (owned by no file) that no longer hold anything, deepest first.
    while (true) {
      ASSIGN_OR_RETURN(Statement * s, writer_->Prepare(
          "DELETE FROM nodes WHERE owner IS NULL AND kind = 0 AND path <> '' AND NOT EXISTS "
          "(SELECT 1 FROM nodes AS c WHERE c.parent = nodes.path)"));
      RETURN_IF_ERROR(s->Run());
      if (sqlite3_changes(writer_->handle()) == 0) break;
    }
    return t.Commit();
  }

  Result<std::vector<std::string>> SourcesUnder(std::string_view prefix, std::string_view after,
                                                size_t limit) override {
    if (prefix.empty() || prefix.back() != '/') {
      return InvalidArgumentError("SourcesUnder: '" + std::string(prefix) + "' is not a folder path");
    }
    // Paths under "a/b/" sort in ["a/b/", "a/b0"): '0' follows '/'. A range on the (path, owner)
    // index rather than a string function, which would scan the table for every page.
    std::string upper(prefix);
    upper.back() = '0';
    ASSIGN_OR_RETURN(auto lease, Lease());
    ASSIGN_OR_RETURN(Statement * s, lease->Prepare(
        "SELECT uri FROM sources WHERE uri > ?1 AND uri < ?2 AND owner = 0 ORDER BY uri "
        "LIMIT ?3"));
    s->Bind(1, std::max(after, prefix)).Bind(2, upper).Bind(3, static_cast<int64_t>(limit));
    std::vector<std::string> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, s->Step());
      if (!row) return out;
      out.push_back(s->ColumnText(0));
    }
  }

  Result<std::optional<SourceInfo>> FindSource(std::string_view path) override {
    ASSIGN_OR_RETURN(auto lease, Lease());
    ASSIGN_OR_RETURN(Statement * s, lease->Prepare(std::string("SELECT ") + kSourceColumns +
                                                   " FROM sources WHERE uri = ? AND owner = 0"));
    s->Bind(1, path);
    ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) return std::optional<SourceInfo>();
    return std::optional<SourceInfo>(ReadSourceRow(*s));
  }

  // ---- reading ----

  Result<std::optional<NodeRecord>> GetNode(std::string_view path) override {
    ASSIGN_OR_RETURN(auto lease, Lease());
    ASSIGN_OR_RETURN(Statement * s, lease->Prepare(std::string("SELECT ") + kNodeColumns +
                                                   " FROM nodes WHERE path = ?"));
    s->Bind(1, path);
    ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) return std::optional<NodeRecord>();
    ASSIGN_OR_RETURN(NodeRecord n, ReadNodeRow(*s));
    return std::optional<NodeRecord>(std::move(n));
  }

  Result<std::vector<NodeRecord>> Children(std::string_view path) override {
    ASSIGN_OR_RETURN(auto lease, Lease());
    ASSIGN_OR_RETURN(Statement * s,
                     lease->Prepare(std::string("SELECT ") + kNodeColumns +
                                    " FROM nodes WHERE parent = ? AND path <> '' ORDER BY path"));
    s->Bind(1, path);
    return Collect(*s);
  }

  Result<std::vector<NodeRecord>> Subtree(std::string_view path) override {
    ASSIGN_OR_RETURN(auto lease, Lease());
    if (path.empty()) {
      ASSIGN_OR_RETURN(Statement * s, lease->Prepare(std::string("SELECT ") + kNodeColumns +
                                                     " FROM nodes WHERE path <> '' ORDER BY path"));
      return Collect(*s);
    }
    // Paths below "p" are exactly those in ["p/", "p0"): '0' follows '/' in ASCII.
    ASSIGN_OR_RETURN(Statement * s,
                     lease->Prepare(std::string("SELECT ") + kNodeColumns +
                                    " FROM nodes WHERE path >= ? AND path < ? ORDER BY path"));
    std::string lo = std::string(path) + "/", hi = std::string(path) + "0";
    s->Bind(1, lo).Bind(2, hi);
    return Collect(*s);
  }

  Result<std::vector<NodeRecord>> ChildrenAfter(std::string_view path, std::string_view after,
                                                size_t limit) override {
    ASSIGN_OR_RETURN(auto lease, Lease());
    // Children's paths share the prefix "path/", so their order is their names' order and
    // "after" becomes a bound on the path (nodes_by_parent covers (parent, path)).
    ASSIGN_OR_RETURN(
        Statement * s,
        lease->Prepare(
            std::string("SELECT ") + kNodeColumns +
            " FROM nodes WHERE parent = ? AND path > ? AND path <> '' ORDER BY path LIMIT ?"));
    std::string lower =
        path.empty() ? std::string(after) : std::string(path) + "/" + std::string(after);
    s->Bind(1, path).Bind(2, lower).Bind(3, static_cast<int64_t>(limit));
    return Collect(*s);
  }

  Result<std::vector<BlockEntry>> GetBlock(int64_t node_id, uint64_t block) override {
    ASSIGN_OR_RETURN(auto lease, Lease());
    ASSIGN_OR_RETURN(Statement * s, lease->Prepare(
        "SELECT data FROM chunk_blocks WHERE node = ? AND block = ?"));
    s->Bind(1, node_id).Bind(2, static_cast<int64_t>(block));
    ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) return std::vector<BlockEntry>();
    auto r = DecodeChunkBlock(s->ColumnBlob(0));
    if (!r.ok()) {
      return r.status().WithContext(path_.string() + ": node " + std::to_string(node_id) +
                                    " block " + std::to_string(block));
    }
    return r;
  }

  Result<std::vector<uint64_t>> BlockNumbers(int64_t node_id) override {
    ASSIGN_OR_RETURN(auto lease, Lease());
    ASSIGN_OR_RETURN(Statement * s, lease->Prepare(
        "SELECT block FROM chunk_blocks WHERE node = ? ORDER BY block"));
    s->Bind(1, node_id);
    std::vector<uint64_t> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, s->Step());
      if (!row) break;
      out.push_back(static_cast<uint64_t>(s->ColumnInt(0)));
    }
    return out;
  }

  Result<std::optional<uint64_t>> NextBlock(int64_t node_id, uint64_t block) override {
    ASSIGN_OR_RETURN(auto lease, Lease());
    ASSIGN_OR_RETURN(
        Statement * s,
        lease->Prepare(
            "SELECT block FROM chunk_blocks WHERE node = ? AND block >= ? ORDER BY block LIMIT 1"));
    s->Bind(1, node_id).Bind(2, static_cast<int64_t>(block));
    ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) return std::optional<uint64_t>();
    return std::optional<uint64_t>(static_cast<uint64_t>(s->ColumnInt(0)));
  }

  Result<std::optional<std::string>> GetInlineChunk(int64_t node_id, uint64_t chunk) override {
    ASSIGN_OR_RETURN(auto lease, Lease());
    ASSIGN_OR_RETURN(Statement * s, lease->Prepare(
        "SELECT data FROM inline_chunks WHERE node = ? AND chunk = ?"));
    s->Bind(1, node_id).Bind(2, static_cast<int64_t>(chunk));
    return OptionalBlob(*s);
  }

  Result<std::optional<std::string>> GetFileBytes(int64_t node_id) override {
    ASSIGN_OR_RETURN(auto lease, Lease());
    ASSIGN_OR_RETURN(Statement * s, lease->Prepare("SELECT data FROM files WHERE node = ?"));
    s->Bind(1, node_id);
    return OptionalBlob(*s);
  }

  Result<SourceInfo> GetSource(int64_t id) override {
    ASSIGN_OR_RETURN(auto lease, Lease());
    ASSIGN_OR_RETURN(Statement * s, lease->Prepare(std::string("SELECT ") + kSourceColumns +
                                                   " FROM sources WHERE id = ?"));
    s->Bind(1, id);
    ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) return CorruptError(path_.string() + ": source " + std::to_string(id) + " missing");
    return ReadSourceRow(*s);
  }

  Result<std::vector<int64_t>> FileSourceIds(int64_t file_id) override {
    ASSIGN_OR_RETURN(auto lease, Lease());
    ASSIGN_OR_RETURN(
        Statement * s,
        lease->Prepare(
            "SELECT id FROM sources WHERE id = ?1 OR owner = ?1 ORDER BY owner <> 0, id"));
    s->Bind(1, file_id);
    std::vector<int64_t> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, s->Step());
      if (!row) return out;
      out.push_back(s->ColumnInt(0));
    }
  }

  Result<std::vector<SourceInfo>> Sources() override {
    ASSIGN_OR_RETURN(auto lease, Lease());
    ASSIGN_OR_RETURN(Statement * s, lease->Prepare(std::string("SELECT ") + kSourceColumns +
                                                   " FROM sources ORDER BY uri, owner"));
    std::vector<SourceInfo> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, s->Step());
      if (!row) break;
      out.push_back(ReadSourceRow(*s));
    }
    return out;
  }

  Result<std::vector<RefusedArray>> RefusedArrays(size_t limit) override {
    ASSIGN_OR_RETURN(auto lease, Lease());
    ASSIGN_OR_RETURN(Statement * s, lease->Prepare(
        "SELECT r.path, s.uri, r.reason FROM refusals AS r JOIN sources AS s ON s.id = r.source "
        "ORDER BY r.path LIMIT ?"));
    s->Bind(1, static_cast<int64_t>(limit));
    std::vector<RefusedArray> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, s->Step());
      if (!row) return out;
      out.push_back({s->ColumnText(0), DisplaySource(s->ColumnText(1)), s->ColumnText(2)});
    }
  }

  Result<std::optional<std::string>> GetMeta(std::string_view key) override {
    ASSIGN_OR_RETURN(auto lease, Lease());
    ASSIGN_OR_RETURN(Statement * s, lease->Prepare("SELECT value FROM meta WHERE key = ?"));
    s->Bind(1, key);
    ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) return std::optional<std::string>();
    return std::optional<std::string>(s->ColumnText(0));
  }

  Status SetMeta(std::string_view key, std::string_view value) override {
    Write t(*this);
    RETURN_IF_ERROR(t.Begin());
    ASSIGN_OR_RETURN(Statement * s, writer_->Prepare(
        "INSERT INTO meta(key, value) VALUES (?1, ?2) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value"));
    RETURN_IF_ERROR(s->Bind(1, key).Bind(2, value).Run());
    return t.Commit();
  }

  Result<uint64_t> IndexGeneration() override {
    if (mode_ == OpenMode::kSnapshot) return pinned_generation_;
    ASSIGN_OR_RETURN(auto lease, Lease());
    return ReadGeneration(*lease);
  }

  Result<StoreStats> Stats() override {
    ASSIGN_OR_RETURN(auto lease, Lease());
    StoreStats st;
    auto scalar = [&](const char* sql, uint64_t& out) -> Status {
      ASSIGN_OR_RETURN(Statement * s, lease->Prepare(sql));
      ASSIGN_OR_RETURN(bool row, s->Step());
      out = row ? static_cast<uint64_t>(s->ColumnInt(0)) : 0;
      return OkStatus();
    };
    RETURN_IF_ERROR(scalar("SELECT count(*) FROM sources WHERE owner = 0 AND status = 'ok'", st.sources));
    RETURN_IF_ERROR(scalar("SELECT count(*) FROM sources WHERE status = 'failed'", st.failed_sources));
    RETURN_IF_ERROR(scalar("SELECT count(*) FROM nodes WHERE kind = 0", st.groups));
    RETURN_IF_ERROR(scalar("SELECT count(*) FROM nodes WHERE kind = 1", st.arrays));
    RETURN_IF_ERROR(scalar(
        "SELECT count(*) FROM nodes WHERE kind = 0 AND json_extract(meta, '$.image') IS NOT NULL",
        st.images));
    RETURN_IF_ERROR(scalar("SELECT coalesce(sum(chunks), 0) FROM nodes", st.chunk_refs));
    RETURN_IF_ERROR(scalar("SELECT count(*) FROM refusals", st.refused_arrays));
    RETURN_IF_ERROR(scalar("SELECT coalesce(sum(length(data)), 0) FROM chunk_blocks", st.block_bytes));
    std::error_code ec;
    for (const char* suffix : {"", "-wal"}) {
      auto size = std::filesystem::file_size(path_.string() + suffix, ec);
      if (!ec) st.index_bytes += size;
    }
    return st;
  }

  const std::filesystem::path& path() const override { return path_; }

 private:
  struct Release {
    SqliteRefStore* store;
    void operator()(Connection* c) const { store->Return(c); }
  };
  using LeasedConnection = std::unique_ptr<Connection, Release>;

  // Readers lease a connection of their own; SQLite connections are not shared between threads.
  // A kSnapshot store adds a reader only while it can pin one to its generation: a new connection
  // that sees a later one (a write landed since the store opened) is closed, the store stops
  // growing and its readers wait for one of the pinned connections instead.
  Result<LeasedConnection> Lease() {
    if (mode_ == OpenMode::kSnapshot) return LeasePinned();
    {
      std::lock_guard lock(pool_mu_);
      if (!pool_.empty()) {
        Connection* c = pool_.back().release();
        pool_.pop_back();
        return LeasedConnection(c, Release{this});
      }
    }
    ASSIGN_OR_RETURN(auto c, Connection::Open(path_, /*read_only=*/true));
    return LeasedConnection(c.release(), Release{this});
  }

  Result<LeasedConnection> LeasePinned() {
    std::unique_lock lock(pool_mu_);
    while (pool_.empty() && (!can_grow_ || pinned_readers_ >= kMaxPinnedReaders)) {
      pool_free_.wait(lock);
    }
    if (!pool_.empty()) {
      Connection* c = pool_.back().release();
      pool_.pop_back();
      return LeasedConnection(c, Release{this});
    }
    ++pinned_readers_;  // reserved while it is opened outside the lock
    lock.unlock();
    Result<std::unique_ptr<Connection>> opened = OpenPinned();
    lock.lock();
    if (opened.ok() && *opened) return LeasedConnection(opened->release(), Release{this});
    --pinned_readers_;
    can_grow_ = false;
    lock.unlock();
    pool_free_.notify_all();  // waiters for a growth that will not come
    if (!opened.ok()) return opened.status();
    lock.lock();
    pool_free_.wait(lock, [&] { return !pool_.empty(); });
    Connection* c = pool_.back().release();
    pool_.pop_back();
    return LeasedConnection(c, Release{this});
  }

  // A new reader in a read transaction of the store's generation; null when it sees another.
  Result<std::unique_ptr<Connection>> OpenPinned() {
    ASSIGN_OR_RETURN(auto c, Connection::Open(path_, /*read_only=*/true));
    RETURN_IF_ERROR(c->Exec("BEGIN"));
    ASSIGN_OR_RETURN(uint64_t g, ReadGeneration(*c));  // the read that fixes its snapshot
    if (g != pinned_generation_) return std::unique_ptr<Connection>();
    return c;
  }

  void Return(Connection* c) {
    c->ResetAll();
    {
      std::lock_guard lock(pool_mu_);
      pool_.emplace_back(c);
    }
    pool_free_.notify_one();
  }

  Result<std::vector<NodeRecord>> Collect(Statement& s) {
    std::vector<NodeRecord> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) return out;
      ASSIGN_OR_RETURN(NodeRecord n, ReadNodeRow(s));
      out.push_back(std::move(n));
    }
  }

  Result<std::optional<std::string>> OptionalBlob(Statement& s) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return std::optional<std::string>();
    auto b = s.ColumnBlob(0);
    return std::optional<std::string>(std::string(reinterpret_cast<const char*>(b.data()), b.size()));
  }

  Result<int64_t> InsertSource(const SourceInfo& i, int64_t owner, std::string_view status,
                               std::string_view error, std::string_view group,
                               std::string_view scanner) {
    ASSIGN_OR_RETURN(Statement * s, writer_->Prepare(
        "INSERT INTO sources(uri, owner, size, generation, fingerprint, status, error, grp, scanner)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    s->Bind(1, i.uri).Bind(2, owner).Bind(3, static_cast<int64_t>(i.size)).Bind(4, i.generation.value)
        .Bind(5, i.fingerprint).Bind(6, status).Bind(7, error).Bind(8, group).Bind(9, scanner);
    RETURN_IF_ERROR(s->Run());
    return sqlite3_last_insert_rowid(writer_->handle());
  }

  // Removes a scanned file, its companions and its nodes (not the folder groups around it).
  Status RemoveFile(std::string_view path) {
    ASSIGN_OR_RETURN(Statement * find,
                     writer_->Prepare("SELECT id FROM sources WHERE uri = ? AND owner = 0"));
    find->Bind(1, path);
    ASSIGN_OR_RETURN(bool row, find->Step());
    if (!row) return OkStatus();
    int64_t id = find->ColumnInt(0);
    find->Reset();
    for (const char* sql : {
             "DELETE FROM chunk_blocks WHERE node IN (SELECT id FROM nodes WHERE owner = ?1)",
             "DELETE FROM inline_chunks WHERE node IN (SELECT id FROM nodes WHERE owner = ?1)",
             "DELETE FROM files WHERE node IN (SELECT id FROM nodes WHERE owner = ?1)",
             "DELETE FROM nodes WHERE owner = ?1",
             "DELETE FROM refusals WHERE source = ?1",
             "DELETE FROM sources WHERE id = ?1 OR owner = ?1"}) {
      ASSIGN_OR_RETURN(Statement * s, writer_->Prepare(sql));
      RETURN_IF_ERROR(s->Bind(1, id).Run());
    }
    return OkStatus();
  }

  Result<int64_t> InsertNode(const std::string& path, NodeKind kind, std::optional<int64_t> owner,
                             uint64_t chunks, const json& meta) {
    ASSIGN_OR_RETURN(Statement * s, writer_->Prepare(
        "INSERT INTO nodes(path, parent, kind, owner, chunks, meta) VALUES (?, ?, ?, ?, ?, ?)"));
    s->Bind(1, path).Bind(2, ParentOf(path)).Bind(3, static_cast<int64_t>(kind));
    if (owner) s->Bind(4, *owner); else s->BindNull(4);
    s->Bind(5, static_cast<int64_t>(chunks)).Bind(6, meta.dump());
    Status st = s->Run();
    if (!st.ok()) {
      if (sqlite3_extended_errcode(writer_->handle()) == SQLITE_CONSTRAINT_UNIQUE) {
        return InvalidArgumentError("'" + path + "' is already in the index (two sources map to "
                                    "the same path)");
      }
      return st;
    }
    return sqlite3_last_insert_rowid(writer_->handle());
  }

  // Folder groups above a file group: plain groups owned by nobody, shared by the files below them.
  Status EnsureFolderGroups(std::string_view group) {
    std::vector<std::string> paths = {""};
    std::string g(group);
    for (size_t pos = g.find('/'); pos != std::string::npos; pos = g.find('/', pos + 1)) {
      paths.push_back(g.substr(0, pos));
    }
    if (g.empty()) paths.clear();  // the file itself is the root
    for (const std::string& p : paths) {
      ASSIGN_OR_RETURN(Statement * s, writer_->Prepare(
          "SELECT kind, owner IS NULL FROM nodes WHERE path = ?"));
      s->Bind(1, p);
      ASSIGN_OR_RETURN(bool row, s->Step());
      if (row) {
        if (s->ColumnInt(0) != 0 || s->ColumnInt(1) == 0) {
          return InvalidArgumentError("'" + p + "' is already part of another file in the index");
        }
        continue;
      }
      json meta = {{"attributes", json::object()}, {"image", nullptr}, {"file_root", false}};
      RETURN_IF_ERROR(InsertNode(p, NodeKind::kGroup, std::nullopt, 0, meta).status());
    }
    return OkStatus();
  }

  Status PutArray(const std::string& path, int64_t file_id, const std::vector<int64_t>& global_ids,
                  const ScannedFile::Array& a) {
    bool flagged = a.spilled && a.spilled->any_flagged();
    for (const auto& [index, ref] : a.chunks) {
      if (ref.flags & ~kChunkInline) flagged = true;
    }
    const uint64_t total = a.StoredCount() + a.inline_chunks.size();
    json meta = {{"array", a.desc.ToJson()},
                 {"sources", global_ids},
                 {"flagged", flagged},
                 {"stored", total}};
    ASSIGN_OR_RETURN(int64_t id, InsertNode(path, NodeKind::kArray, file_id, total, meta));

    // Blocks are written as the references come, in chunk order, without copying them. A chunk
    // index met twice fails the file (and rolls back its transaction).
    ASSIGN_OR_RETURN(Statement * put_block, writer_->Prepare(
        "INSERT INTO chunk_blocks(node, block, data) VALUES (?, ?, ?)"));
    if (a.checksummed && a.checksums.size() != a.StoredCount()) {
      return InternalError(path + ": " + std::to_string(a.checksums.size()) + " checksums for " +
                           std::to_string(a.StoredCount()) + " stored chunks");
    }
    std::vector<BlockEntry> block;
    uint64_t block_no = 0;
    uint64_t stored_seen = 0;
    bool filling = false;
    auto put = [&]() -> Status {
      ASSIGN_OR_RETURN(std::vector<std::byte> data, EncodeChunkBlock(block));
      put_block->Reset();
      return put_block->Bind(1, id).Bind(2, static_cast<int64_t>(block_no)).BindBlob(3, data).Run();
    };
    RETURN_IF_ERROR(VisitChunksInOrder(
        a, [&](uint64_t index, const ChunkRef* stored, const std::vector<std::byte>* bytes) -> Status {
          if (filling && index / kBlockSize != block_no) {
            RETURN_IF_ERROR(put());
            filling = false;
          }
          if (!filling) {
            block_no = index / kBlockSize;
            block.assign(kBlockSize, BlockEntry{});
            filling = true;
          }
          BlockEntry& e = block[index % kBlockSize];
          e.present = true;
          e.ref = stored != nullptr ? *stored : ChunkRef{0, 0, bytes->size(), kChunkInline};
          if (a.checksummed) {
            if (stored != nullptr) {
              if (stored_seen >= a.checksums.size()) {
                return InternalError(path + ": more stored chunks than checksums");
              }
              e.crc32c = a.checksums[stored_seen];
            } else {
              e.crc32c = Crc32c(*bytes);
            }
          }
          if (stored != nullptr) ++stored_seen;
          return OkStatus();
        }));
    if (filling) RETURN_IF_ERROR(put());
    ASSIGN_OR_RETURN(Statement * put_inline, writer_->Prepare(
        "INSERT INTO inline_chunks(node, chunk, data) VALUES (?, ?, ?)"));
    for (const auto& [index, bytes] : a.inline_chunks) {
      put_inline->Reset();
      RETURN_IF_ERROR(put_inline->Bind(1, id).Bind(2, static_cast<int64_t>(index))
                          .BindBlob(3, bytes).Run());
    }
    return OkStatus();
  }

  std::filesystem::path path_;
  OpenMode mode_;
  std::mutex write_mu_;
  std::unique_ptr<Connection> writer_;
  std::mutex pool_mu_;
  std::vector<std::unique_ptr<Connection>> pool_;
  // kSnapshot: the generation its readers see, how many there are (at most kMaxPinnedReaders),
  // whether it may still add one, and the signal that one came back.
  static constexpr size_t kMaxPinnedReaders = 8;
  uint64_t pinned_generation_ = 0;
  size_t pinned_readers_ = 0;
  bool can_grow_ = true;
  std::condition_variable pool_free_;

  // ---- rm and relocate ----
 public:
  Result<uint64_t> RemoveTree(std::string_view tree_path) override {
    Write t(*this);
    RETURN_IF_ERROR(t.Begin());
    // Created on first use rather than in kSchema, so indexes made before it get it too.
    RETURN_IF_ERROR(writer_->Exec("CREATE INDEX IF NOT EXISTS sources_by_group ON sources(grp)"));
    // Groups at or under "p" are "p" and ["p/", "p0"): '0' follows '/'. Rows leave the range as
    // they are removed, so every page starts at the front; a page is collected before removing.
    const std::string tp(tree_path), lo = tp + "/", hi = tp + "0";
    ASSIGN_OR_RETURN(Statement * page, writer_->Prepare(
        tp.empty() ? "SELECT uri FROM sources WHERE owner = 0 LIMIT 256"
                   : "SELECT uri FROM sources WHERE owner = 0 AND (grp = ?1 OR "
                     "(grp >= ?2 AND grp < ?3)) LIMIT 256"));
    uint64_t removed = 0;
    while (true) {
      page->Reset();
      if (!tp.empty()) page->Bind(1, tp).Bind(2, lo).Bind(3, hi);
      std::vector<std::string> uris;
      while (true) {
        ASSIGN_OR_RETURN(bool row, page->Step());
        if (!row) break;
        uris.push_back(page->ColumnText(0));
      }
      page->Reset();
      if (uris.empty()) break;
      for (const std::string& uri : uris) RETURN_IF_ERROR(RemoveFile(uri));
      removed += uris.size();
    }
    if (removed == 0) return uint64_t{0};
    // Folder groups left empty: those under the path, deepest first (each pass removes the
    // leaves), then the path and its ancestors while they are empty. Never the root.
    ASSIGN_OR_RETURN(Statement * below, writer_->Prepare(
        "DELETE FROM nodes WHERE path >= ?1 AND path < ?2 AND path <> '' AND owner IS NULL AND "
        "kind = 0 AND NOT EXISTS (SELECT 1 FROM nodes AS c WHERE c.parent = nodes.path)"));
    do {
      below->Reset();
      RETURN_IF_ERROR(below->Bind(1, tp.empty() ? std::string() : lo)
                          .Bind(2, tp.empty() ? std::string("\xff") : hi)
                          .Run());
    } while (sqlite3_changes(writer_->handle()) > 0);
    ASSIGN_OR_RETURN(Statement * up, writer_->Prepare(
        "DELETE FROM nodes WHERE path = ?1 AND owner IS NULL AND kind = 0 AND NOT EXISTS "
        "(SELECT 1 FROM nodes AS c WHERE c.parent = ?1)"));
    for (std::string p = tp; !p.empty(); p = ParentOf(p)) {
      up->Reset();
      RETURN_IF_ERROR(up->Bind(1, p).Run());
      // The path itself may have been a file's group, already gone with the file.
      if (sqlite3_changes(writer_->handle()) == 0 && p != tp) break;
    }
    RETURN_IF_ERROR(t.Commit());
    return removed;
  }

  Result<std::vector<OwnedSource>> SourcesAtOrUnder(std::string_view base,
                                                    std::string_view after_uri,
                                                    int64_t after_owner, size_t limit) override {
    // "base" and ["base/", "base0") on the (uri, owner) index; names such as "base-1" sort between
    // the two and are filtered out, so "/data/a" never matches "/data/ab/x.tif".
    const std::string b(base), lo = b + "/", hi = b + "0";
    ASSIGN_OR_RETURN(auto lease, Lease());
    ASSIGN_OR_RETURN(Statement * s, lease->Prepare(
        std::string("SELECT ") + kSourceColumns + ", owner FROM sources WHERE uri >= ?1 AND "
        "uri < ?3 AND (uri = ?1 OR uri >= ?2) AND (uri, owner) > (?4, ?5) ORDER BY uri, owner "
        "LIMIT ?6"));
    s->Bind(1, b).Bind(2, lo).Bind(3, hi).Bind(4, after_uri).Bind(5, after_owner)
        .Bind(6, static_cast<int64_t>(limit));
    std::vector<OwnedSource> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, s->Step());
      if (!row) return out;
      out.push_back({ReadSourceRow(*s), s->ColumnInt(9)});
    }
  }

  Result<std::vector<size_t>> MoveSources(const std::vector<SourceMove>& moves) override {
    Write t(*this);
    RETURN_IF_ERROR(t.Begin());
    ASSIGN_OR_RETURN(Statement * taken, writer_->Prepare(
        "SELECT 1 FROM sources WHERE uri = ?1 AND owner = (SELECT owner FROM sources WHERE id = ?2)"));
    ASSIGN_OR_RETURN(Statement * move, writer_->Prepare(
        "UPDATE sources SET uri = ?1, generation = ?2 WHERE id = ?3"));
    std::vector<size_t> refused;
    for (size_t i = 0; i < moves.size(); ++i) {
      const SourceMove& m = moves[i];
      taken->Reset();
      taken->Bind(1, m.uri).Bind(2, m.id);
      ASSIGN_OR_RETURN(bool exists, taken->Step());
      taken->Reset();
      if (exists) {
        refused.push_back(i);
        continue;
      }
      move->Reset();
      RETURN_IF_ERROR(move->Bind(1, m.uri).Bind(2, m.generation.value).Bind(3, m.id).Run());
    }
    RETURN_IF_ERROR(t.Commit());
    return refused;
  }
};

}  // namespace

Result<SourceInfo> StatSource(std::string_view uri, const SourceOpeners& openers) {
  ASSIGN_OR_RETURN(SourceStat st, openers.Stat(uri));
  SourceInfo info;
  info.uri = std::string(uri);
  info.size = st.size;
  info.generation = std::move(st.generation);
  return info;
}

Result<SourceInfo> ProbeSource(std::string_view uri, std::vector<std::byte>* head,
                               size_t head_bytes, const SourceOpeners& openers) {
  ASSIGN_OR_RETURN(auto source, openers.Open(uri));
  ASSIGN_OR_RETURN(SourceStat st, source->Stat());
  SourceInfo info;
  info.uri = std::string(uri);
  info.size = st.size;
  info.generation = std::move(st.generation);
  ASSIGN_OR_RETURN(info.fingerprint, ContentFingerprint(*source, info.size, head, head_bytes));
  return info;
}

std::string DescribeChange(const SourceInfo& indexed, const SourceInfo& now) {
  if (indexed.size != now.size) {
    return "size changed from " + std::to_string(indexed.size) + " to " + std::to_string(now.size) +
           " bytes";
  }
  if (indexed.generation != now.generation) return "modified or replaced";
  if (!now.fingerprint.empty() && indexed.fingerprint != now.fingerprint) return "content changed";
  return "";
}

Result<std::unique_ptr<RefStore>> OpenRefStore(const std::filesystem::path& path, OpenMode mode) {
  auto store = std::make_unique<SqliteRefStore>(path, mode);
  RETURN_IF_ERROR(store->Init());
  return std::unique_ptr<RefStore>(std::move(store));
}

std::string JoinTreePath(std::string_view a, std::string_view b) {
  if (a.empty()) return std::string(b);
  if (b.empty()) return std::string(a);
  return std::string(a) + "/" + std::string(b);
}

}  // namespace refzarr
