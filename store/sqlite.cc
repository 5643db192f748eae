#include "store/sqlite.h"

namespace refzarr::internal {

Status FromSqlite(sqlite3* db, int rc, std::string_view what) {
  if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW) return OkStatus();
  std::string m = "sqlite: " + std::string(what) + ": " + sqlite3_errstr(rc);
  if (db != nullptr && sqlite3_errmsg(db) != nullptr) {
    std::string detail = sqlite3_errmsg(db);
    if (detail != sqlite3_errstr(rc)) m += " (" + detail + ")";
  }
  int primary = rc & 0xff;
  if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) return CorruptError(m);
  if (primary == SQLITE_CANTOPEN) return NotFoundError(m);
  if (primary == SQLITE_IOERR || primary == SQLITE_FULL || primary == SQLITE_READONLY) {
    return IoError(m);
  }
  return InternalError(m);
}

Statement& Statement::Reset() {
  sqlite3_reset(stmt_.get());
  sqlite3_clear_bindings(stmt_.get());
  return *this;
}

Statement& Statement::Bind(int index, int64_t value) {
  sqlite3_bind_int64(stmt_.get(), index, value);
  return *this;
}

Statement& Statement::Bind(int index, std::string_view text) {
  sqlite3_bind_text64(stmt_.get(), index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  return *this;
}

Statement& Statement::BindBlob(int index, std::span<const std::byte> blob) {
  // A zero-length blob must still be a blob, not NULL: pass a non-null pointer.
  static const std::byte kEmpty{};
  sqlite3_bind_blob64(stmt_.get(), index, blob.empty() ? &kEmpty : blob.data(), blob.size(),
                      SQLITE_TRANSIENT);
  return *this;
}

Statement& Statement::BindNull(int index) {
  sqlite3_bind_null(stmt_.get(), index);
  return *this;
}

Result<bool> Statement::Step() {
  int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return FromSqlite(db_, rc, sqlite3_sql(stmt_.get()));
}

Status Statement::Run() {
  while (true) {
    ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return OkStatus();
  }
}

std::string Statement::ColumnText(int i) const {
  const unsigned char* p = sqlite3_column_text(stmt_.get(), i);
  int n = sqlite3_column_bytes(stmt_.get(), i);
  return p ? std::string(reinterpret_cast<const char*>(p), n) : std::string();
}

std::span<const std::byte> Statement::ColumnBlob(int i) const {
  const void* p = sqlite3_column_blob(stmt_.get(), i);
  int n = sqlite3_column_bytes(stmt_.get(), i);
  return {static_cast<const std::byte*>(p), static_cast<size_t>(n)};
}

Result<std::unique_ptr<Connection>> Connection::Open(const std::filesystem::path& path,
                                                     bool read_only) {
  sqlite3* db = nullptr;
  int flags = SQLITE_OPEN_NOMUTEX | (read_only ? SQLITE_OPEN_READONLY
                                               : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  std::unique_ptr<Connection> c(new Connection(db));
  if (rc != SQLITE_OK) {
    return FromSqlite(db, rc, "open " + path.string());
  }
  sqlite3_busy_timeout(db, 10000);
  sqlite3_extended_result_codes(db, 1);
  return c;
}

Status Connection::Exec(std::string_view sql) {
  char* err = nullptr;
  std::string s(sql);
  int rc = sqlite3_exec(db_.get(), s.c_str(), nullptr, nullptr, &err);
  if (err) sqlite3_free(err);
  return FromSqlite(db_.get(), rc, s.substr(0, 60));
}

void Connection::ResetAll() {
  for (auto& [sql, stmt] : statements_) stmt->Reset();
}

Result<Statement*> Connection::Prepare(std::string_view sql) {
  std::string key(sql);
  auto it = statements_.find(key);
  if (it != statements_.end()) return &it->second->Reset();
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_.get(), key.c_str(), static_cast<int>(key.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return FromSqlite(db_.get(), rc, "prepare " + key.substr(0, 60));
  }
  auto owned = std::make_unique<Statement>(db_.get(), stmt);
  Statement* raw = owned.get();
  statements_.emplace(std::move(key), std::move(owned));
  return raw;
}

}  // namespace refzarr::internal
