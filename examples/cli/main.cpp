// engram: the command-line tool. Poke at a memory from a shell, import and export it.
// Exit codes: 0 ok, 1 not found, 2 usage or validation error (message on stderr), 3 storage, provider or other failure.
#include "../common/app_memory.hpp"
#include "../common/errors.hpp"
#include "../common/exports.hpp"
#include "../common/graph_json.hpp"
#include "../common/purge.hpp"
#include "../common/request.hpp"
#include "../common/service.hpp"

#include <engram/engram.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <tuple>  // std::tie
#include <unistd.h>
#include <vector>

namespace {

using nlohmann::json;

struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

constexpr const char* help_text = R"(usage: engram [--data DIR] [--output text|json] COMMAND ...

commands:
  add TEXT|--file F|-  --user-id U [--agent-id A] [--run-id R] [--metadata JSON] [--no-infer]
                [--messages] [--expires YYYY-MM-DD] [--timestamp TIME] [--procedural] [--immutable]
  search QUERY  SCOPE [--filters JSON] [--limit N] [--threshold T]
                [--mode semantic|keyword|hybrid] [--weights JSON] [--explain] [--show-expired]
                [--as-of TIME | --include-invalid]
  list          [SCOPE] [--filters JSON] [--limit N] [--show-expired]   (no scope: every scope)
                [--as-of TIME | --include-invalid]
  get ID
  update ID [TEXT] [--metadata JSON] [--expires YYYY-MM-DD | --clear-expiry]
  delete ID  |  delete --all SCOPE [--dry-run]   (the history keeps their text)
  purge SCOPE [--dry-run]                    (erases the scope's memories and their history for good)
  history ID
  entities SCOPE [--json]                     (the entities and relations its memories name; --entities on)
  import FILE.jsonl                          (as written by export; all or nothing)
  import --from mem0 FILE [--on-error abort|skip]   (Mem0's get_all JSON or JSON Lines, re-embedded)
  export [SCOPE] [--no-vectors] > FILE.jsonl    (engram's own: memories, vectors, history)
  export --format mem0 [SCOPE] > FILE.json   (Mem0's export shape, as engram-server's exports; import --from mem0 reads it)
  reset --force
  stats

SCOPE is any of --user-id U, --agent-id A, --run-id R, --app-id APP, and within a project --org-id O
--project-id P (both or neither; neither: the default project, engram/engram, as engram-server's). A project
alone lists or exports every scope of that project.
The extractor decides what to remember (with --extractor llm: a chat model), as Mem0's infer does by
default; --no-infer stores each message as given (--infer is accepted and changes nothing). --messages reads TEXT as a JSON list of {"role", "content"} messages.
--mode picks the ranking (default hybrid: cosine and BM25 fused); --weights sets the fusion weights and the
optional terms, e.g. '{"keyword": 0.7, "recency": 0.2, "importance": 0.3}'; --explain shows each score's parts.
Memories past their --expires day are hidden from search and list unless --show-expired.
--timestamp says when the conversation happened (ISO-8601, or Unix seconds): the memories' created_at.
--as-of TIME (ISO-8601 date or time, or Unix seconds) searches or lists the memories that held then: with
--on-contradiction supersede a contradicted memory is kept, closed, and found as of a time before it closed;
--include-invalid shows every version, closed ones too.
--procedural (Mem0's memory_type procedural_memory; needs --agent-id and --extractor llm) summarises an
agent's run, given as --messages, into one memory. --immutable: the memories this add creates are never
changed or deleted by reconciliation, and update refuses them (delete still removes them).
The data directory is --data, else $ENGRAM_DIR, else ~/.engram. It remembers its embedder: open it again
with the same provider settings.
exit codes: 0 ok, 1 not found, 2 usage or validation error, 3 storage, provider or other failure

)";

struct args {
  engram_app::provider_settings providers = engram_app::provider_settings::from_env();
  std::string data;
  std::string output = "text";
  std::string command;
  std::vector<std::string> positional;
  std::map<std::string, std::string> flags;  // --flag value
  std::vector<std::string> switches;         // --flag
  bool has(const std::string& s) const { return std::find(switches.begin(), switches.end(), s) != switches.end(); }
  std::string flag(const std::string& f) const {
    auto it = flags.find(f);
    return it == flags.end() ? std::string() : it->second;
  }
};

args parse(int argc, char** argv) {
  static const std::vector<std::string> valued = {"--data",  "--output",    "--user-id",   "--agent-id",
                                                  "--run-id", "--app-id",   "--org-id",    "--project-id",
                                                  "--metadata", "--limit",  "--threshold",
                                                  "--file",  "--filters",   "--mode",      "--expires", "--weights",
                                                  "--timestamp", "--from", "--on-error", "--as-of", "--format"};
  static const std::vector<std::string> bare = {"--infer", "--no-infer",   "--all",     "--dry-run",      "--force",
                                                "--no-vectors", "--explain", "--show-expired", "--clear-expiry",
                                                "--messages", "--procedural", "--immutable", "--include-invalid",
                                                "--json"};
  args a;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    if (s == "--help" || s == "-h") {
      std::cout << help_text << engram_app::provider_help;
      std::exit(0);
    }
    if (engram_app::provider_settings::is_flag(s)) {
      if (i + 1 >= argc) throw usage_error(s + " needs a value");
      a.providers.set(s, argv[++i]);
    } else if (std::find(valued.begin(), valued.end(), s) != valued.end()) {
      if (i + 1 >= argc) throw usage_error(s + " needs a value");
      a.flags[s] = argv[++i];
    } else if (std::find(bare.begin(), bare.end(), s) != bare.end()) {
      a.switches.push_back(s);
    } else if (s.size() > 2 && s.rfind("--", 0) == 0) {
      throw usage_error("unknown option '" + s + "'");
    } else if (a.command.empty()) {
      a.command = s;
    } else {
      a.positional.push_back(s);
    }
  }
  if (a.command.empty()) throw usage_error("a command is required");
  a.data = engram_app::data_directory(a.flag("--data"));
  if (a.flags.count("--output")) a.output = a.flag("--output");
  if (a.has("--json")) {
    if (a.flags.count("--output") && a.output != "json") throw usage_error("--json contradicts --output " + a.output);
    a.output = "json";
  }
  if (a.output != "text" && a.output != "json") throw usage_error("--output must be text or json");
  if (a.flag("--org-id").empty() != a.flag("--project-id").empty())
    throw usage_error("--org-id and --project-id name a project together: give both or neither");
  a.providers.check(engram_app::http_available);
  return a;
}

/// The scope the flags name: --user-id, --agent-id, --run-id, --app-id, and the project of --org-id and
/// --project-id (its tenant; the default project's is empty, as engram-server keeps it).
engram::scope scope_of(const args& a) {
  engram::scope s{a.flag("--user-id"), a.flag("--agent-id"), a.flag("--run-id")};
  if (const auto app = a.flag("--app-id"); !app.empty()) engram::set_scope_key<engram::platform_scope_keys>(s, "app_id", app);
  s.tenant = engram_app::principal{"", "", true, a.flag("--org-id"), a.flag("--project-id")}.tenant();
  return s;
}

/// True when the flags name a project (--org-id and --project-id).
bool names_project(const args& a) { return !a.flag("--project-id").empty(); }

/// True when a record is among those the flags select: of the scope they name, or with no scope named, every
/// record (of the project named, if any).
bool selected(const args& a, const engram::scope& s, const engram::record& r) {
  if (!s.empty()) return s.selects(r.scope());
  return !names_project(a) || r.tenant == s.tenant;
}

std::size_t number(const args& a, const std::string& f, std::size_t fallback) {
  const auto v = a.flag(f);
  if (v.empty()) return fallback;
  std::size_t pos = 0;
  unsigned long n = 0;
  try {
    n = std::stoul(v, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  if (pos != v.size() || v[0] == '-') throw usage_error(f + " expects a whole number, got '" + v + "'");
  return n;
}

// Every JSON argument goes through engram::parse_json: nesting past engram::max_json_depth, invalid UTF-8 or
// a number out of range is a validation error (exit 2), never a deep recursion.
engram::filter_expr filters_of(const args& a) {
  const auto f = a.flag("--filters");
  return f.empty() ? engram::filter_expr{} : engram::parse_filter(engram::parse_json(f, "--filters"));
}

json metadata_of(const args& a) {
  const auto m = a.flag("--metadata");
  if (m.empty()) return json::object();
  return engram::parse_json(m, "--metadata");
}

/// A time flag (--timestamp, --as-of): an ISO-8601 date or time, or Unix seconds, read as the server reads
/// its time fields. @throws engram::validation_error naming the flag for anything else.
engram::timestamp time_flag(const std::string& flag, const std::string& value) {
  try {
    if (auto ts = engram_app::detail::time_field(json{{"time", value}}, "time")) return *ts;
  } catch (const engram::validation_error&) {
  }
  throw engram::validation_error(flag + " needs an ISO-8601 date or time (2024-06-01, 2024-06-01T12:00:00Z) or Unix "
                                 "seconds (1970 to 9999), got '" + engram::printable(value) + "'");
}

/// --as-of TIME and --include-invalid into a search's or a listing's options.
template <class Options>
void validity_of(const args& a, Options& o) {
  std::optional<engram::timestamp> as_of;
  if (a.flags.count("--as-of")) as_of = time_flag("--as-of", a.flag("--as-of"));
  engram_app::detail::set_validity(o, as_of, a.has("--include-invalid"), "--as-of with --include-invalid");
}

/// --expires YYYY-MM-DD for add (validated by the memory); nullopt when absent.
std::optional<std::string> expires_of(const args& a) {
  if (!a.flags.count("--expires")) return std::nullopt;
  if (a.flag("--expires").empty()) throw usage_error("--expires needs a date, YYYY-MM-DD");
  return a.flag("--expires");
}

/// TEXT as a JSON list of {"role", "content", "name"?} messages (add --messages).
std::vector<engram::message> messages_of(const std::string& text) {
  const json j = engram::parse_json(text, "--messages");
  if (!j.is_array()) throw engram::validation_error("--messages: expected a JSON list of {\"role\", \"content\"} messages");
  std::vector<engram::message> out;
  for (std::size_t i = 0; i < j.size(); ++i) {
    try {
      out.push_back(j[i].get<engram::message>());
    } catch (const engram::validation_error& e) {
      throw engram::validation_error("--messages: message " + std::to_string(i) + ": " + e.what());
    }
  }
  return out;
}

std::string one_positional(const args& a, const char* what) {
  if (a.positional.size() != 1) throw usage_error(a.command + " takes exactly one " + what);
  return a.positional[0];
}

std::string read_all(std::istream& in) {
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Prints rows as aligned columns. Every cell is shown through engram::printable: a memory holding terminal
/// escape sequences (`\x1b]0;...\x07`, `\x1b[2J`) or bytes that are not UTF-8 is printed escaped, never raw.
void print_table(std::vector<std::vector<std::string>> rows) {
  for (auto& r : rows)
    for (auto& cell : r) cell = engram::printable(cell);
  std::vector<std::size_t> width;
  for (const auto& r : rows)
    for (std::size_t i = 0; i < r.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], r[i].size());
    }
  for (const auto& r : rows) {
    for (std::size_t i = 0; i < r.size(); ++i)
      std::cout << (i + 1 == r.size() ? r[i] : r[i] + std::string(width[i] - r[i].size() + 2, ' '));
    std::cout << '\n';
  }
}

std::string score_text(float s) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(3) << s;
  return o.str();
}

std::string scope_text(const engram::record& r) {
  std::string s = r.user_id.empty() ? "" : "user:" + r.user_id;
  if (!r.agent_id.empty()) s += (s.empty() ? "" : " ") + std::string("agent:") + r.agent_id;
  if (!r.run_id.empty()) s += (s.empty() ? "" : " ") + std::string("run:") + r.run_id;
  const auto scope = r.scope();
  if (const auto app = scope.key("app_id"); !app.empty()) s += (s.empty() ? "" : " ") + std::string("app:") + std::string(app);
  if (!r.tenant.empty())
    s += (s.empty() ? "" : " ") + std::string("project:") + std::string(scope.key("org_id")) + "/" +
         std::string(scope.key("project_id"));
  return s;
}

void print_records(const args& a, const std::vector<engram::record>& recs) {
  if (a.output == "json") {
    std::cout << engram::results(recs).dump(2) << '\n';
    return;
  }
  std::vector<std::vector<std::string>> rows{{"ID", "SCOPE", "UPDATED", "MEMORY"}};
  for (const auto& r : recs) rows.push_back({r.id, scope_text(r), engram::format_iso8601(r.updated_at).substr(0, 19), r.memory});
  print_table(rows);
}

/// A progress bar on stderr, drawn only when stderr is a terminal: `importing [####    ] 40%` and a suffix.
class progress_bar {
 public:
  explicit progress_bar(std::size_t total) : total_(total), tty_(isatty(STDERR_FILENO) != 0) {}
  progress_bar(const progress_bar&) = delete;
  progress_bar& operator=(const progress_bar&) = delete;
  ~progress_bar() {
    if (tty_ && total_) std::cerr << '\n';
  }
  void show(std::size_t done, const std::string& suffix = {}) const {
    if (!tty_ || !total_) return;
    const int width = 40, filled = int(double(done) / double(total_) * width);
    std::cerr << "\rimporting [" << std::string(std::size_t(filled), '#') << std::string(std::size_t(width - filled), ' ')
              << "] " << (done * 100 / total_) << '%' << suffix << std::flush;
  }

 private:
  std::size_t total_;
  bool tty_;
};

/// A read buffer over a file that draws a progress bar while it is consumed.
class progress_buf : public std::streambuf {
 public:
  progress_buf(std::FILE* f, std::size_t total) : f_(f), bar_(total) {}

 protected:
  int_type underflow() override {
    const std::size_t n = std::fread(buf_, 1, sizeof buf_, f_);
    if (n == 0) return traits_type::eof();
    done_ += n;
    bar_.show(done_);
    setg(buf_, buf_, buf_ + n);
    return traits_type::to_int_type(buf_[0]);
  }

 private:
  std::FILE* f_;
  progress_bar bar_;
  std::size_t done_ = 0;
  char buf_[1 << 16];
};

/// import --from mem0 FILE: Mem0's memories (engram/tools/mem0_import.hpp), embedded with the configured
/// embedder under a progress bar, then stored in one write batch. Bad items are reported on stderr with their
/// line; --on-error abort (the default) then imports nothing and exits 2, --on-error skip imports the others.
/// An id the store already holds is left as it is (importing the same export again adds nothing twice).
int import_mem0(const args& a) {
  const auto path = one_positional(a, "FILE (Mem0's memories: JSON or JSON Lines)");
  const std::string on_error = a.flags.count("--on-error") ? a.flag("--on-error") : "abort";
  if (on_error != "abort" && on_error != "skip")
    throw usage_error("--on-error must be abort or skip, got '" + on_error + "'");
  std::ifstream file(path, std::ios::binary);
  if (!file) throw engram::validation_error("cannot read '" + path + "'");
  auto parsed = engram::parse_mem0(read_all(file));
  for (const auto& b : parsed.bad)
    std::cerr << "engram: " << engram::printable(path) << ": " << b.where(parsed.json_lines) << ": "
              << engram::printable(b.reason) << (on_error == "skip" ? " (skipped)" : "") << '\n';
  if (!parsed.bad.empty() && on_error == "abort") {
    std::cerr << "engram: import aborted: " << parsed.bad.size() << " of " << parsed.items
              << " memories are bad; nothing was imported (--on-error skip imports the others)\n";
    return 2;
  }
  std::size_t present = 0;
  {
    engram::file_store store(a.data);  // holds the directory's lock until the batch is written
    std::erase_if(parsed.records, [&](const engram::record& r) { return store.get(r.id) ? (++present, true) : false; });
    auto embedder = engram_app::make_embedder(a.providers);
    store.bind({engram::detail::embedder_name(embedder), embedder.dimension(),
                engram::detail::describe_scope_keys<engram_app::app_memory::scope_keys>()});
    progress_bar bar(parsed.records.size());
    constexpr std::size_t chunk = 64;
    for (std::size_t i = 0; i < parsed.records.size(); i += chunk) {
      std::vector<std::string> texts;
      for (std::size_t j = i; j < std::min(i + chunk, parsed.records.size()); ++j) texts.push_back(parsed.records[j].memory);
      auto vectors = engram::detail::embed_checked(embedder, texts);
      for (std::size_t j = 0; j < vectors.size(); ++j) parsed.records[i + j].embedding = std::move(vectors[j]);
      bar.show(i + texts.size(), " (" + std::to_string(i + texts.size()) + "/" + std::to_string(parsed.records.size()) + ")");
    }
    const auto batch = engram::mem0_write_batch(parsed.records);
    if (!batch.empty()) store.apply(batch);
  }
  (void)engram_app::open_memory(a.data, a.providers);  // indexes what was imported, so a problem shows now
  if (a.output == "json") {
    json bad = json::array();
    for (const auto& b : parsed.bad) bad.push_back({{"line", b.line}, {"index", b.index}, {"reason", b.reason}});
    std::cout << json{{"imported", parsed.records.size()}, {"skipped", parsed.bad.size() + present},
                      {"already_present", present}, {"bad", bad}}.dump() << '\n';
  } else {
    std::cout << "imported " << parsed.records.size() << " memories from Mem0, skipped " << parsed.bad.size() + present
              << " (" << parsed.bad.size() << " bad, " << present << " already present)\n";
  }
  return 0;
}

int import_file(const args& a) {
  if (a.flags.count("--from")) {
    if (a.flag("--from") != "mem0") throw usage_error("--from names where the file comes from: mem0, got '" + a.flag("--from") + "'");
    return import_mem0(a);
  }
  if (a.flags.count("--on-error")) throw usage_error("--on-error goes with --from mem0");
  const auto path = one_positional(a, "FILE.jsonl");
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw engram::validation_error("cannot read '" + path + "'");
  std::fseek(f, 0, SEEK_END);
  const auto size = std::size_t(std::max(0L, std::ftell(f)));
  std::fseek(f, 0, SEEK_SET);
  engram::jsonl_counts counts;
  {
    // Straight into the store (one atomic batch); the next open indexes what was imported, embedding the
    // memories that came without vectors.
    engram::file_store store(a.data);
    progress_buf buf(f, size);
    std::istream in(&buf);
    try {
      counts = engram::import_jsonl(store, in);
    } catch (...) {
      std::fclose(f);
      throw;
    }
  }
  std::fclose(f);
  (void)engram_app::open_memory(a.data, a.providers);  // index now, so a failure to embed shows up here, not later
  if (a.output == "json")
    std::cout << json{{"memories", counts.memories}, {"events", counts.events}}.dump() << '\n';
  else
    std::cout << "imported " << counts.memories << " memories and " << counts.events << " history events\n";
  return 0;
}

/// export --format mem0: the current version of every memory of the scope (or of the store), expired ones too,
/// oldest first, in the document engram-server's exports answer (exports.hpp), which import --from mem0 reads
/// back. Versions closed by a contradiction are left out: Mem0 has none, and an import would make them current.
int export_mem0(const args& a, const engram::file_store& store) {
  if (a.has("--no-vectors")) throw usage_error("--no-vectors goes with --format jsonl: a Mem0 export holds no vectors");
  engram_app::export_header h;
  h.scope = scope_of(a);
  if (!h.scope.empty()) engram::validate_scope(h.scope, "export");
  h.all_projects = h.scope.empty() && !names_project(a);
  h.created = engram::utc_now();
  std::vector<engram::record> records;
  store.for_each([&](const engram::record& r) {
    if (selected(a, h.scope, r) && !engram::closed_at(r, h.created)) records.push_back(r);
  });
  std::sort(records.begin(), records.end(), [](const engram::record& x, const engram::record& y) {
    return std::tie(x.created_at, x.id) < std::tie(y.created_at, y.id);
  });
  json memories = json::array();
  for (const auto& r : records) memories.push_back(json(r));
  std::cout << engram_app::export_document(h, std::move(memories)).dump(2, ' ', false, json::error_handler_t::replace)
            << '\n';
  std::cerr << "exported " << records.size() << " memories in Mem0's export shape\n";
  return 0;
}

int export_file(const args& a) {
  if (!a.positional.empty()) throw usage_error("export writes to standard output: export [SCOPE] > FILE.jsonl");
  const std::string format = a.flags.count("--format") ? a.flag("--format") : "jsonl";
  if (format != "jsonl" && format != "mem0")
    throw usage_error("--format must be jsonl (engram's own, the default) or mem0 (Mem0's export shape), got '" +
                      format + "'");
  const engram::file_store store(a.data, engram::file_store_options{.read_only = true});
  if (format == "mem0") return export_mem0(a, store);
  engram::export_options o;
  o.with_vectors = !a.has("--no-vectors");
  if (const auto s = scope_of(a); !s.empty()) o.only = s;
  else if (names_project(a))
    throw usage_error("export --format jsonl of a project needs a scope too (--user-id, --agent-id, --run-id or "
                      "--app-id); --format mem0 exports a whole project");
  const auto counts = engram::export_jsonl(store, std::cout, o);
  std::cerr << "exported " << counts.memories << " memories and " << counts.events << " history events\n";
  return 0;
}

int run(const args& a) {
  const auto& cmd = a.command;
  if (a.flags.count("--format") && cmd != "export") throw usage_error("--format goes with export");
  if (cmd == "import") return import_file(a);
  if (cmd == "export") return export_file(a);
  // Commands that only read open the directory read-only: no lock, so they work beside a server or on a
  // read-only mount.
  const bool reads_only = cmd == "list" || cmd == "search" || cmd == "stats" || cmd == "get" || cmd == "history";
  auto mem = engram_app::open_memory(a.data, a.providers, reads_only);

  if (cmd == "add") {
    std::string text;
    if (!a.flag("--file").empty()) {
      std::ifstream in(a.flag("--file"));
      if (!in) throw engram::validation_error("cannot read --file '" + a.flag("--file") + "'");
      text = read_all(in);
    } else if (a.positional.size() == 1 && a.positional[0] == "-") {
      text = read_all(std::cin);
    } else {
      text = one_positional(a, "TEXT (or --file F, or - for standard input)");
    }
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    if (a.has("--infer") && a.has("--no-infer")) throw usage_error("--infer and --no-infer contradict each other");
    engram::add_options o{.metadata = metadata_of(a), .infer = !a.has("--no-infer"), .expiration_date = expires_of(a)};
    if (a.flags.count("--timestamp")) o.timestamp = time_flag("--timestamp", a.flag("--timestamp"));
    o.extraction.procedural = a.has("--procedural");
    o.immutable = a.has("--immutable");
    const auto messages = a.has("--messages") ? messages_of(text) : std::vector<engram::message>{{"user", text, {}}};
    engram_app::require_text(messages, a.has("--messages") ? "--messages" : "the text to add");
    const auto r = mem->add(messages, scope_of(a), o);
    if (a.output == "json") {
      std::cout << json(r).dump(2) << '\n';
    } else {
      std::vector<std::vector<std::string>> rows{{"EVENT", "ID", "MEMORY"}};
      for (const auto& e : r.results) rows.push_back({std::string(engram::to_string(e.event)), e.id, e.memory});
      print_table(rows);
    }
    return 0;
  }
  if (cmd == "search") {
    const auto q = one_positional(a, "QUERY");
    engram::search_options o;
    o.limit = number(a, "--limit", o.limit);
    if (!a.flag("--threshold").empty()) {
      try {
        o.threshold = std::stof(a.flag("--threshold"));
      } catch (const std::exception&) {
        throw usage_error("--threshold expects a number, got '" + a.flag("--threshold") + "'");
      }
    }
    o.filter = filters_of(a);
    if (a.flags.count("--mode")) o.mode = engram_app::parse_search_mode(a.flag("--mode"), "--mode");
    if (a.flags.count("--weights")) {
      o.weights = engram_app::parse_ranking_weights(engram::parse_json(a.flag("--weights"), "--weights"));
      engram_app::check_weights_for(*mem, o.weights);
    }
    o.explain = a.has("--explain");
    o.show_expired = a.has("--show-expired");
    validity_of(a, o);
    const auto hits = mem->search(q, scope_of(a), o);  // no scope: the scopes the filter names
    if (a.output == "json") {
      std::cout << engram::results(hits).dump(2) << '\n';
    } else if (o.explain) {
      std::vector<std::vector<std::string>> rows{
          {"SCORE", "SEMANTIC", "KEYWORD", "RECENCY", "IMPORTANCE", "ACCESS", "ENTITY", "COSINE", "BM25", "ID", "MEMORY"}};
      for (const auto& h : hits) {
        const auto d = h.details.value_or(engram::score_details{});
        rows.push_back({score_text(h.score), score_text(d.semantic), score_text(d.keyword), score_text(d.recency),
                        score_text(d.importance), score_text(d.access), score_text(d.entity), score_text(d.cosine),
                        score_text(d.bm25),
                        h.record.id, h.record.memory});
      }
      print_table(rows);
    } else {
      std::vector<std::vector<std::string>> rows{{"SCORE", "ID", "SCOPE", "MEMORY"}};
      for (const auto& h : hits) rows.push_back({score_text(h.score), h.record.id, scope_text(h.record), h.record.memory});
      print_table(rows);
    }
    return 0;
  }
  if (cmd == "list") {
    if (!a.positional.empty()) throw usage_error("list takes no positional argument");
    engram::get_all_options o;
    o.limit = number(a, "--limit", 0);
    o.filter = filters_of(a);
    o.show_expired = a.has("--show-expired");
    validity_of(a, o);
    const auto s = scope_of(a);
    const bool every_scope = s.empty() && !engram::filter_names_scope(o.filter);
    if (every_scope && names_project(a)) {  // every scope of one project
      const auto limit = o.limit;
      o.limit = 0;
      auto all = mem->get_all(engram::all_scopes, o);
      std::erase_if(all, [&](const engram::record& r) { return r.tenant != s.tenant; });
      if (limit != 0 && all.size() > limit) all.resize(limit);
      print_records(a, all);
      return 0;
    }
    print_records(a, every_scope ? mem->get_all(engram::all_scopes, o) : mem->get_all(s, o));
    return 0;
  }
  if (cmd == "get") {
    const auto id = one_positional(a, "ID");
    const auto r = mem->get(id);
    if (!r) throw engram::not_found("no memory with id '" + id + "'");
    if (a.output == "json")
      std::cout << json(*r).dump(2) << '\n';
    else
      print_records(a, {*r});
    return 0;
  }
  if (cmd == "update") {
    if (a.positional.empty() || a.positional.size() > 2) throw usage_error("update takes ID [TEXT]");
    const auto& id = a.positional[0];
    const auto current = mem->get(id);
    if (!current) throw engram::not_found("no memory with id '" + id + "'");
    const std::string text = a.positional.size() == 2 ? a.positional[1] : current->memory;
    engram::update_options o;
    if (a.flags.count("--metadata")) o.metadata = metadata_of(a);
    if (a.has("--clear-expiry")) {
      if (a.flags.count("--expires")) throw usage_error("give --expires or --clear-expiry, not both");
      o.expiration_date = "";
    } else if (a.flags.count("--expires")) {
      o.expiration_date = a.flag("--expires");  // "" clears too
    }
    if (a.positional.size() == 1 && !o.metadata && !o.expiration_date)
      throw usage_error("update needs a new TEXT, --metadata, --expires or --clear-expiry");
    const auto r = mem->update(id, text, o);
    if (a.output == "json")
      std::cout << json(r).dump(2) << '\n';
    else
      print_records(a, {r});
    return 0;
  }
  if (cmd == "delete") {
    if (a.has("--all")) {
      const auto s = scope_of(a);
      engram::validate_scope(s, "delete --all");
      if (a.has("--dry-run")) {
        // what delete_all removes: expired memories and closed versions too
        const auto n = mem->get_all(s, {.limit = 0, .show_expired = true, .include_invalid = true}).size();
        if (a.output == "json")
          std::cout << json{{"would_delete", n}}.dump() << '\n';
        else
          std::cout << "would delete " << n << " memories (dry run)\n";
        return 0;
      }
      const auto n = mem->delete_all(s);
      if (a.output == "json")
        std::cout << json{{"deleted", n}}.dump() << '\n';
      else
        std::cout << "deleted " << n << " memories\n";
      return 0;
    }
    const auto id = one_positional(a, "ID (or --all SCOPE)");
    mem->delete_memory(id);
    if (a.output == "json")
      std::cout << json{{"deleted", id}}.dump() << '\n';
    else
      std::cout << "deleted " << id << '\n';
    return 0;
  }
  if (cmd == "purge") {
    if (!a.positional.empty()) throw usage_error("purge takes no positional argument: purge SCOPE [--dry-run]");
    const auto s = scope_of(a);
    if (s.empty())
      throw usage_error("purge needs the scope to erase: any of --user-id U, --agent-id A, --run-id R, --app-id APP");
    if (a.has("--dry-run")) {
      std::size_t memories = 0, events = 0;
      for (const auto& r : mem->get_all(s, {.limit = 0, .show_expired = true, .include_invalid = true})) {
        ++memories;
        events += mem->history(r.id).size();
      }
      if (a.output == "json")
        std::cout << json{{"would_purge", memories}, {"history_events", events}}.dump() << '\n';
      else
        std::cout << "would purge " << memories << " memories and their " << events
                  << " history events (dry run; the history of this scope's memories deleted earlier goes too, "
                     "not counted here)\n";
      return 0;
    }
    const auto out = engram_app::purge_scope(*mem, s, engram_app::offline_purge_files(a.data));
    if (a.output == "json")
      std::cout << out.dump() << '\n';
    else
      std::cout << "purged " << out["deleted"] << " memories with their history (" << out["events"] << " events, "
                << out["deliveries"] << " webhook deliveries, " << out["exports"] << " exports scrubbed)\n";
    return 0;
  }
  if (cmd == "entities") {
    if (!a.positional.empty()) throw usage_error("entities takes no positional argument: entities SCOPE [--json]");
    const auto s = scope_of(a);
    if (s.empty()) throw usage_error("entities needs a scope: --user-id U, --agent-id A, --run-id R or --app-id APP");
    if (!mem->config().entities)
      throw engram::validation_error("this memory keeps no entity graph: run with --entities on (or ENGRAM_ENTITIES=on)");
    const auto g = mem->entity_graph_of(s);
    if (a.output == "json") {
      json out{{"entities", json::array()}, {"relations", json::array()}};
      for (const auto& e : g.entities) out["entities"].push_back(engram_app::graph_detail::entity_json(e));
      for (const auto& r : g.relations) out["relations"].push_back(engram_app::graph_detail::relation_json(r));
      std::cout << out.dump(2) << '\n';
      return 0;
    }
    std::vector<std::vector<std::string>> rows{{"ENTITY", "TYPE", "MEMORIES", "ALIASES"}};
    for (const auto& e : g.entities) {
      std::string aliases;
      for (const auto& al : e.aliases) aliases += (aliases.empty() ? "" : ", ") + al;
      rows.push_back({e.name, std::string(engram::to_string(e.type)), std::to_string(e.memories), aliases});
    }
    print_table(rows);
    if (!g.relations.empty()) {
      std::cout << '\n';
      std::vector<std::vector<std::string>> rel{{"SOURCE", "RELATIONSHIP", "TARGET", "MEMORIES"}};
      for (const auto& r : g.relations) rel.push_back({r.source, r.relationship, r.target, std::to_string(r.memories)});
      print_table(rel);
    }
    return 0;
  }
  if (cmd == "history") {
    const auto id = one_positional(a, "ID");
    const auto events = mem->history(id);
    if (events.empty()) throw engram::not_found("no history for id '" + id + "'");
    if (a.output == "json") {
      std::cout << json(events).dump(2) << '\n';
    } else {
      std::vector<std::vector<std::string>> rows{{"EVENT", "WHEN", "OLD", "NEW"}};
      for (const auto& e : events)
        rows.push_back({std::string(engram::to_string(e.event)),
                        engram::format_iso8601(e.updated_at.value_or(e.created_at)).substr(0, 19),
                        e.old_memory.value_or(""), e.new_memory.value_or("")});
      print_table(rows);
    }
    return 0;
  }
  if (cmd == "reset") {
    if (!a.has("--force")) throw usage_error("reset erases every memory of every scope: add --force to confirm");
    mem->reset();
    std::cout << (a.output == "json" ? json{{"reset", true}}.dump() : std::string("all memories erased")) << '\n';
    return 0;
  }
  if (cmd == "stats") {
    std::map<std::string, std::size_t> per_scope;
    const auto all = mem->get_all(engram::all_scopes, {.limit = 0});
    for (const auto& r : all) ++per_scope[scope_text(r)];
    std::uintmax_t bytes = 0;  // the store's size on disk
    for (const auto& e : std::filesystem::recursive_directory_iterator(a.data))
      if (e.is_regular_file()) bytes += e.file_size();
    const json j{{"memories", all.size()},
                 {"scopes", per_scope},
                 {"store_bytes", bytes},
                 {"embedder", mem->embedder().name()},
                 {"dimension", mem->embedder().dimension()},
                 {"extractor", a.providers.extractor == "llm" ? "llm:" + a.providers.llm_model : a.providers.extractor},
                 {"on_contradiction", std::string(engram::to_string(mem->config().on_contradiction))},
                 {"entities", mem->config().entities},
                 {"data", a.data}};
    if (a.output == "json") {
      std::cout << j.dump(2) << '\n';
    } else {
      std::cout << "memories   " << all.size() << "\nembedder   " << mem->embedder().name() << " (dimension "
                << mem->embedder().dimension() << ")\nextractor  " << j["extractor"].get<std::string>()
                << "\non contradiction  " << j["on_contradiction"].get<std::string>()
                << (mem->config().entities ? "\nentities   indexed" : "") << "\ndata       " << a.data << " (" << bytes
                << " bytes)\n\n";
      std::vector<std::vector<std::string>> rows{{"SCOPE", "MEMORIES"}};
      for (const auto& [s, n] : per_scope) rows.push_back({s, std::to_string(n)});
      print_table(rows);
    }
    return 0;
  }
  throw usage_error("unknown command '" + cmd + "'");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const usage_error& e) {
    std::cerr << "engram: " << e.what() << "\n\n" << help_text;
    return 2;
  } catch (const engram_app::settings_error& e) {
    std::cerr << "engram: " << e.what() << "\n(`engram --help` lists the provider flags)\n";
    return 2;
  } catch (const engram::provider_error& e) {
    std::cerr << "engram: the provider failed: " << e.what()
              << (e.status() == 0 ? " (no server answered: check --base-url)" : "") << '\n';
    return engram_app::exit_code(engram_app::error_kind::provider);
  } catch (const nlohmann::json::exception& e) {
    std::cerr << "engram: malformed JSON: " << e.what() << '\n';
    return 2;
  } catch (const std::exception& e) {
    const auto kind = engram_app::current_error_kind();
    std::cerr << "engram: " << e.what()
              << (kind == engram_app::error_kind::invalid_input ? engram_app::embedder_mismatch_hint(e.what()) : "")
              << '\n';
    return engram_app::exit_code(kind);
  }
}
