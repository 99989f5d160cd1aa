// libFuzzer target for the filter JSON parser (built and run by scripts/fuzz.sh, not by CMake).
// Any input must either parse or raise validation_error; a parsed filter must read back from its canonical
// JSON as the same tree, and evaluate identically per record, per slot and as a compiled bitmap.
#include <engram/filter/eval.hpp>
#include <engram/filter/parse.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace {

std::vector<engram::record> sample_records() {
  std::vector<engram::record> out;
  const char* metas[] = {
      R"({"priority": 5, "tag": "a", "tags": ["x", "Y", 3], "score": 0.5, "ok": true, "none": null,
          "address": {"city": "Paris", "zip": 75001}, "when": "2024-05-01T12:00:00+02:00", "a.b": 1})",
      R"({"priority": "high", "tag": ["a", "b"], "score": -1, "ok": false, "address": "Paris", "when": "2024"})",
      R"({})",
  };
  for (int i = 0; i < 3; ++i) {
    engram::record r;
    r.id = "r" + std::to_string(i);
    r.user_id = i == 2 ? "" : "alice";
    r.agent_id = i == 1 ? "planner" : "";
    r.run_id = i == 0 ? "run-1" : "";
    r.role = "user";
    r.actor_id = i == 1 ? "Bob" : "";
    r.created_at = engram::parse_iso8601("2024-05-01T00:00:00Z") + std::chrono::hours(i * 30);
    r.updated_at = r.created_at;
    r.metadata = nlohmann::json::parse(metas[i]);
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto records = sample_records();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  engram::filter_expr f;
  try {
    f = engram::parse_filter(text);
  } catch (const engram::validation_error&) {
    return 0;
  }
  const nlohmann::json canonical = f;
  if (!engram::detail::json_deeper_than(canonical, engram::max_filter_depth)) {
    // Within the depth limit the canonical form must parse back to the same tree.
    if (!(engram::parse_filter(canonical) == f)) __builtin_trap();
  }
  engram::filter_columns columns;
  std::vector<engram::slot_id> slots;
  for (std::size_t i = 0; i < records.size(); ++i) {
    columns.assign(static_cast<engram::slot_id>(i * 2), records[i]);
    slots.push_back(static_cast<engram::slot_id>(i * 2));
  }
  const auto bitmap = columns.select(f, slots);
  for (std::size_t i = 0; i < records.size(); ++i) {
    const bool direct = engram::filter_matches(f, records[i]);
    if (direct != columns.matches(f, slots[i]) || direct != bitmap.test(slots[i])) __builtin_trap();
    (void)engram::filter_scope_may_match(f, records[i].scope());
  }
  (void)engram::filter_names_scope(f);
  return 0;
}
