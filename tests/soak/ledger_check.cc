// The ledger checks, with SQLite, read-only: the daemon may still be running (WAL).
#include "tests/soak/ledger_check.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>

namespace forklet::testing {
namespace fs = std::filesystem;

bool CheckLedger(const std::string& state_dir, const std::set<std::string>& answered,
                 int64_t* rows) {
  std::string path = state_dir + "/ledger.db";
  if (!fs::exists(path)) return false;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << "open " << path << ": " << sqlite3_errmsg(db);
    sqlite3_close(db);
    return true;
  }
  sqlite3_busy_timeout(db, 5000);
  auto scalar = [&](const std::string& sql) -> std::string {
    sqlite3_stmt* s = nullptr;
    std::string out;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db);
    } else if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0)) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    }
    sqlite3_finalize(s);
    return out;
  };
  EXPECT_EQ(scalar("PRAGMA integrity_check"), "ok");
  EXPECT_EQ(scalar("SELECT count(*) - count(DISTINCT request_id) FROM invocations"), "0") << "duplicates";
  EXPECT_EQ(scalar("SELECT count(*) FROM invocations WHERE request_id = '' OR function = '' OR "
                   "outcome = '' OR billed_ms < 0"), "0") << "partial records";
  std::set<std::string> recorded;
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT request_id FROM invocations", -1, &s, nullptr) == SQLITE_OK) {
    while (sqlite3_step(s) == SQLITE_ROW)
      recorded.insert(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)));
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  for (const auto& id : answered) EXPECT_TRUE(recorded.count(id)) << "answered but not in the ledger: " << id;
  if (rows) *rows = static_cast<int64_t>(recorded.size());
  return true;
}

}  // namespace forklet::testing
