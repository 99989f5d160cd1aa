#pragma once
/// @file examples/common/exports.hpp
/// Memory exports: the Mem0 Platform's `POST /v1/exports/` (create) and `POST /v1/exports/get/` (fetch), and its
/// `POST /v1/summary/`, in engram-server; `engram export --format mem0` writes the same document.
///
/// An export is a snapshot, taken when it is created, of the memories a scope or a filter selects (the filter
/// grammar of the listings: service::list does the selecting): the current version of each, expired ones
/// included, each as the listings answer it (id, memory, scope ids, metadata, categories, created_at,
/// updated_at, valid_from, ...). The document, export_document(), is
/// `{"id", "created_at", "user_id"?, "agent_id"?, "run_id"?, "org_id"?, "project_id"?, "app_id"?, "filters",
/// "schema", "export_instructions", "count", "memories"}`, which `engram import --from mem0` reads back. Mem0's Platform has a model fill the request's
/// JSON schema; engram does not: the schema (an object, or a JSON string of one) and export_instructions are
/// checked, kept and returned with the export, and the memories are the data.
///
/// Keys: an export belongs to the scope it was made for (a bound key's user and project are forced into it, as on
/// every route), and holds only that project's memories. A key reads the exports of the memories it may see
/// (principal::may_see): a key bound to a project only that project's, a key bound to a user only its user's;
/// another's id answers 404, as an unknown one. A server-wide admin (and a server without keys) reads all; an
/// export it made of every project (no scope, no project named) only such a key reads.
///
/// Durability: given a directory, an export is two files, `<id>.json` (the document) and `<id>.meta.json` (id,
/// scope, time, count: what a fetch by filters matches, read at start without the documents), each written to a
/// temporary file, fsynced and renamed (files::replace) before the create is answered. On start the remains of
/// a crash are removed: temporary files, a document without its meta and a meta without its document (an
/// export never answered). One process uses a directory at a time (a lock on DIR/.lock). Without a directory
/// the exports are kept in memory. Retention: at most `max_exports`; past that the oldest are dropped, files too.

#include "errors.hpp"
#include "files.hpp"
#include "request.hpp"
#include "scope_json.hpp"
#include "service.hpp"

#include <engram/engram.hpp>
#include <engram/json_dump.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

namespace engram_app {

/// The most memories one export holds by default (engram-server --max-export-memories), and the highest such
/// limit: an export is answered as one JSON body.
inline constexpr std::size_t default_max_export_memories = 10'000;
inline constexpr std::size_t most_export_memories = 100'000;

/// What an export holds besides its memories: who it was made for and how it was asked for.
struct export_header {
  std::string id;                      ///< empty: none (the CLI's document)
  engram::timestamp created{};         ///< when the snapshot was taken
  engram::scope scope;                 ///< the scope ids named (a bound key's user and project included); empty: none
  bool all_projects = false;           ///< made of every project (a server-wide admin naming none)
  json filters = nullptr;              ///< the request's filters, as given
  json schema = nullptr;               ///< the request's JSON schema: kept and returned, not filled
  json export_instructions = nullptr;  ///< the request's instructions: kept and returned, not applied
};

/// The export document: the header's fields, then "count" and "memories" (JSON records, as listed).
inline json export_document(const export_header& h, json memories) {
  json doc{{"id", h.id.empty() ? json(nullptr) : json(h.id)},
           {"created_at", engram::format_iso8601(h.created)},
           {"filters", h.filters},
           {"schema", h.schema},
           {"export_instructions", h.export_instructions},
           {"count", memories.size()},
           {"memories", std::move(memories)}};
  put_scope_ids(doc, h.scope);
  return doc;
}

/// The exports of one server, on disk or in memory. Thread-safe (one mutex; files are written under it).
class export_store {
 public:
  static constexpr std::size_t default_max_exports = 100;

  /// Opens the exports in `dir` (created when missing; "" keeps them in memory only), keeping at most
  /// `max_exports` (at least 1). @throws engram::storage_error when the directory cannot be read or written,
  /// or another process uses it.
  explicit export_store(std::string dir = {}, std::size_t max_exports = default_max_exports)
      : dir_(std::move(dir)), max_(std::max<std::size_t>(max_exports, 1)) {
    if (dir_.empty()) return;
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec) throw engram::storage_error("exports: cannot create " + dir_ + ": " + ec.message());
    lock_ = std::make_unique<files::lock>(dir_ + "/.lock", "exports directory '" + dir_ + "' is in use by another "
                                          "process (it holds " + dir_ + "/.lock): give each server its own --exports-dir");
    load();
    trim();
  }

  /// Keeps the export `h` (with an id) whose document is `document`, holding `count` memories: on disk (durable
  /// when this returns) or in memory; then drops the oldest past the limit. @throws engram::storage_error.
  void put(const export_header& h, std::size_t count, const json& document) {
    std::lock_guard lock(mtx_);
    entry e{h.id, h.created, h.scope, h.all_projects, count, std::nullopt};
    if (dir_.empty()) {
      e.document = document;
    } else {
      files::replace(document_path(h.id), engram::dump_json(document));
      files::replace(meta_path(h.id), meta_json(e).dump());
    }
    index_[h.id] = next_seq_;
    entries_.emplace(next_seq_++, std::move(e));
    trim();
  }

  /// The document of the newest export `who` may see for which `pick(id, scope, created)` is true; nullopt when
  /// there is none. @throws engram::storage_error when its file cannot be read.
  template <class Pick>
  std::optional<json> newest(const principal& who, Pick&& pick) const {
    std::lock_guard lock(mtx_);
    for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
      const auto& e = it->second;
      if (!visible(e, who) || !pick(e.id, e.scope, e.created)) continue;
      if (e.document) return e.document;
      return read_document(e.id);
    }
    return std::nullopt;
  }

  /// Erasure (purge.hpp): drops every export made for a scope `q` selects, and rewrites any other export holding
  /// memories of such a scope without them (a temporary file, fsync, rename; its count follows). @returns how
  /// many exports were dropped or rewritten. @throws engram::storage_error.
  std::size_t forget_scope(const engram::scope& q) {
    std::lock_guard lock(mtx_);
    std::size_t n = 0;
    bool removed = false;
    for (auto it = entries_.begin(); it != entries_.end();) {
      auto& e = it->second;
      if (q.selects(e.scope)) {
        if (!dir_.empty()) {
          std::error_code ec;
          std::filesystem::remove(meta_path(e.id), ec);
          std::filesystem::remove(document_path(e.id), ec);
          removed = true;
        }
        index_.erase(e.id);
        it = entries_.erase(it);
        ++n;
        continue;
      }
      auto doc = e.document ? *e.document : read_document(e.id);
      auto& memories = doc["memories"];
      const auto before = memories.is_array() ? memories.size() : 0;
      if (memories.is_array()) {
        memories.erase(std::remove_if(memories.begin(), memories.end(), [&](const json& m) {
                         return m.is_object() && q.selects(scope_ids_of(m));
                       }), memories.end());
      }
      if (memories.size() != before) {
        doc["count"] = e.count = memories.size();
        if (dir_.empty()) {
          e.document = std::move(doc);
        } else {
          files::replace(document_path(e.id), engram::dump_json(doc));
          files::replace(meta_path(e.id), meta_json(e).dump());
        }
        ++n;
      }
      ++it;
    }
    if (removed) files::sync_parent(dir_ + "/.lock");
    return n;
  }

  /// Exports held (every user's).
  [[nodiscard]] std::size_t size() const {
    std::lock_guard lock(mtx_);
    return entries_.size();
  }
  /// The directory; empty: in memory only.
  [[nodiscard]] const std::string& directory() const noexcept { return dir_; }
  /// The most exports kept.
  [[nodiscard]] std::size_t max_exports() const noexcept { return max_; }
  /// Files removed on start: the remains of a crash (temporary files, halves of an export).
  [[nodiscard]] std::size_t removed_on_load() const noexcept { return removed_; }

 private:
  struct entry {
    std::string id;
    engram::timestamp created;
    engram::scope scope;
    bool all_projects = false;
    std::size_t count = 0;
    std::optional<json> document;  ///< in memory only
  };

  /// A key sees the exports of the memories it may see; one of every project only a server-wide admin.
  static bool visible(const entry& e, const principal& who) {
    return e.all_projects ? who.any_project() && who.bound_user_id.empty() : who.may_see(e.scope);
  }

  std::string document_path(const std::string& id) const { return dir_ + "/" + id + ".json"; }
  std::string meta_path(const std::string& id) const { return dir_ + "/" + id + ".meta.json"; }

  static json meta_json(const entry& e) {
    json j{{"id", e.id}, {"created_at", engram::format_iso8601(e.created)}, {"count", e.count}};
    put_scope_ids(j, e.scope);
    if (e.all_projects) j["all_projects"] = true;
    return j;
  }

  /// An entry read back from a meta file named for `id`; nullopt when it is not one.
  static std::optional<entry> entry_from_meta(const std::string& id, const json& j) try {
    using detail::optional_string;
    if (!j.is_object() || optional_string(j, "id") != id) return std::nullopt;
    const auto created = engram::try_parse_iso8601(optional_string(j, "created_at"));
    const auto count = j.find("count");
    if (!created || count == j.end() || !count->is_number_unsigned()) return std::nullopt;
    // A meta written before projects names none: the default project's (an export of every scope made then
    // by an admin is read as the default project's).
    const auto all = j.find("all_projects");
    return entry{id, *created, scope_ids_of(j), all != j.end() && all->is_boolean() && all->get<bool>(),
                 count->get<std::size_t>(), std::nullopt};
  } catch (const engram::validation_error&) {  // a field of the wrong type
    return std::nullopt;
  }

  json read_document(const std::string& id) const {
    std::ifstream in(document_path(id), std::ios::binary);
    std::ostringstream text;
    if (!(in && text << in.rdbuf())) files::fail("exports: cannot read " + document_path(id));
    auto doc = json::parse(text.str(), nullptr, false);
    if (doc.is_discarded()) throw engram::storage_error("exports: " + document_path(id) + " is not JSON");
    return doc;
  }

  void remove(const std::filesystem::path& p) {
    std::error_code ec;
    if (std::filesystem::remove(p, ec)) ++removed_;
  }

  /// Reads every export's meta file (oldest first by time, then id), removing what a crash left behind.
  void load() {
    std::map<std::string, std::filesystem::path> documents, metas;  // by id
    std::vector<std::filesystem::path> leftovers;
    std::error_code ec;
    for (const auto& f : std::filesystem::directory_iterator(dir_, ec)) {
      const auto name = f.path().filename().string();
      const auto ends = [&](std::string_view s) { return name.size() > s.size() && name.ends_with(s); };
      if (ends(".tmp")) leftovers.push_back(f.path());
      else if (ends(".meta.json")) metas[name.substr(0, name.size() - 10)] = f.path();
      else if (ends(".json")) documents[name.substr(0, name.size() - 5)] = f.path();
    }
    if (ec) throw engram::storage_error("exports: cannot read " + dir_ + ": " + ec.message());
    std::vector<entry> found;
    for (const auto& [id, path] : metas) {
      std::optional<entry> e;
      if (documents.count(id) && engram::is_uuid(id)) {
        std::ifstream in(path, std::ios::binary);
        e = entry_from_meta(id, json::parse(in, nullptr, false));
      }
      if (e) found.push_back(std::move(*e));
      else leftovers.push_back(path);
    }
    for (const auto& [id, path] : documents)
      if (!metas.count(id) || std::none_of(found.begin(), found.end(), [&, &doc = id](const entry& e) { return e.id == doc; }))
        leftovers.push_back(path);
    for (const auto& p : leftovers) remove(p);
    if (!leftovers.empty()) files::sync_parent(dir_ + "/.lock");
    std::sort(found.begin(), found.end(), [](const entry& a, const entry& b) {
      return std::tie(a.created, a.id) < std::tie(b.created, b.id);
    });
    for (auto& e : found) {
      index_[e.id] = next_seq_;
      entries_.emplace(next_seq_++, std::move(e));
    }
  }

  /// Drops the oldest exports while more than max_ are held (the meta first: a document without one is removed
  /// on the next start if a crash interrupts).
  void trim() {
    bool removed = false;
    while (entries_.size() > max_) {
      const auto it = entries_.begin();
      if (!dir_.empty()) {
        std::error_code ec;
        std::filesystem::remove(meta_path(it->second.id), ec);
        std::filesystem::remove(document_path(it->second.id), ec);
        removed = true;
      }
      index_.erase(it->second.id);
      entries_.erase(it);
    }
    if (removed) files::sync_parent(dir_ + "/.lock");
  }

  std::string dir_;
  std::size_t max_;
  std::unique_ptr<files::lock> lock_;
  mutable std::mutex mtx_;
  std::map<std::uint64_t, entry> entries_;                // by creation order
  std::unordered_map<std::string, std::uint64_t> index_;  // id -> key in entries_
  std::uint64_t next_seq_ = 0;
  std::size_t removed_ = 0;
};

/// The export routes over one memory's listings (service::list) and an export_store, JSON in and out.
template <class Memory>
class export_service {
 public:
  /// `max_memories`: the most memories one export may hold (1 to most_export_memories; a larger selection is
  /// refused with 413).
  export_service(const service<Memory>& memories, export_store& store,
                 std::size_t max_memories = default_max_export_memories)
      : memories_(memories), store_(store), max_(std::clamp<std::size_t>(max_memories, 1, most_export_memories)) {}

  /// POST /v1/exports/: {"schema"?, "filters"?, "user_id"?, "agent_id"?, "run_id"?, "org_id"?, "project_id"?,
  /// "app_id"?, "export_instructions"?}.
  /// Snapshots the memories the scope and filters select (as a listing with expired memories shown), keeps the
  /// export and answers {"message", "id"}. @throws validation_error (400) for an unknown field, a schema that is
  /// not an object (or a JSON string of one), instructions that are not a string, filters that are not an
  /// object or not the grammar; forbidden (403) for another user's scope; too_large (413) past max_memories.
  json create(const json& req, const principal& who) {
    only_fields(req, {"schema", "filters", "export_instructions", "user_id", "agent_id", "run_id", "org_id",
                      "project_id", "app_id"});
    export_header h;
    h.schema = schema_of(req);
    if (auto it = req.find("export_instructions"); it != req.end() && !it->is_null()) {
      if (!it->is_string()) throw engram::validation_error("'export_instructions' must be a string, got " + it->dump());
      h.export_instructions = *it;
    }
    h.filters = filters_of(req);
    h.scope = request_scope(req, who);
    // Which project the listing reads: the scope's (service::list), or, for a server-wide admin that names none
    // and no scope either, every project.
    h.all_projects = who.any_project() && h.scope.empty() && !names_project(req) &&
                     !(h.filters.is_object() && engram::filter_names_scope(engram::parse_filter(h.filters)));
    json listed = memories_.list(listing(req, max_ + 1), who);
    auto& memories = listed["results"];
    if (memories.size() > max_)
      throw too_large("the export selects more than " + std::to_string(max_) + " memories (the server's " +
                      "--max-export-memories): narrow it with filters or a scope");
    h.id = engram::make_uuid_v4();
    h.created = engram::utc_now();
    const auto count = memories.size();
    store_.put(h, count, export_document(h, std::move(memories)));
    return json{{"message", "Memory export created with " + std::to_string(count) + (count == 1 ? " memory" : " memories") +
                                ": fetch it with POST /v1/exports/get/ and this id"},
                {"id", h.id}};
  }

  /// POST /v1/exports/get/: {"memory_export_id"?, "filters"?, "user_id"?, "agent_id"?, "run_id"?, "org_id"?,
  /// "project_id"?, "app_id"?}: the newest export with that id (when given) that the filters and scope ids match
  /// (when given), matched against the export's own scope ids and its creation time (created_at, updated_at); of
  /// the project named (a bound key's own), and the app named. @throws validation_error (400)
  /// when neither is given or a field is malformed, forbidden (403) for naming another user, engram::not_found
  /// (404) when no export the caller may see matches: another user's id is unknown.
  json get(const json& req, const principal& who) const {
    only_fields(req, {"memory_export_id", "filters", "user_id", "agent_id", "run_id", "org_id", "project_id", "app_id"});
    const auto id = detail::optional_string(req, "memory_export_id");
    json conditions = json::array();
    if (auto f = filters_of(req); !f.is_null()) {
      detail::strip_lifted_keys(f);  // the project and app: matched against the export's scope below
      if (!f.is_null() && !f.empty()) conditions.push_back(std::move(f));
    }
    for (const char* key : {"user_id", "agent_id", "run_id"})
      if (auto v = detail::optional_string(req, key); !v.empty()) conditions.push_back(json{{key, v}});
    if (id.empty() && conditions.empty())
      throw engram::validation_error("give 'memory_export_id', or 'filters' (or user_id, agent_id, run_id) to fetch "
                                     "the newest export they match");
    // a bound key naming another user or project: 403, as on every route; a project named confines the match
    const auto named = request_scope(req, who);
    const bool project_named = !who.any_project() || names_project(req);
    const auto filter = conditions.empty() ? engram::filter_expr{}
                                           : engram::parse_filter(conditions.size() == 1 ? conditions[0]
                                                                                         : json{{"AND", conditions}});
    auto doc = store_.newest(who, [&](const std::string& export_id, const engram::scope& s, engram::timestamp created) {
      if (!id.empty() && export_id != id) return false;
      if (project_named && s.tenant != named.tenant) return false;
      if (!engram::detail::scope_lines_within(named.extra, s.extra)) return false;  // app_id
      engram::record r;  // the export as a record: its scope ids and its time
      r.user_id = s.user_id;
      r.agent_id = s.agent_id;
      r.run_id = s.run_id;
      r.tenant = s.tenant;
      r.extra = s.extra;
      r.created_at = r.updated_at = created;
      r.metadata = json::object();
      return engram::filter_matches(filter, r);
    });
    if (!doc)
      throw engram::not_found(id.empty() ? std::string("no memory export matches these filters")
                                         : "no memory export with id '" + engram::printable(id) + "'");
    return std::move(*doc);
  }

  /// POST /v1/summary/: {"filters"?, "user_id"?, "agent_id"?, "run_id"?}: the memories they select (as create
  /// selects them), summarised per scope without a model: [{"user_id"?, "agent_id"?, "run_id"?,
  /// "total_memories", "categories": {name: count}, "first_created_at", "last_updated_at"}], scopes in order.
  json summary(const json& req, const principal& who) const {
    only_fields(req, {"filters", "user_id", "agent_id", "run_id", "org_id", "project_id", "app_id"});
    (void)filters_of(req);
    const json listed = memories_.list(listing(req, 0), who);
    std::map<engram::scope, json> scopes;
    for (const auto& m : listed["results"]) {
      const auto key = scope_ids_of(m);
      auto& s = scopes[key];
      if (s.is_null()) {
        s = json{{"total_memories", 0}, {"categories", json::object()}, {"first_created_at", m.at("created_at")},
                 {"last_updated_at", m.at("updated_at")}};
        put_scope_ids(s, key);
      }
      s["total_memories"] = s["total_memories"].get<std::size_t>() + 1;
      if (m.at("created_at") < s["first_created_at"]) s["first_created_at"] = m.at("created_at");
      if (m.at("updated_at") > s["last_updated_at"]) s["last_updated_at"] = m.at("updated_at");
      if (const auto c = m.find("categories"); c != m.end() && c->is_array())
        for (const auto& name : *c)
          if (name.is_string()) s["categories"][name.get<std::string>()] = s["categories"].value(name.get<std::string>(), 0) + 1;
    }
    json out = json::array();
    for (auto& [key, s] : scopes) out.push_back(std::move(s));
    return out;
  }

 private:
  /// Refuses a field the route does not know (a 400 naming it and the known ones), and what refuse_unsupported
  /// refuses.
  static void only_fields(const json& req, std::initializer_list<std::string_view> known) {
    for (const auto& [key, value] : req.items())
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        std::string names;
        for (const auto k : known) names += (names.empty() ? "" : ", ") + std::string(k);
        throw engram::validation_error("unknown field '" + engram::printable(key) + "' (this route takes " + names + ")");
      }
    detail::refuse_unsupported(req);
  }

  /// `schema`: a JSON object, or a string holding one (the Python client's type); null when absent.
  static json schema_of(const json& req) {
    const auto it = req.find("schema");
    if (it == req.end() || it->is_null()) return nullptr;
    json schema = *it;
    if (it->is_string()) {
      try {
        schema = engram::parse_json(it->get<std::string>(), "'schema'");
      } catch (const engram::validation_error& e) {
        throw engram::validation_error(std::string("'schema' must be a JSON schema object (or a JSON string of one): ") +
                                       e.what());
      }
    }
    if (!schema.is_object())
      throw engram::validation_error(std::string("'schema' must be a JSON schema object (or a JSON string of one), got ") +
                                     schema.type_name());
    return schema;
  }

  /// `filters`: an object (Mem0's filter grammar, checked where it is used) or null.
  static json filters_of(const json& req) {
    const auto it = req.find("filters");
    if (it == req.end() || it->is_null()) return nullptr;
    if (!it->is_object())
      throw engram::validation_error(std::string("'filters' must be an object (Mem0's filter grammar), got ") +
                                     it->type_name());
    return *it;
  }

  /// The listing that selects an export's memories: the request's scope ids (its project and app too) and
  /// filters, expired memories too, at most `limit` (0: all).
  static json listing(const json& req, std::size_t limit) {
    json l{{"limit", limit}, {"show_expired", true}};
    for (const char* key : {"user_id", "agent_id", "run_id", "org_id", "project_id", "app_id", "filters"})
      if (auto it = req.find(key); it != req.end()) l[key] = *it;
    return l;
  }

  /// True when the request names a project: org_id (request_scope requires project_id with it) at the top or in
  /// its filters.
  static bool names_project(const json& req) {
    engram::scope s;
    if (auto v = detail::optional_string(req, "org_id"); !v.empty()) return true;
    if (auto it = req.find("filters"); it != req.end()) detail::scope_from_filters(*it, s);
    return !s.key("org_id").empty();
  }

  const service<Memory>& memories_;
  export_store& store_;
  std::size_t max_;
};

}  // namespace engram_app
