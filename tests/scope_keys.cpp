// Scope key sets: the canonical tenant and extra lines, the key-set policy of basic_memory, and the wall a
// tenant (an organisation and project) is: no read, write or delete of one project reaches another's memories,
// whatever the scope's ids and whatever filter stands in for them.
#include "support/filter_gen.hpp"

#include <engram/detail/identity_check.hpp>
#include <engram/engram.hpp>
#include <engram/filter/eval.hpp>
#include <engram/scope_keys.hpp>

#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

using namespace engram;
using engram_test::gen;
using nlohmann::json;

namespace {

using platform_memory = basic_memory<hashing_embedder, flat_index, memory_store, verbatim_extractor, platform_scope_keys>;

scope in_project(scope s, std::string_view org, std::string_view project, std::string_view app = {}) {
  set_scope_key<platform_scope_keys>(s, "org_id", org);
  set_scope_key<platform_scope_keys>(s, "project_id", project);
  set_scope_key<platform_scope_keys>(s, "app_id", app);
  return s;
}

std::string message_of(auto&& f) {
  try {
    f();
  } catch (const validation_error& e) {
    return e.what();
  }
  return "(no validation_error)";
}

}  // namespace

TEST_CASE("scope_keys: keys are kept as sorted key=value lines; an empty value removes the key", "[scope_keys]") {
  scope s = user("alice");
  set_scope_key<platform_scope_keys>(s, "project_id", "prod");
  set_scope_key<platform_scope_keys>(s, "org_id", "acme");
  set_scope_key<platform_scope_keys>(s, "app_id", "mobile");
  CHECK(s.tenant == "org_id=acme\nproject_id=prod");
  CHECK(s.extra == "app_id=mobile");
  CHECK(s.key("org_id") == "acme");
  CHECK(s.key("app_id") == "mobile");
  CHECK(s.key("user_id") == "alice");
  CHECK(s.key("nothing").empty());
  set_scope_key<platform_scope_keys>(s, "org_id", "other");  // replaced, order kept
  CHECK(s.tenant == "org_id=other\nproject_id=prod");
  set_scope_key<platform_scope_keys>(s, "org_id", "");
  CHECK(s.tenant == "project_id=prod");
  CHECK_NOTHROW(validate_scope(s, "test"));

  const auto unknown = message_of([&] { set_scope_key(s, "org_id", "acme"); });  // Mem0's key set
  CHECK(unknown.find("unknown scope key 'org_id'") != std::string::npos);
  CHECK(unknown.find("user_id, agent_id, run_id") != std::string::npos);
  CHECK(message_of([&] { set_scope_key<platform_scope_keys>(s, "tenant", "x"); }).find("org_id, project_id, app_id") !=
        std::string::npos);

  // hand-made lines that are not canonical are refused, never read some other way
  for (const char* bad : {"b=1\na=2", "a=1\na=2", "=x", "a=", "a", "a=1\n", "a=\x01", "A=1", "a b=1", "a=1\n\nb=2"}) {
    scope t = user("u");
    t.tenant = bad;
    INFO(json(bad).dump());
    CHECK_THROWS_AS(validate_scope(t, "test"), validation_error);
  }
}

TEST_CASE("scope_keys: a tenant is a wall, extra keys select as user_id does", "[scope_keys]") {
  const auto prod = in_project(user("a"), "acme", "prod"), staging = in_project(user("a"), "acme", "staging");
  const auto prod_app = in_project(user("a"), "acme", "prod", "mobile");
  CHECK(prod.selects(prod));
  CHECK(prod.selects(prod_app));  // no app named: every app of the project
  CHECK_FALSE(prod.selects(staging));
  CHECK_FALSE(user("a").selects(prod));  // no tenant is a tenant of its own, not "every tenant"
  CHECK_FALSE(prod.selects(user("a")));
  CHECK_FALSE(prod_app.selects(prod));
  const auto app_only = in_project(scope{}, "acme", "prod", "mobile");
  CHECK_FALSE(app_only.empty());
  CHECK(app_only.selects(prod_app));
  CHECK_FALSE(in_project(scope{}, "acme", "prod").selects(prod));  // a tenant alone names no scope
  CHECK(in_project(scope{}, "acme", "prod").empty());
}

TEST_CASE("scope_keys: a store's recorded key set may be widened, never narrowed", "[scope_keys]") {
  const auto mem0 = detail::describe_scope_keys<mem0_scope_keys>();
  const auto platform = detail::describe_scope_keys<platform_scope_keys>();
  CHECK(mem0.empty());
  CHECK(platform == "tenant=org_id,project_id;extra=app_id");
  CHECK_FALSE(detail::check_scope_keys(mem0, mem0, "s"));
  CHECK_FALSE(detail::check_scope_keys(platform, platform, "s"));
  CHECK(detail::check_scope_keys(mem0, platform, "s"));
  const auto narrow = message_of([&] { detail::check_scope_keys(platform, mem0, "store 's'"); });
  CHECK(narrow.find("store 's'") != std::string::npos);
  CHECK(narrow.find("tenant=org_id,project_id") != std::string::npos);
  CHECK(narrow.find("Mem0's") != std::string::npos);
  // a key in another role cannot keep the same scopes apart either
  CHECK_THROWS_AS(detail::check_scope_keys("tenant=org_id;extra=", "tenant=;extra=org_id", "s"), validation_error);
  CHECK_THROWS_AS(detail::check_scope_keys("garbage", platform, "s"), storage_error);

  memory_store st;
  st.bind({"hashing-v1", 64, platform});
  CHECK_THROWS_AS(st.bind({"hashing-v1", 64, mem0}), validation_error);
  CHECK_THROWS_AS((memory(hashing_embedder(64), std::move(st))), validation_error);
}

TEST_CASE("scope_keys: a memory refuses keys outside its key set, in every operation", "[scope_keys]") {
  memory m(hashing_embedder(64));
  const auto prod = in_project(user("a"), "acme", "prod");
  CHECK(message_of([&] { m.add("x", prod); }).find("'org_id' is not a tenant key") != std::string::npos);
  CHECK_THROWS_AS(m.search("x", prod), validation_error);
  CHECK_THROWS_AS(m.get_all(prod), validation_error);
  CHECK_THROWS_AS(m.delete_all(prod), validation_error);
  CHECK_THROWS_AS(m.purge(prod), validation_error);
  CHECK(m.size() == 0);

  platform_memory p(hashing_embedder(64));
  scope wrong_role = user("a");
  wrong_role.tenant = "app_id=x";  // a selecting key put among the walls by hand
  CHECK(message_of([&] { p.add("x", wrong_role); }).find("'app_id' is not a tenant key") != std::string::npos);
  CHECK(p.size() == 0);
}

TEST_CASE("scope_keys: projects stay apart under random filters, filter-named scopes and deletes", "[scope_keys]") {
  static const char* users[] = {"u0", "u1", "u2"};
  static const char* projects[] = {"", "prod", "staging"};  // "": memories in no project (written before)
  gen g(20261207);
  memory_config config;
  config.limits.max_limit = 5000;
  platform_memory m(hashing_embedder(64), memory_store(), verbatim_extractor(), config);
  auto project_scope = [](scope s, const char* project, std::string_view app = {}) {
    return *project ? in_project(std::move(s), "acme", project, app) : s;
  };
  int n = 0;
  for (const char* project : projects)
    for (const char* u : users)
      for (int i = 0; i < 25; ++i, ++n) {
        const char* app = g.coin(0.3) ? "mobile" : "";
        const auto s = project_scope(scope{u, g.coin(0.3) ? "g0" : "", ""}, project, *project ? app : "");
        // the same texts in every project: a duplicate check must not reach across either
        m.add("note " + std::to_string(i) + " of " + u, s, {.metadata = g.metadata(), .infer = false});
      }
  REQUIRE(m.size() == static_cast<std::size_t>(n));

  auto tenant_of = [&](const char* project) { return project_scope(scope{}, project).tenant; };
  for (int t = 0; t < 120; ++t) {
    const auto f = g.tree(2);
    INFO(json(f).dump());
    for (const char* project : projects) {
      const auto tenant = tenant_of(project);
      for (const char* u : users) {
        const auto s = project_scope(user(u), project);
        for (const auto& h : m.search("note of " + std::string(u), s, {.limit = 50, .filter = f})) {
          CHECK(h.record.tenant == tenant);
          CHECK(h.record.user_id == u);
          CHECK(filter_matches(f, h.record));
        }
      }
      // the scope named by the filter alone, within the project the scope's tenant gives
      scope only_tenant;
      only_tenant.tenant = tenant;
      const json either = {{"OR", json::array({json{{"user_id", "u0"}}, json{{"user_id", "u2"}}})}};
      const auto named = parse_filter(json{{"AND", json::array({either, json(f)})}});
      for (const auto& r : m.get_all(only_tenant, {.limit = 0, .filter = named})) {
        CHECK(r.tenant == tenant);
        CHECK((r.user_id == "u0" || r.user_id == "u2"));
      }
      for (const auto& h : m.search("note", only_tenant, {.limit = 50, .filter = named})) CHECK(h.record.tenant == tenant);
    }
  }
  // an app selects within its project only
  for (const auto& r : m.get_all(in_project(scope{}, "acme", "prod", "mobile"), {.limit = 0})) {
    CHECK(r.tenant == tenant_of("prod"));
    CHECK(r.extra == "app_id=mobile");
  }

  // deleting one project's user leaves the same user's memories in the other projects
  const auto before_staging = m.get_all(project_scope(user("u1"), "staging"), {.limit = 0}).size();
  const auto before_none = m.get_all(user("u1"), {.limit = 0}).size();
  CHECK(m.delete_all(project_scope(user("u1"), "prod")) == 25);
  CHECK(m.get_all(project_scope(user("u1"), "prod"), {.limit = 0}).empty());
  CHECK(m.get_all(project_scope(user("u1"), "staging"), {.limit = 0}).size() == before_staging);
  CHECK(m.get_all(user("u1"), {.limit = 0}).size() == before_none);
  CHECK(m.purge(project_scope(user("u2"), "staging")) == 25);
  CHECK(m.get_all(project_scope(user("u2"), "prod"), {.limit = 0}).size() == 25);
  CHECK(m.get_all(user("u2"), {.limit = 0}).size() == 25);
}

TEST_CASE("scope_keys: under the partition cache, projects load, evict and stay apart", "[scope_keys][cache]") {
  // a budget of about two scopes: every scope below is loaded again and again, by the adds too
  platform_memory m(hashing_embedder(64), memory_store(), verbatim_extractor(),
                    memory_config{.partition_cache_bytes = 24 * 1024});
  for (const char* project : {"prod", "staging"})
    for (int u = 0; u < 6; ++u)
      for (int i = 0; i < 8; ++i)
        m.add("fact " + std::to_string(i) + " of user " + std::to_string(u),
              in_project(user("u" + std::to_string(u)), "acme", project, i % 2 ? "mobile" : ""), {.infer = false});
  m.add("fact of user u0 before projects", user("u0"), {.infer = false});
  for (int round = 0; round < 3; ++round)
    for (const char* project : {"prod", "staging"}) {
      const auto tenant = in_project(scope{}, "acme", project).tenant;
      for (int u = 0; u < 6; ++u) {
        const auto s = in_project(user("u" + std::to_string(u)), "acme", project);
        const auto all = m.get_all(s, {.limit = 0});
        CHECK(all.size() == 8);
        for (const auto& r : all) CHECK(r.tenant == tenant);
        for (const auto& h : m.search("fact of user", s, {.limit = 50})) CHECK(h.record.tenant == tenant);
        CHECK(m.get_all(in_project(user("u" + std::to_string(u)), "acme", project, "mobile"), {.limit = 0}).size() == 4);
      }
      scope only_tenant;
      only_tenant.tenant = tenant;
      const auto named = m.get_all(only_tenant, {.limit = 0, .filter = parse_filter(R"({"user_id": {"in": ["u1", "u2"]}})")});
      CHECK(named.size() == 16);
      for (const auto& r : named) CHECK(r.tenant == tenant);
    }
  CHECK(m.get_all(user("u0"), {.limit = 0}).size() == 1);
  CHECK(m.cache_stats().evictions > 0);
}
