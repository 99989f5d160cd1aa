#pragma once
// Shared by tests/postgres/*.cpp: the connection string of the throwaway cluster (ctest's fixture engram_pg
// sets ENGRAM_PG_CONNINFO) and a schema per test directory, so tests sharing the cluster never meet.

#include <engram/detail/fnv.hpp>
#include <engram/store/postgres_store.hpp>

#include <libpq-fe.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace pg_test {

inline std::string conninfo() {
  const char* c = std::getenv("ENGRAM_PG_CONNINFO");
  if (!c || !*c)
    throw std::runtime_error(
        "ENGRAM_PG_CONNINFO is not set: run these tests through ctest (which starts a cluster), or start one with "
        "scripts/pg-cluster.sh start DIR and export ENGRAM_PG_CONNINFO=\"$(cat DIR/conninfo)\"");
  return c;
}

/// A schema name unique to `key` (a test's temporary directory).
inline std::string schema_for(const std::string& key) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "t%016llx", static_cast<unsigned long long>(engram::detail::fnv1a64(key)));
  return buf;
}

/// Runs one SQL text on a fresh connection to `database` (a conninfo; the fixture's by default), for tests
/// that reach behind the store's back. @returns the first value of the first row, if any.
inline std::string sql_on(const std::string& database, const std::string& text, const std::string& schema = "") {
  PGconn* c = PQconnectdb(database.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    std::string m = PQerrorMessage(c);
    PQfinish(c);
    throw std::runtime_error("cannot connect: " + m);
  }
  if (!schema.empty()) PQclear(PQexec(c, ("SET search_path TO \"" + schema + "\"").c_str()));
  PGresult* r = PQexec(c, text.c_str());
  const auto st = PQresultStatus(r);
  std::string out;
  if (st == PGRES_TUPLES_OK && PQntuples(r) > 0 && PQnfields(r) > 0) out = PQgetvalue(r, 0, 0);
  std::string err = PQresultErrorMessage(r);
  PQclear(r);
  PQfinish(c);
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) throw std::runtime_error("sql failed: " + err);
  return out;
}

inline std::string sql(const std::string& text, const std::string& schema = "") {
  return sql_on(conninfo(), text, schema);
}

/// The conninfo of database `name` in the fixture's cluster, created if missing (e.g. a second shard).
inline std::string database(const std::string& name) {
  try {
    sql("CREATE DATABASE \"" + name + "\"");
  } catch (const std::runtime_error& e) {
    if (std::string(e.what()).find("already exists") == std::string::npos) throw;
  }
  return conninfo() + " dbname=" + name;  // the last dbname given wins
}

}  // namespace pg_test
