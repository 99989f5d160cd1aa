#pragma once
/// @file examples/common/projects.hpp
/// engram-server's organizations and projects, Mem0 Platform's routes for them: the projects are those the key
/// file binds keys to (org= project=) and the default project (default_org/default_project), each with the
/// settings a Platform project has that engram can honour: custom_instructions, agent_custom_instructions and
/// custom_categories, applied to every add in the project that does not give its own. A server-wide admin may
/// also create a project in a known organization (Mem0's create route: a name, an optional description, a new
/// uuid as its id), to bind keys to later. Organizations, members and deletions are the key file's, so the routes
/// that would create or delete an organization, delete a project or change members answer 403 saying so;
/// members are listed as the keys bound to the project (names, never keys).
///
/// Durability: the projects live in memory and, given a path, in one JSON file replaced atomically on every
/// change; without a path (PostgreSQL without --projects-file) creating a project is refused, as it would not
/// outlive the process.

#include "files.hpp"
#include "request.hpp"
#include "service.hpp"

#include <engram/engram.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace engram_app {

class project_registry {
  using project_id = std::pair<std::string, std::string>;  // org, project
  struct entry {
    project_settings settings;
    std::string name;  // empty: the project id (the key file's projects)
    std::string description;
  };
  using project_map = std::map<project_id, entry>;

 public:
  using key_map = std::map<std::string, principal>;

  /// The projects of `keys` (none: only the default project) with the settings kept in `path` ("" keeps them in
  /// memory only). @throws engram::storage_error when the file cannot be read or is not the registry's JSON.
  project_registry(const std::optional<key_map>& keys, std::string path) : path_(std::move(path)) {
    projects_[{std::string(default_org), std::string(default_project)}];
    if (keys)
      for (const auto& [key, who] : *keys) {
        if (!who.project_id.empty()) projects_[{who.org_id, who.project_id}];
        members_.push_back(who);
      }
    if (path_.empty()) return;
    std::ifstream in(path_);
    if (!in) return;  // none saved yet
    std::stringstream text;
    text << in.rdbuf();
    const auto j = json::parse(text.str(), nullptr, false);
    if (j.is_discarded() || !j.is_array()) throw engram::storage_error(path_ + ": not the project settings' JSON");
    for (const auto& p : j) {
      try {
        auto& kept = projects_[{p.at("org_id").get<std::string>(), p.at("project_id").get<std::string>()}];
        const auto& settings = p.at("settings");
        apply(kept.settings, settings);
        kept.name = detail::optional_string(settings, "name");
        kept.description = detail::optional_string(settings, "description");
      } catch (const std::exception& e) {
        throw engram::storage_error(path_ + ": a project's settings cannot be read: " + e.what());
      }
    }
  }

  /// The settings of the project whose tenant is `tenant` (engram::scope::tenant; empty: the default project).
  [[nodiscard]] project_settings settings_of(const std::string& tenant) const {
    std::lock_guard lock(mtx_);
    for (const auto& [id, p] : projects_)
      if (tenant_of(id.first, id.second) == tenant) return p.settings;
    return {};
  }

  // ---- the routes ----

  /// GET /api/v1/orgs/organizations/: the organizations the key may see.
  [[nodiscard]] json organizations(const principal& who) const {
    std::set<std::string> orgs;
    std::lock_guard lock(mtx_);
    for (const auto& [id, s] : projects_)
      if (visible(who, id)) orgs.insert(id.first);
    json out = json::array();
    for (const auto& o : orgs) out.push_back({{"org_id", o}, {"name", o}});
    return out;
  }

  /// GET /api/v1/orgs/organizations/{org_id}/: one organization. @throws engram::not_found.
  [[nodiscard]] json organization(const std::string& org, const principal& who) const {
    for (const auto& o : organizations(who))
      if (o["org_id"] == org) return o;
    throw engram::not_found("no organization '" + org + "'");
  }

  /// GET /api/v1/orgs/organizations/{org_id}/projects/: its projects the key may see.
  [[nodiscard]] json projects(const std::string& org, const principal& who) const {
    (void)organization(org, who);
    json out = json::array();
    std::lock_guard lock(mtx_);
    for (const auto& [id, s] : projects_)
      if (id.first == org && visible(who, id)) out.push_back(project_json(id, s));
    return out;
  }

  /// POST /api/v1/orgs/organizations/{org_id}/projects/: {"name", "description"?} creates a project in a known
  /// organization, with a new uuid as its id; a server-wide admin key only. A name already used in the
  /// organization is a 400, as is a field the route does not know. @returns {"message", "project_id"} (Mem0's shape).
  json create(const std::string& org, const json& body, const principal& who) {
    if (!body.is_object()) throw engram::validation_error("the body must be a JSON object");
    if (!who.any_project()) throw forbidden("creating a project needs a server-wide admin key (an admin key bound to no project)");
    if (path_.empty())
      throw forbidden("creating a project: engram-server keeps projects in memory only here (no --projects-file), so a "
                      "created project would not outlive a restart; start it with --projects-file PATH");
    for (const auto& [key, v] : body.items())
      if (key != "name" && key != "description")
        throw engram::validation_error("'" + engram::printable(key) + "': not a field of a new project (it takes name, description)");
    const auto name = detail::optional_string(body, "name");
    const auto description = detail::optional_string(body, "description");
    if (name.empty()) throw engram::validation_error("'name': a new project needs a name");
    for (const auto* text : {&name, &description}) {
      if (text->size() > 1000) throw engram::validation_error("a project's name or description is over 1000 bytes");
      for (unsigned char c : *text)
        if (c < 0x20 || c == 0x7f) throw engram::validation_error("a project's name or description holds a control character");
    }
    std::lock_guard lock(mtx_);
    if (!std::any_of(projects_.begin(), projects_.end(), [&](const auto& p) { return p.first.first == org; }))
      throw engram::not_found("no organization '" + engram::printable(org) + "'");
    for (const auto& [id, p] : projects_)
      if (id.first == org && (p.name.empty() ? id.second : p.name) == name)
        throw engram::validation_error("organization '" + engram::printable(org) + "' has a project named '" +
                                       engram::printable(name) + "' already");
    project_id id{org, engram::make_uuid_v4()};
    projects_[id] = entry{{}, name, description};
    try {
      save_locked();
    } catch (...) {
      projects_.erase(id);  // not kept: not created
      throw;
    }
    return json{{"message", "Project created successfully."}, {"project_id", id.second}};
  }

  /// GET /api/v1/orgs/organizations/{org_id}/projects/{project_id}/[?fields=a&fields=b]: one project, or only
  /// the fields named (the SDK's getProject). @throws engram::not_found, engram::validation_error (a field it has not).
  [[nodiscard]] json project(const std::string& org, const std::string& project, const std::vector<std::string>& fields,
                             const principal& who) const {
    std::lock_guard lock(mtx_);
    const auto it = find(org, project, who);
    auto full = project_json(it->first, it->second);
    if (fields.empty()) return full;
    json out = json::object();
    for (const auto& f : fields) {
      if (!full.contains(f))
        throw engram::validation_error("'fields': a project has no field '" + engram::printable(f) + "' (it has " +
                                       names_of(full) + ")");
      out[f] = full[f];
    }
    return out;
  }

  /// PATCH (or PUT) /api/v1/orgs/organizations/{org_id}/projects/{project_id}/: {"custom_instructions"?,
  /// "agent_custom_instructions"?, "custom_categories"?} (null or "" clears one). Settings engram cannot honour
  /// (memory_depth, usecase_setting, multilingual, decay, ...) are a 400 naming them when they ask for something.
  /// Needs an admin key of the project (or a server-wide one). @returns the project after the change.
  json update(const std::string& org, const std::string& project, const json& body, const principal& who) {
    if (!body.is_object()) throw engram::validation_error("the body must be a JSON object");
    if (!who.admin) throw forbidden("changing a project's settings needs an admin key");
    std::lock_guard lock(mtx_);
    const auto it = find(org, project, who);
    auto next = it->second.settings;
    for (const auto& [key, v] : body.items()) {
      if (key == "custom_instructions" || key == "agent_custom_instructions" || key == "custom_categories") continue;
      if (key == "version" || v.is_null() || (v.is_boolean() && !v.get<bool>()))
        continue;  // asks for nothing ("version": the SDK sends the prompt version it was built with)
      throw engram::validation_error("'" + key + "': this project setting is not supported by engram-server (it "
                                     "honours custom_instructions, agent_custom_instructions, custom_categories)");
    }
    apply(next, body);
    it->second.settings = std::move(next);
    save_locked();
    return json{{"message", "Updated project settings"}, {"project", project_json(it->first, it->second)}};
  }

  /// GET .../members/ of an organization or project: the keys bound to it, by name and role (OWNER: an admin
  /// key; MEMBER: a user key), never the keys themselves.
  [[nodiscard]] json members(const std::string& org, const std::optional<std::string>& project,
                             const principal& who) const {
    if (!project) (void)organization(org, who);
    std::lock_guard lock(mtx_);
    if (project) (void)find(org, *project, who);
    json out = json::array();
    for (const auto& m : members_) {
      const bool in_default = m.project_id.empty() && org == default_org && (!project || *project == default_project);
      const bool bound_here = m.org_id == org && (!project || m.project_id == *project);
      if (!in_default && !bound_here) continue;
      json item{{"username", m.name}, {"role", m.admin ? "OWNER" : "MEMBER"}};
      if (!m.bound_user_id.empty()) item["user_id"] = m.bound_user_id;
      out.push_back(std::move(item));
    }
    return json{{"members", out}};
  }

  /// The routes that would create or delete organizations, delete projects or change members.
  [[noreturn]] static void refuse_change(std::string_view what) {
    throw forbidden(std::string(what) + ": engram-server's organizations, projects and members are the key file's: "
                    "bind a key with `org=ORG project=PROJECT` (docs/server.md#organizations-and-projects)");
  }

  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  [[nodiscard]] std::size_t size() const {
    std::lock_guard lock(mtx_);
    return projects_.size();
  }

 private:
  static std::string tenant_of(const std::string& org, const std::string& project) {
    principal p;
    p.org_id = org;
    p.project_id = project;
    return p.tenant();
  }
  static bool visible(const principal& who, const project_id& id) {
    return who.any_project() || tenant_of(id.first, id.second) == who.tenant();
  }
  template <class It, class Map>
  static It find_in(Map& projects, const std::string& org, const std::string& project, const principal& who) {
    auto it = projects.find({org, project});
    if (it == projects.end() || !visible(who, it->first))
      throw engram::not_found("no project '" + project + "' in organization '" + org + "'");
    return it;
  }
  project_map::iterator find(const std::string& org, const std::string& project, const principal& who) {
    return find_in<project_map::iterator>(projects_, org, project, who);
  }
  project_map::const_iterator find(const std::string& org, const std::string& project, const principal& who) const {
    return find_in<project_map::const_iterator>(projects_, org, project, who);
  }
  static std::string names_of(const json& obj) {
    std::string out;
    for (const auto& [k, v] : obj.items()) out += (out.empty() ? "" : ", ") + k;
    return out;
  }
  static json project_json(const project_id& id, const entry& p) {
    const auto& s = p.settings;
    json cats = json::array();
    for (const auto& c : s.custom_categories) cats.push_back(json{{c.name, c.description}});
    return json{{"id", id.second},
                {"project_id", id.second},
                {"name", p.name.empty() ? id.second : p.name},
                {"description", p.description.empty() ? json() : json(p.description)},
                {"org_id", id.first},
                {"custom_instructions", s.custom_instructions.empty() ? json() : json(s.custom_instructions)},
                {"agent_custom_instructions", s.agent_custom_instructions.empty() ? json() : json(s.agent_custom_instructions)},
                {"custom_categories", cats}};
  }
  /// Sets the settings `j` names (Mem0's shapes; null or "" clears). @throws engram::validation_error.
  static void apply(project_settings& s, const json& j) {
    for (auto [key, to] : {std::pair{"custom_instructions", &s.custom_instructions},
                           std::pair{"agent_custom_instructions", &s.agent_custom_instructions}})
      if (j.contains(key)) *to = detail::optional_string(j, key);
    if (j.contains("custom_categories")) s.custom_categories = detail::categories_of(j);
  }
  void save_locked() const {
    if (path_.empty()) return;
    json all = json::array();
    for (const auto& [id, p] : projects_) {
      auto settings = project_json(id, p);
      if (p.name.empty()) settings.erase("name");  // the id stays its name
      all.push_back({{"org_id", id.first}, {"project_id", id.second}, {"settings", settings}});
    }
    files::replace(path_, all.dump(2) + "\n");
  }

  std::string path_;
  mutable std::mutex mtx_;
  project_map projects_;
  std::vector<principal> members_;  // every key's principal, for the member listings
};

}  // namespace engram_app
