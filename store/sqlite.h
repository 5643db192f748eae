// Thin RAII owners for SQLite handles, and the one translator from SQLite codes to Status.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "formats/core/status.h"

namespace refzarr::internal {

/// Translates a SQLite result code into a Status whose message names `what` and the db's message.
Status FromSqlite(sqlite3* db, int rc, std::string_view what);

struct SqliteClose {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct SqliteFinalize {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};

/// A prepared statement: bind, step, read columns. Reset happens on every Bind-from-scratch call.
class Statement {
 public:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  /// Resets the statement and clears its bindings, ready for a new execution.
  Statement& Reset();
  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, std::string_view text);
  Statement& BindBlob(int index, std::span<const std::byte> blob);
  Statement& BindNull(int index);
  /// Steps once: true when a row is available, false when done.
  Result<bool> Step();
  /// Steps to completion (for statements that return no rows).
  Status Run();
  int64_t ColumnInt(int i) const { return sqlite3_column_int64(stmt_.get(), i); }
  bool ColumnIsNull(int i) const { return sqlite3_column_type(stmt_.get(), i) == SQLITE_NULL; }
  std::string ColumnText(int i) const;
  std::span<const std::byte> ColumnBlob(int i) const;

 private:
  sqlite3* db_;
  std::unique_ptr<sqlite3_stmt, SqliteFinalize> stmt_;
};

/// One SQLite connection with a cache of prepared statements. Not thread-safe: one per thread.
class Connection {
 public:
  /// Opens `path`; read_only connections never create or write. Busy timeout 10 s.
  static Result<std::unique_ptr<Connection>> Open(const std::filesystem::path& path, bool read_only);
  /// Runs one or more statements that return no rows.
  Status Exec(std::string_view sql);
  /// A cached prepared statement for `sql`, reset and ready to bind.
  Result<Statement*> Prepare(std::string_view sql);
  /// Resets every cached statement, ending the read transaction a half-stepped one holds open
  /// (which would otherwise pin this connection to an old snapshot of the database).
  void ResetAll();
  sqlite3* handle() const { return db_.get(); }

 private:
  explicit Connection(sqlite3* db) : db_(db) {}
  std::unique_ptr<sqlite3, SqliteClose> db_;
  std::unordered_map<std::string, std::unique_ptr<Statement>> statements_;
};

/// A transaction that rolls back unless Commit() was called.
class Transaction {
 public:
  explicit Transaction(Connection& c) : c_(c) {}
  ~Transaction() {
    if (open_) c_.Exec("ROLLBACK").IgnoreError();
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  Status Begin() {
    RETURN_IF_ERROR(c_.Exec("BEGIN IMMEDIATE"));
    open_ = true;
    return OkStatus();
  }
  Status Commit() {
    RETURN_IF_ERROR(c_.Exec("COMMIT"));
    open_ = false;
    return OkStatus();
  }

 private:
  Connection& c_;
  bool open_ = false;
};

}  // namespace refzarr::internal
