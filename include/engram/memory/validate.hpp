#pragma once
/// @file memory/validate.hpp
/// The checks every basic_memory call makes on its input before anything else runs: texts, metadata, message
/// counts, scopes, search limits and weights. Each throws validation_error naming the bad value and the limit.

#include <engram/error.hpp>
#include <engram/filter/eval.hpp>
#include <engram/filter/expr.hpp>
#include <engram/memory/options.hpp>
#include <engram/rank/expiry.hpp>
#include <engram/rank/fusion.hpp>
#include <engram/record.hpp>
#include <engram/scope.hpp>
#include <engram/scope_keys.hpp>
#include <engram/text/utf8.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace engram::inline v0::detail {

/// True when `s` holds nothing but white space.
inline bool is_blank(std::string_view s) noexcept { return s.find_first_not_of(" \t\r\n") == std::string_view::npos; }

/// The input rules of one memory, from its memory_limits and its scope key set.
class input_rules {
 public:
  using key_check = void (*)(const engram::scope&, std::string_view);

  /// `walls`: the key set has tenant keys, so a read whose scope the filter names stays in the scope's tenant
  /// (the empty one too); without, such a read spans every scope the filter names.
  explicit input_rules(const memory_limits& limits, key_check keys = &validate_scope_keys<mem0_scope_keys>,
                       bool walls = false) noexcept
      : limits_(&limits), keys_(keys), walls_(walls) {}

  /// A scope given to an operation: at least one id, each well-formed, each key one of the key set's.
  void check_scope(const engram::scope& s, std::string_view op) const {
    validate_scope(s, op);
    keys_(s, op);
  }

  /// A read's scope or the filter standing in for it (see detail::scope_or_filter), keys checked.
  const engram::scope* scope_or_filter(const engram::scope& s, const filter_expr& f, std::string_view op) const;

  /// A read whose filter alone names its scopes: null (every scope it names), or with walls the empty tenant's.
  const engram::scope* filter_only(const filter_expr& f, std::string_view op) const;

  /// A text stored or searched for: at most max_text_bytes, valid UTF-8.
  void text(std::string_view text, const std::string& what) const {
    if (text.size() > limits_->max_text_bytes)
      throw validation_error(what + " is " + std::to_string(text.size()) + " bytes; at most " +
                             std::to_string(limits_->max_text_bytes) + " are allowed");
    if (!is_valid_utf8(text)) throw validation_error(what + " is not valid UTF-8");
  }

  /// Metadata: a JSON object without identity keys, at most max_metadata_bytes as compact JSON.
  void metadata(const nlohmann::json& m, std::string_view op) const {
    if (!m.is_object())
      throw validation_error(std::string(op) + ": metadata must be a JSON object, got " + m.type_name());
    for (const char* key : {"user_id", "agent_id", "run_id", "actor_id", "role"})
      if (m.contains(key))
        throw validation_error(std::string(op) + ": metadata must not contain '" + key +
                               "': identity comes from the scope and the messages, never from metadata");
    std::string dumped;
    try {
      dumped = m.dump();
    } catch (const nlohmann::json::exception& e) {
      throw validation_error(std::string(op) + ": metadata is not serialisable: " + e.what());
    }
    if (dumped.size() > limits_->max_metadata_bytes)
      throw validation_error(std::string(op) + ": metadata is " + std::to_string(dumped.size()) +
                             " bytes; at most " + std::to_string(limits_->max_metadata_bytes) + " are allowed");
  }

  /// An add (or add_async): scope, metadata, expiration date, message count and every message's text.
  void add(std::span<const message> messages, const engram::scope& s, const add_options& options,
           std::string_view op) const {
    check_scope(s, op);
    metadata(options.metadata, op);
    if (options.expiration_date) (void)parse_expiration_day(*options.expiration_date);
    if (messages.size() > limits_->max_messages)
      throw validation_error(std::string(op) + ": " + std::to_string(messages.size()) + " messages; at most " +
                             std::to_string(limits_->max_messages) + " per call");
    for (std::size_t i = 0; i < messages.size(); ++i)
      text(messages[i].content, std::string(op) + ": messages[" + std::to_string(i) + "].content");
    if (options.extraction.procedural && s.agent_id.empty())
      throw validation_error(std::string(op) + ": procedural memory summarises an agent's run: give an agent_id");
  }

  /// An update: something to change; the new text (not empty), the metadata patch and the expiration date
  /// when given.
  void update(const update_options& options) const {
    if (!options.text && !options.metadata && !options.expiration_date && !options.timestamp)
      throw validation_error("update: nothing to change: give a text, metadata, an expiration_date or a timestamp");
    if (options.text) {
      text(*options.text, "update: text");
      if (is_blank(*options.text)) throw validation_error("update: text is empty");
    }
    if (options.metadata) metadata(*options.metadata, "update");
    if (options.expiration_date && !options.expiration_date->empty())
      (void)parse_expiration_day(*options.expiration_date);
  }

  /// A search: the query (not empty), the limit (1 to max_limit) and the ranking weights.
  void search(std::string_view query, const search_options& options) const {
    text(query, "search: query");
    if (is_blank(query)) throw validation_error("search: query is empty");
    if (options.limit == 0 || options.limit > limits_->max_limit)
      throw validation_error("search: limit " + std::to_string(options.limit) + " is out of range (1 to " +
                             std::to_string(limits_->max_limit) + ")");
    validate_weights(options.weights);
  }

  /// Whether an action's text may be stored (an extractor's output is checked, never trusted).
  [[nodiscard]] bool storable(std::string_view t) const noexcept {
    return !is_blank(t) && t.size() <= limits_->max_text_bytes && is_valid_utf8(t);
  }

 private:
  const memory_limits* limits_;
  key_check keys_;
  bool walls_;
};

/// The scope a read covers: `&s` when `s` names one; when `s` names no id and `f` names the scopes it selects
/// (see filter_names_scope), null, or `&s` when `s` has a tenant (the filter's scopes within that tenant only).
/// @throws validation_error when neither names a scope.
inline const scope* scope_or_filter(const scope& s, const filter_expr& f, std::string_view op) {
  if (s.empty() && !f.empty() && filter_names_scope(f)) {
    if (s.tenant.empty()) return nullptr;
    detail::validate_scope_lines(s.tenant, "tenant", op);
    return &s;
  }
  validate_scope(s, op);
  return &s;
}

inline void require_filter_scope(const filter_expr& f, std::string_view op);

inline const scope* input_rules::scope_or_filter(const engram::scope& s, const filter_expr& f, std::string_view op) const {
  const auto* covered = detail::scope_or_filter(s, f, op);
  keys_(s, op);
  return covered || !walls_ ? covered : &s;
}

inline const scope* input_rules::filter_only(const filter_expr& f, std::string_view op) const {
  static const engram::scope no_tenant{};
  require_filter_scope(f, op);
  return walls_ ? &no_tenant : nullptr;
}

/// @throws validation_error when `f` does not name the scopes it selects.
inline void require_filter_scope(const filter_expr& f, std::string_view op) {
  if (!filter_names_scope(f))
    throw validation_error(std::string(op) +
                           ": a scope is required: pass one, or name user_id, agent_id or run_id in the filter "
                           "with eq or in (in every OR branch)");
}

}  // namespace engram::inline v0::detail
