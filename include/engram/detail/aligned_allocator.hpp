#pragma once
/// @file detail/aligned_allocator.hpp
/// An allocator whose storage starts on an `Align`-byte boundary (64: a cache line, and the widest SIMD load).

#include <cstddef>
#include <new>

namespace engram::inline v0::detail {

template <class T, std::size_t Align = 64>
struct aligned_allocator {
  using value_type = T;
  template <class U>
  struct rebind {
    using other = aligned_allocator<U, Align>;
  };
  aligned_allocator() noexcept = default;
  template <class U>
  aligned_allocator(const aligned_allocator<U, Align>&) noexcept {}  // NOLINT: implicit by design

  [[nodiscard]] T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{Align}));
  }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, std::align_val_t{Align}); }

  template <class U>
  friend bool operator==(const aligned_allocator&, const aligned_allocator<U, Align>&) noexcept {
    return true;
  }
};

}  // namespace engram::inline v0::detail
