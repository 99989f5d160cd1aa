#pragma once
/// @file extract/any_extractor.hpp
/// any_extractor: a fact extractor chosen at run time (verbatim, an LLM, ...), behind one type.

#include <engram/capabilities.hpp>
#include <engram/concepts.hpp>
#include <engram/extract/actions.hpp>
#include <engram/extract/verbatim.hpp>

#include <concepts>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace engram::inline v0 {

/// Holds any type satisfying `fact_extractor` and forwards extract(), decide() and, when it has it, entities_of()
/// to it, so that `basic_memory<..., any_extractor>` can be given its extractor at run time.
///
/// Default-constructed it wraps `verbatim_extractor{}` (the offline default). Move-only. Thread-safety:
/// that of the wrapped extractor (basic_memory calls it from several threads at once; the wrapper adds no
/// state). Cost: one indirect call per call.
class any_extractor {
 public:
  /// The offline default, verbatim_extractor{}.
  any_extractor() : any_extractor(verbatim_extractor{}) {}

  /// Wraps `x` (moved in).
  template <class X>
    requires(!std::same_as<std::remove_cvref_t<X>, any_extractor> && fact_extractor<std::remove_cvref_t<X>>)
  any_extractor(X&& x)  // NOLINT(google-explicit-constructor): wrapping is the point
      : impl_(std::make_unique<model<std::remove_cvref_t<X>>>(std::forward<X>(x))) {}

  any_extractor(any_extractor&&) noexcept = default;
  any_extractor& operator=(any_extractor&&) noexcept = default;

  /// The wrapped extractor's facts for `messages`.
  [[nodiscard]] std::vector<fact> extract(std::span<const message> messages, const extraction_context& ctx) {
    return impl_->extract(messages, ctx);
  }
  /// The wrapped extractor's decisions for `facts` given their neighbours.
  [[nodiscard]] std::vector<memory_action> decide(std::span<const fact> facts,
                                                  std::span<const std::vector<existing_memory>> neighbours,
                                                  const extraction_context& ctx) {
    return impl_->decide(facts, neighbours, ctx);
  }

  /// The wrapped extractor's entities of `texts` (see entity_extractor); nullopt when it names none.
  [[nodiscard]] std::optional<std::vector<recognized_entities>> entities_of(std::span<const std::string> texts,
                                                                            const extraction_context& ctx) {
    return impl_->entities_of(texts, ctx);
  }

  /// The wrapped extractor when it is an `X`, else nullptr (as std::function::target).
  template <class X>
  [[nodiscard]] const X* target() const noexcept {
    auto* m = dynamic_cast<const model<X>*>(impl_.get());
    return m ? &m->value : nullptr;
  }

 private:
  struct concept_t {
    virtual ~concept_t() = default;
    virtual std::vector<fact> extract(std::span<const message>, const extraction_context&) = 0;
    virtual std::vector<memory_action> decide(std::span<const fact>, std::span<const std::vector<existing_memory>>,
                                              const extraction_context&) = 0;
    virtual std::optional<std::vector<recognized_entities>> entities_of(std::span<const std::string>,
                                                                        const extraction_context&) = 0;
  };
  template <class X>
  struct model final : concept_t {
    explicit model(X x) : value(std::move(x)) {}
    std::vector<fact> extract(std::span<const message> messages, const extraction_context& ctx) override {
      return value.extract(messages, ctx);
    }
    std::vector<memory_action> decide(std::span<const fact> facts,
                                      std::span<const std::vector<existing_memory>> neighbours,
                                      const extraction_context& ctx) override {
      return value.decide(facts, neighbours, ctx);
    }
    std::optional<std::vector<recognized_entities>> entities_of(std::span<const std::string> texts,
                                                                const extraction_context& ctx) override {
      if constexpr (entity_extractor<X>)
        return value.entities_of(texts, ctx);
      else
        return std::nullopt;
    }
    X value;
  };

  std::unique_ptr<concept_t> impl_;
};

}  // namespace engram::inline v0
