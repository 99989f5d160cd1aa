// libFuzzer target for the apps' request path (built and run by scripts/fuzz.sh, not by CMake): the first byte
// picks a Mem0 route, the rest is its JSON body (or a query string, or a path id), handed to the request layer
// (examples/common/request.hpp) and the service behind engram-server and /mcp, over an in-memory store.
// Any input must be answered or refused with a client error (validation, not found, forbidden): an error the
// apps would answer with a 500 traps. Every answer and error body must serialise as JSON and read back.
#include "../../examples/common/mcp_handler.hpp"
#include "../../examples/common/request.hpp"
#include "../../examples/common/service.hpp"

#include <engram/engram.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using engram_app::json;

engram::memory& shared_memory() {
  static engram::memory mem;
  static const bool seeded = [] {
    (void)mem.add("I like green tea", engram::scope{"alice", "", ""}, {.metadata = {{"topic", "drink"}, {"n", 3}}});
    (void)mem.add("Bob flies kites", engram::scope{"bob", "helper", "run-1"});
    return true;
  }();
  (void)seeded;
  return mem;
}

/// Query-string pairs from `text`: `k=v&k2=v2`, no percent-decoding (the bytes arrive decoded already).
std::vector<std::pair<std::string, std::string>> pairs_of(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!text.empty()) {
    const auto amp = text.find('&');
    const auto part = text.substr(0, amp);
    const auto eq = part.find('=');
    out.emplace_back(std::string(part.substr(0, eq)), eq == std::string_view::npos ? "" : std::string(part.substr(eq + 1)));
    if (amp == std::string_view::npos) break;
    text.remove_prefix(amp + 1);
  }
  return out;
}

json handle(std::uint8_t route, std::string_view rest, engram_app::service<engram::memory>& service,
            engram_app::mcp::server<engram::memory>& mcp, const engram_app::principal& who) {
  switch (route % 10) {
    case 0: return service.add(engram_app::parse_object_body(rest), who);
    case 1: return service.search(engram_app::parse_object_body(rest), who);
    case 2: return service.list(engram_app::parse_object_body(rest), who);
    case 3: return service.list_page(engram_app::parse_object_body(rest), who);
    case 4: return service.list(engram_app::query_json(pairs_of(rest)), who);
    case 5: return service.remove_all(engram_app::query_json(pairs_of(rest)), who);
    case 6: return service.get(engram_app::path_id(rest), who);
    case 7: return service.history(engram_app::path_id(rest), who);
    case 8: return service.update("no-such-id", engram_app::parse_object_body(rest), who);
    default: return mcp.handle_text(std::string(rest), who).value_or(json(nullptr));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static engram_app::service<engram::memory> service(shared_memory());
  static engram_app::mcp::server<engram::memory> mcp(shared_memory());
  // Odd routes run as a key bound to alice (not admin), even ones as the local admin.
  const engram_app::principal who = data[0] & 0x10 ? engram_app::principal{"alice-key", "alice", false}
                                                   : engram_app::principal{};
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    const auto answer = handle(data[0], rest, service, mcp, who);
    (void)json::parse(engram_app::answer_body(answer));
  } catch (const std::exception& e) {
    switch (engram_app::current_error_kind()) {
      case engram_app::error_kind::invalid_input:
      case engram_app::error_kind::not_found:
      case engram_app::error_kind::forbidden:
      case engram_app::error_kind::too_large: break;
      default: __builtin_trap();  // the server would answer 500 (or 502/503 without a provider or a database)
    }
    const auto body = json::parse(engram_app::error_body(e.what()));
    if (!body["detail"].is_string()) __builtin_trap();
  }
  return 0;
}
