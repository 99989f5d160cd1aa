// engram-requires: http
#pragma once
/// @file extract/llm.hpp
/// llm_extractor: a chat model decides what to remember, over any OpenAI-compatible /chat/completions.

#include <engram/error.hpp>
#include <engram/extract/actions.hpp>
#include <engram/extract/llm_entities.hpp>
#include <engram/extract/llm_prompts.hpp>
#include <engram/extract/parse_json_reply.hpp>
#include <engram/extract/verbatim.hpp>
#include <engram/http/transport.hpp>
#include <engram/record.hpp>
#include <engram/time.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>  // std::chrono::floor
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace engram::inline v0 {

/// How llm_extractor turns a conversation into memory changes.
enum class extraction_mode {
  /// Two calls: extract facts, then show the nearest existing memories and let the model decide
  /// ADD / UPDATE / DELETE / NONE for each (Mem0's classic pipeline).
  reconcile,
  /// One call: extract self-contained facts; a fact whose exact text the scope already holds is skipped.
  additive,
};

/// Settings of llm_extractor. Every member has a default.
struct llm_extractor_options {
  http_options http{};                ///< base_url, key, timeouts, retries
  std::string model = "gpt-4o-mini";  ///< the server's chat model name
  extraction_mode mode = extraction_mode::reconcile;
  /// Replaces the built-in system prompt of the extraction call; it must ask for {"facts": [...]}, each a string
  /// or an object {"fact" (or "text"), "valid_from", "categories"}.
  /// The sections below (includes, excludes, categories, custom instructions) are still appended.
  std::string fact_prompt{};
  /// Replaces the built-in system prompt of the reconcile call; it must ask for
  /// {"memory": [{"id", "text", "event", "old_memory"}]}, an UPDATE that fixes a mistake adding "correction": true.
  std::string update_prompt{};
  std::string custom_instructions{};    ///< appended to the extraction prompt
  std::vector<std::string> includes{};  ///< kinds of information to keep (e.g. "food preferences")
  std::vector<std::string> excludes{};  ///< kinds of information to drop (e.g. "small_talk")
  /// Categories the model files facts under; the chosen ones go into each memory's metadata["categories"].
  std::vector<memory_category> categories{};
  double temperature = 0.0;
  std::size_t max_tokens = 0;  ///< 0: the server's default
  bool json_mode = true;       ///< send response_format {"type": "json_object"}
  std::size_t max_facts = 50;  ///< facts kept from one extraction
  /// false: a reply with no usable JSON stores nothing (counted in stats().unparseable);
  /// true: it is a provider_error.
  bool throw_on_unparseable = false;
  /// Entity memory: one more call per add that changes memories, asking for the entities and relations of
  /// the texts it adds or updates (kept with each memory, record::entities). Off by default (its cost is one
  /// call); an add's extraction_request::entities (Mem0's enable_graph) overrides it. A malformed reply fails
  /// the add with a provider_error, whatever throw_on_unparseable says: nothing is stored half.
  bool entities = false;
  /// Replaces the built-in system prompt of the entity call (default_entity_prompt()); it must ask for the
  /// reply parse_entity_reply reads.
  std::string entity_prompt{};
};

/// Counters of one llm_extractor.
struct llm_extractor_stats {
  std::uint64_t calls = 0;         ///< chat completions made (retries not counted; see transport().stats())
  std::uint64_t unparseable = 0;   ///< replies with no usable JSON object: nothing was stored for them
  std::uint64_t invented_ids = 0;  ///< ids in a reconcile reply that were not among those shown
  std::uint64_t unknown_events = 0;  ///< reconcile items whose event is not ADD/UPDATE/DELETE/NONE (reported as skipped)
  /// Facts whose valid_from was not an ISO-8601 date or lay after the conversation: kept without one.
  std::uint64_t bad_dates = 0;
};

/// Prefix of the target id given to an action whose id the model invented: no memory has such an id, so
/// basic_memory skips the action and reports it in add_result::skipped.
inline constexpr std::string_view invented_id_prefix = "llm-invented-id:";

namespace detail {

inline std::string trimmed(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

/// Lowercase alphanumeric words of `s` (ASCII folding; other bytes kept).
inline std::vector<std::string> fold_words(std::string_view s) {
  std::vector<std::string> out;
  std::string cur;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c >= 0x80) {
      cur.push_back(static_cast<char>(std::tolower(c)));
    } else if (!cur.empty()) {
      out.push_back(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

/// The fact `text` most likely comes from: equal text, else the most shared words; npos when none shares any.
inline std::size_t closest_fact(std::span<const fact> facts, std::string_view text) {
  for (std::size_t i = 0; i < facts.size(); ++i)
    if (facts[i].text == text) return i;
  const auto words = fold_words(text);
  const std::unordered_set<std::string> set(words.begin(), words.end());
  std::size_t best = static_cast<std::size_t>(-1);
  double best_score = 0.0;
  for (std::size_t i = 0; i < facts.size(); ++i) {
    const auto fw = fold_words(facts[i].text);
    std::unordered_set<std::string> fs(fw.begin(), fw.end());
    std::size_t shared = 0;
    for (const auto& w : fs) shared += set.count(w);
    const auto uni = set.size() + fs.size() - shared;
    const double score = uni ? static_cast<double>(shared) / static_cast<double>(uni) : 0.0;
    if (score > best_score) {
      best_score = score;
      best = i;
    }
  }
  if (best == static_cast<std::size_t>(-1) && facts.size() == 1) return 0;
  return best;
}

/// The day of `t` as YYYY-MM-DD.
inline std::string day_text(timestamp t) { return format_iso8601(t).substr(0, 10); }

/// An id as the model wrote it: a string, or a number turned into text.
inline std::string id_text(const nlohmann::json& j) {
  if (j.is_string()) return trimmed(j.get<std::string>());
  if (j.is_number_integer()) return std::to_string(j.get<std::int64_t>());
  if (j.is_number_unsigned()) return std::to_string(j.get<std::uint64_t>());
  return {};
}

}  // namespace detail

/// Decides what to remember with a chat model on {base_url}/chat/completions (JSON mode).
///
/// extract(): one call returning {"facts": [...]}, taken from the user's turns, or from the assistant's
/// when the scope names an agent and no user. The model is told the conversation's day and may date a fact
/// ({"fact": ..., "valid_from": "YYYY-MM-DD"}): that becomes fact::valid_from, unless it is no ISO-8601 date
/// or lies after the conversation (see stats().bad_dates), when the fact is kept undated.
///
/// decide(): in reconcile mode, one call showing the existing memories near the facts under short integer ids
/// (never their real ids) and reading back
/// {"memory": [...]}; ids are mapped back, an id the model invents becomes an action on a non-existent id
/// (see invented_id_prefix), which the memory skips and reports; so is an event name other than ADD, UPDATE,
/// DELETE or NONE (an action carrying a skip_reason). Memories and facts are shown with the day they hold
/// from, so the model can tell a change in the world from a correction; an UPDATE with "correction": true
/// becomes memory_action::correction. With no existing memory near any fact,
/// every fact is added without a call. In additive mode decide() makes no call: a fact is added unless a
/// neighbour has the same content hash and text.
///
/// A reply without usable JSON stores nothing (or throws, see throw_on_unparseable). Transport failures
/// are provider_errors (after retries), so the add stores nothing. Thread-safe (calls share no mutable
/// state but counters); movable.
class llm_extractor {
 public:
  /// @throws validation_error for a bad base_url or an empty model.
  explicit llm_extractor(llm_extractor_options options = {}) : opts_(std::move(options)), transport_(opts_.http) {
    if (opts_.model.empty()) throw validation_error("llm_extractor: model is empty");
    for (const auto& c : opts_.categories)
      if (detail::trimmed(c.name).empty()) throw validation_error("llm_extractor: a category has an empty name");
  }

  llm_extractor(llm_extractor&&) noexcept = default;
  llm_extractor& operator=(llm_extractor&&) noexcept = default;

  /// The facts worth remembering in `messages`. @throws provider_error.
  [[nodiscard]] std::vector<fact> extract(std::span<const message> messages, const extraction_context& ctx) const {
    if (ctx.request.procedural) return summarize_run(messages, ctx);
    const bool agent_memory = ctx.scope.user_id.empty() && !ctx.scope.agent_id.empty();
    const std::string source_role = agent_memory ? "assistant" : "user";
    std::string conversation;
    std::string actor;
    bool one_actor = true, any = false;
    for (const auto& m : messages) {
      if (m.role == "system" || detail::trimmed(m.content).empty()) continue;
      conversation += m.role;
      if (!m.name.empty()) conversation += " (" + m.name + ")";
      conversation += ": " + m.content + "\n";
      if (m.role != source_role) continue;
      if (!any) actor = m.name;
      one_actor = one_actor && m.name == actor;
      any = true;
    }
    if (!any) return {};

    const auto& req = ctx.request;
    auto joined = [](std::vector<std::string> a, const std::vector<std::string>& b) {
      a.insert(a.end(), b.begin(), b.end());
      return a;
    };
    auto categories = opts_.categories;
    categories.insert(categories.end(), req.categories.begin(), req.categories.end());
    std::string instructions = opts_.custom_instructions;
    if (!req.custom_instructions.empty())
      instructions += (instructions.empty() ? "" : "\n") + req.custom_instructions;
    const timestamp said = ctx.when.value_or(utc_now());
    fact_prompt_parts parts{agent_memory,
                            opts_.mode == extraction_mode::additive,
                            std::move(instructions),
                            joined(opts_.includes, req.includes),
                            joined(opts_.excludes, req.excludes),
                            categories,
                            detail::day_text(said)};
    const std::string& base = !req.prompt.empty() ? req.prompt : opts_.fact_prompt;
    const std::string system = compose_fact_prompt(base.empty() ? default_fact_prompt(agent_memory) : base, parts);
    const auto reply = chat(system, "Conversation:\n" + conversation);
    if (!reply || !reply->contains("facts") || !(*reply)["facts"].is_array()) {
      note_unparseable("facts");
      return {};
    }

    std::vector<fact> out;
    for (const auto& item : (*reply)["facts"]) {
      if (out.size() >= opts_.max_facts) break;
      std::string text;
      nlohmann::json metadata = nlohmann::json::object();
      std::optional<timestamp> valid_from;
      if (item.is_string()) {
        text = detail::trimmed(item.get<std::string>());
      } else if (item.is_object()) {
        for (const char* key : {"text", "fact", "memory"})
          if (item.contains(key) && item[key].is_string()) {
            text = detail::trimmed(item[key].get<std::string>());
            break;
          }
        if (auto cats = chosen_categories(item, categories); !cats.empty()) metadata["categories"] = std::move(cats);
        if (item.contains("valid_from")) valid_from = fact_date(item["valid_from"], said);
      }
      if (text.empty()) continue;
      out.push_back(fact{std::move(text), source_role, one_actor ? actor : std::string(), std::move(metadata),
                         valid_from});
    }
    return out;
  }

  /// ADD / UPDATE / DELETE / NONE for `facts`, given the existing memories near each. @throws provider_error.
  [[nodiscard]] std::vector<memory_action> decide(std::span<const fact> facts,
                                                  std::span<const std::vector<existing_memory>> neighbours,
                                                  const extraction_context& ctx) const {
    // Short ids for the distinct neighbours, in order of first appearance.
    std::vector<const existing_memory*> shown;
    std::unordered_map<std::string, std::size_t> seen;
    for (const auto& list : neighbours)
      for (const auto& n : list)
        if (seen.emplace(n.id, shown.size()).second) shown.push_back(&n);

    if (opts_.mode == extraction_mode::additive || shown.empty() || ctx.request.procedural)
      return verbatim_extractor{}.decide(facts, neighbours, ctx);  // add unless the exact text is known

    nlohmann::json existing = nlohmann::json::array();
    for (std::size_t i = 0; i < shown.size(); ++i) {
      existing.push_back({{"id", std::to_string(i)}, {"text", shown[i]->memory}});
      if (shown[i]->valid_from != timestamp{}) existing.back()["since"] = detail::day_text(shown[i]->valid_from);
    }
    const auto new_facts = dated_facts(facts, neighbours, seen, ctx.when.value_or(utc_now()));
    const std::string user =
        "Existing memories:\n" + existing.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) +
        "\n\nNew facts:\n" + new_facts.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
    const auto reply = chat(opts_.update_prompt.empty() ? default_update_prompt() : opts_.update_prompt, user);
    if (!reply || !reply->contains("memory") || !(*reply)["memory"].is_array()) {
      note_unparseable("memory");
      return {};
    }

    // The memory the model names by a short id we showed, if it does.
    auto shown_memory = [&](const std::string& short_id) -> const existing_memory* {
      const bool numeric = !short_id.empty() && short_id.size() < 10 &&
                           std::all_of(short_id.begin(), short_id.end(), [](char c) { return c >= '0' && c <= '9'; });
      return numeric && std::stoul(short_id) < shown.size() ? shown[std::stoul(short_id)] : nullptr;
    };
    std::vector<memory_action> out;
    for (const auto& item : (*reply)["memory"]) {
      if (!item.is_object() || !item.contains("event") || !item["event"].is_string()) continue;
      std::string text = item.contains("text") && item["text"].is_string()
                             ? detail::trimmed(item["text"].get<std::string>())
                             : std::string();
      const std::string short_id = item.contains("id") ? detail::id_text(item["id"]) : std::string();
      event_kind ev{};
      try {
        ev = parse_event_kind(detail::trimmed(item["event"].get<std::string>()));
      } catch (const validation_error&) {
        // an event we do not know changes nothing, and is reported (add_result::skipped)
        ++stats_->unknown_events;
        memory_action a{event_kind::none, std::move(text), {}, static_cast<std::size_t>(-1)};
        if (const auto* m = shown_memory(short_id)) a.target_id = m->id;
        a.skip_reason = "the model answered event '" + detail::excerpt(item["event"].get<std::string>(), 40) +
                        "', not one of ADD, UPDATE, DELETE, NONE";
        out.push_back(std::move(a));
        continue;
      }
      std::string target;
      if (ev != event_kind::add) {
        if (const auto* m = shown_memory(short_id)) {
          target = m->id;
        } else if (ev != event_kind::none) {
          target = std::string(invented_id_prefix) + (short_id.empty() ? std::string("(none)") : short_id);
          ++stats_->invented_ids;
        }
      }
      memory_action a{ev, {}, std::move(target), static_cast<std::size_t>(-1)};
      if (ev == event_kind::add || ev == event_kind::update) {
        a.fact_index = detail::closest_fact(facts, text);
        a.text = std::move(text);
      }
      if (ev == event_kind::update) {
        const auto c = item.find("correction");
        a.correction = c != item.end() && c->is_boolean() && c->get<bool>();
      }
      if (ev == event_kind::none && a.target_id.empty()) continue;
      out.push_back(std::move(a));
    }
    return out;
  }

  /// The entities and relations of `texts` (one item each, in order), in one call, when this add asks for them
  /// (ctx.request.entities, else options().entities); nullopt otherwise, or for no texts.
  /// @throws provider_error for a transport failure or a reply parse_entity_reply refuses.
  [[nodiscard]] std::optional<std::vector<recognized_entities>> entities_of(std::span<const std::string> texts,
                                                                            const extraction_context& ctx) const {
    if (texts.empty() || !ctx.request.entities.value_or(opts_.entities)) return std::nullopt;
    const auto reply = chat(opts_.entity_prompt.empty() ? default_entity_prompt() : opts_.entity_prompt,
                            entity_call_input(texts));
    if (!reply) {
      ++stats_->unparseable;
      throw provider_error("llm_extractor: the entity reply of model '" + opts_.model + "' holds no JSON object");
    }
    return parse_entity_reply(*reply, texts.size());
  }

  /// What this extractor has done so far.
  [[nodiscard]] llm_extractor_stats stats() const noexcept {
    return {stats_->calls.load(), stats_->unparseable.load(), stats_->invented_ids.load(),
            stats_->unknown_events.load(), stats_->bad_dates.load()};
  }
  [[nodiscard]] const http_transport& transport() const noexcept { return transport_; }
  [[nodiscard]] const llm_extractor_options& options() const noexcept { return opts_; }

 private:
  struct counters {
    std::atomic<std::uint64_t> calls{0}, unparseable{0}, invented_ids{0}, unknown_events{0}, bad_dates{0};
  };

  /// A fact's valid_from as the model wrote it, if usable: an ISO-8601 date or date-time no later than `said`
  /// (a fact is stated once it is true; a later date is a plan, not a start). Null or "" is no date.
  std::optional<timestamp> fact_date(const nlohmann::json& j, timestamp said) const {
    if (j.is_null() || (j.is_string() && detail::trimmed(j.get<std::string>()).empty())) return std::nullopt;
    const auto t = j.is_string() ? try_parse_iso8601(detail::trimmed(j.get<std::string>())) : std::nullopt;
    if (t && *t <= said) return t;
    ++stats_->bad_dates;
    return std::nullopt;
  }

  /// The new facts as the reconcile call shows them: text, the day each holds from (its valid_from, else the
  /// conversation's day), and which of its shown neighbours (short ids in `ids`) are dated before or after it.
  /// Days are compared, as shown; a neighbour of unknown age (valid_from the epoch) is in neither list.
  static nlohmann::json dated_facts(std::span<const fact> facts,
                                    std::span<const std::vector<existing_memory>> neighbours,
                                    const std::unordered_map<std::string, std::size_t>& ids, timestamp said) {
    using std::chrono::days;
    nlohmann::json out = nlohmann::json::array();
    for (std::size_t i = 0; i < facts.size(); ++i) {
      const auto since = facts[i].valid_from.value_or(said);
      nlohmann::json f{{"text", facts[i].text}, {"since", detail::day_text(since)}};
      nlohmann::json newer = nlohmann::json::array(), older = nlohmann::json::array();
      if (i < neighbours.size())
        for (const auto& n : neighbours[i]) {
          if (n.valid_from == timestamp{}) continue;
          const auto a = std::chrono::floor<days>(n.valid_from), b = std::chrono::floor<days>(since);
          if (a != b) (a < b ? newer : older).push_back(std::to_string(ids.at(n.id)));
        }
      if (!newer.empty()) f["newer_than"] = std::move(newer);
      if (!older.empty()) f["older_than"] = std::move(older);
      out.push_back(std::move(f));
    }
    return out;
  }

  /// A procedural add: the whole run (every role) summarised into one fact. @throws provider_error.
  std::vector<fact> summarize_run(std::span<const message> messages, const extraction_context& ctx) const {
    std::string run;
    for (const auto& m : messages) {
      if (detail::trimmed(m.content).empty()) continue;
      run += m.role + (m.name.empty() ? std::string() : " (" + m.name + ")") + ": " + m.content + "\n";
    }
    if (run.empty()) return {};
    std::string system = ctx.request.prompt.empty() ? default_procedural_prompt() : ctx.request.prompt;
    for (const auto* extra : {&opts_.custom_instructions, &ctx.request.custom_instructions})
      if (!extra->empty()) system += "\n\nAdditional instructions from the application:\n" + *extra;
    const auto reply = chat(system, "Run:\n" + run);
    if (!reply || !reply->contains("procedure") || !(*reply)["procedure"].is_string() ||
        detail::trimmed((*reply)["procedure"].get<std::string>()).empty()) {
      note_unparseable("procedure");
      return {};
    }
    return {fact{detail::trimmed((*reply)["procedure"].get<std::string>()), "assistant", std::string(),
                 nlohmann::json{{"memory_type", "procedural_memory"}}}};
  }

  /// One chat completion; the JSON object in its reply, if any.
  std::optional<nlohmann::json> chat(const std::string& system, const std::string& user) const {
    nlohmann::json body{{"model", opts_.model},
                        {"messages", nlohmann::json::array({{{"role", "system"}, {"content", system}},
                                                            {{"role", "user"}, {"content", user}}})},
                        {"temperature", opts_.temperature}};
    if (opts_.json_mode) body["response_format"] = {{"type", "json_object"}};
    if (opts_.max_tokens) body["max_tokens"] = opts_.max_tokens;
    ++stats_->calls;
    const auto reply = transport_.post_json("/chat/completions", body);
    const auto* content =
        reply.is_object() && reply.contains("choices") && reply["choices"].is_array() && !reply["choices"].empty() &&
                reply["choices"][0].is_object() && reply["choices"][0].contains("message") &&
                reply["choices"][0]["message"].is_object() && reply["choices"][0]["message"].contains("content")
            ? &reply["choices"][0]["message"]["content"]
            : nullptr;
    if (!content || !content->is_string()) return std::nullopt;
    return parse_json_reply(content->get_ref<const std::string&>());
  }

  /// Counts a reply without the expected JSON; throws when so configured.
  void note_unparseable(std::string_view expected) const {
    ++stats_->unparseable;
    if (opts_.throw_on_unparseable)
      throw provider_error("llm_extractor: the reply of model '" + opts_.model + "' holds no JSON object with the '" +
                           std::string(expected) + "' it was asked for");
  }

  /// The offered `categories` `item` names (case-insensitive), spelled as offered.
  [[nodiscard]] static std::vector<std::string> chosen_categories(const nlohmann::json& item,
                                                                  const std::vector<memory_category>& categories) {
    std::vector<std::string> out;
    if (categories.empty() || !item.contains("categories")) return out;
    const auto& c = item["categories"];
    auto consider = [&](const nlohmann::json& x) {
      if (!x.is_string()) return;
      const auto want = detail::fold_words(x.get<std::string>());
      for (const auto& cat : categories)
        if (detail::fold_words(cat.name) == want && std::find(out.begin(), out.end(), cat.name) == out.end())
          out.push_back(cat.name);
    };
    if (c.is_array())
      for (const auto& x : c) consider(x);
    else
      consider(c);
    return out;
  }

  llm_extractor_options opts_;
  http_transport transport_;
  std::unique_ptr<counters> stats_ = std::make_unique<counters>();
};

}  // namespace engram::inline v0
