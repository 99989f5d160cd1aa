#pragma once
// Shared by the tests/postgres tests that stop, start or restart the fixture's cluster (they run alone: their
// names start with "restart", which tests/CMakeLists.txt runs RUN_SERIAL).

#include "support/pg_test_support.hpp"

#include <cstdlib>
#include <string>

#include <unistd.h>

namespace pg_test {

/// Runs `pg_ctl ACTION` ("stop", "start" or "restart", fast mode, waiting until done) on the fixture's cluster
/// (its directory is the conninfo's host; scripts/pg-cluster.sh left the server options in DIR/opts), as the
/// cluster's owner when running as root. `mode` "immediate" stops as a crash would (no checkpoint, no flush).
/// @returns the command's status (0 on success).
inline int pg_ctl(const std::string& action, const std::string& mode = "fast") {
  const auto ci = conninfo();
  const auto dir = ci.substr(5, ci.find(' ') - 5);
  const char* bindir = std::getenv("ENGRAM_PG_BINDIR");
  if (!bindir) return -1;
  const std::string as = ::getuid() == 0 ? "runuser -u $(stat -c %U " + dir + "/data) -- " : "";
  const std::string cmd = as + bindir + "/pg_ctl -D " + dir + "/data -m " + mode + " -w -t 30 " +
                          (action == "stop" ? "" : "-o \"$(cat " + dir + "/opts)\" -l " + dir + "/server.log ") +
                          action + " >/dev/null 2>&1";
  return std::system(cmd.c_str());
}

}  // namespace pg_test
