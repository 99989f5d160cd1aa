// engram-mcp: engram's memory tools for any Model Context Protocol client, over stdio.
// Reads newline-delimited JSON-RPC 2.0 messages from stdin and answers on stdout (one message per line);
// logs go to stderr. Exits 0 at end of input.
#include "../common/app_memory.hpp"
#include "../common/mcp_handler.hpp"

#include <engram/json_dump.hpp>

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>

namespace {

constexpr const char* help_text = R"(usage: engram-mcp [--data DIR] [--user-id U] [provider flags]

An MCP server (stdio transport) with the tools add_memory, search_memories, list_memories, get_memory,
update_memory, delete_memory and memory_history.

  --data DIR     the data directory (default: $ENGRAM_DIR, else ~/.engram)
  --user-id U    bind every call to user U: a user_id the model passes is replaced by U, and memories of
                 other users cannot be read, changed or deleted

)";

/// The longest message accepted (a longer line is answered with a parse error and skipped).
constexpr std::size_t max_message_bytes = std::size_t(16) << 20;

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "engram-mcp: " << why << "\n" << help_text << engram_app::provider_help;
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  std::signal(SIGPIPE, SIG_IGN);  // a vanished client is a write error, handled below
  std::string data, user_id;
  auto providers = engram_app::provider_settings::from_env();
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(a + " needs a value");
      return argv[++i];
    };
    if (engram_app::provider_settings::is_flag(a)) {
      const auto v = value();
      try {
        providers.set(a, v);
      } catch (const engram_app::settings_error& e) {
        usage(e.what());
      }
    } else if (a == "--data") data = value();
    else if (a == "--user-id") {
      user_id = value();
      if (user_id.empty()) usage("--user-id needs a non-empty value");
    } else if (a == "--help" || a == "-h") {
      std::cout << help_text << engram_app::provider_help;
      return 0;
    } else if (a == "--version") {
      std::cout << "engram-mcp " << engram::version_string << '\n';
      return 0;
    } else {
      usage("unknown option '" + a + "'");
    }
  }
  try {
    providers.check(engram_app::http_available);
  } catch (const engram_app::settings_error& e) {
    usage(e.what());
  }
  data = engram_app::data_directory(data);

  std::unique_ptr<engram_app::app_memory> memory;
  try {
    memory = engram_app::open_memory(data, providers);
  } catch (const std::exception& e) {
    std::cerr << "engram-mcp: cannot open the memory in '" << data << "': " << e.what()
              << engram_app::embedder_mismatch_hint(e.what()) << '\n';
    return 1;
  }
  engram_app::principal who;
  if (!user_id.empty()) who = {"user:" + user_id, user_id, false};
  engram_app::mcp::server<engram_app::app_memory> server(*memory);
  server.set_purge_files(engram_app::offline_purge_files(data));  // delete_entities scrubs what a server left
  std::cerr << "engram-mcp " << engram::version_string << ": data " << data << ", " << engram_app::describe_memory(providers, *memory)
            << (user_id.empty() ? std::string() : ", bound to user '" + user_id + "'") << '\n';

  std::string line;
  while (std::getline(std::cin, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    std::optional<engram_app::json> reply;
    if (line.size() > max_message_bytes)
      reply = engram_app::mcp::error_response(nullptr, engram_app::mcp::rpc_code::parse_error,
                                              "message of " + std::to_string(line.size()) + " bytes; at most " +
                                                  std::to_string(max_message_bytes) + " are accepted");
    else
      reply = server.handle_text(line, who);
    // dump_json escapes control characters, so a reply is always one line; invalid UTF-8 is replaced.
    if (reply) std::cout << engram::dump_json(*reply) << '\n' << std::flush;
    if (!std::cout) {
      std::cerr << "engram-mcp: cannot write to stdout (client gone?), stopping\n";
      return 1;
    }
  }
  return 0;
}
