#pragma once
/// @file embed/any_embedder.hpp
/// any_embedder: an embedder chosen at run time (from a command line, a config file), behind one type.

#include <engram/concepts.hpp>
#include <engram/embed/hashing.hpp>

#include <concepts>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace engram::inline v0 {

/// Holds any type satisfying `embedder` and forwards to it, so that `basic_memory<any_embedder, ...>` can
/// be given its embedder at run time. `name()` and `embed_batch()` reach the wrapped embedder's own (its
/// recorded identity and its batching are kept); without them they fall back as basic_memory does
/// ("custom", one embed() per text).
///
/// Default-constructed it wraps `hashing_embedder{}` (the offline default). Move-only (the wrapped embedder
/// may be: HTTP embedders are). Thread-safety: that of the wrapped embedder (every call is const and
/// forwarded; the wrapper adds no state). Cost: one indirect call per call.
class any_embedder {
 public:
  /// The offline default, hashing_embedder{}.
  any_embedder() : any_embedder(hashing_embedder{}) {}

  /// Wraps `e` (moved in).
  template <class E>
    requires(!std::same_as<std::remove_cvref_t<E>, any_embedder> && embedder<std::remove_cvref_t<E>>)
  any_embedder(E&& e)  // NOLINT(google-explicit-constructor): wrapping is the point
      : impl_(std::make_unique<model<std::remove_cvref_t<E>>>(std::forward<E>(e))) {}

  any_embedder(any_embedder&&) noexcept = default;
  any_embedder& operator=(any_embedder&&) noexcept = default;

  /// The wrapped embedder's vector length (an HTTP embedder may make one call to learn it).
  [[nodiscard]] std::size_t dimension() const { return impl_->dimension(); }
  /// The wrapped embedder's identity ("custom" when it has no name()).
  [[nodiscard]] std::string name() const { return impl_->name(); }
  [[nodiscard]] std::vector<float> embed(std::string_view text) const { return impl_->embed(text); }
  /// The wrapped embedder's embed_batch, or one embed() per text when it has none.
  [[nodiscard]] std::vector<std::vector<float>> embed_batch(std::span<const std::string> texts) const {
    return impl_->embed_batch(texts);
  }

  /// The wrapped embedder when it is an `E`, else nullptr (as std::function::target).
  template <class E>
  [[nodiscard]] const E* target() const noexcept {
    auto* m = dynamic_cast<const model<E>*>(impl_.get());
    return m ? &m->value : nullptr;
  }

 private:
  struct concept_t {
    virtual ~concept_t() = default;
    virtual std::size_t dimension() const = 0;
    virtual std::string name() const = 0;
    virtual std::vector<float> embed(std::string_view) const = 0;
    virtual std::vector<std::vector<float>> embed_batch(std::span<const std::string>) const = 0;
  };
  template <class E>
  struct model final : concept_t {
    explicit model(E e) : value(std::move(e)) {}
    std::size_t dimension() const override { return static_cast<std::size_t>(value.dimension()); }
    std::string name() const override { return detail::embedder_name(value); }
    std::vector<float> embed(std::string_view text) const override { return value.embed(text); }
    std::vector<std::vector<float>> embed_batch(std::span<const std::string> texts) const override {
      return detail::embed_all(value, texts);
    }
    E value;
  };

  std::unique_ptr<const concept_t> impl_;
};

}  // namespace engram::inline v0
