#pragma once
/// @file text/stem.hpp
/// A light English stemmer: the plural and -ed/-ing rules of Porter's step 1 (1a and 1b), enough to
/// bring "hikes", "hiking" and "hiked" to "hike" without the over-stemming of the full algorithm.
/// Words with non-ASCII bytes or digits are returned unchanged.

#include <cstddef>
#include <string>
#include <string_view>

namespace engram::inline v0::detail {

inline bool stem_is_consonant(std::string_view w, std::size_t i) noexcept {
  switch (w[i]) {
    case 'a': case 'e': case 'i': case 'o': case 'u': return false;
    case 'y': return i == 0 || !stem_is_consonant(w, i - 1);
    default: return true;
  }
}

/// Porter's measure: the number of vowel-consonant sequences in w.
inline int stem_measure(std::string_view w) noexcept {
  int m = 0;
  std::size_t i = 0;
  const std::size_t n = w.size();
  while (i < n && stem_is_consonant(w, i)) ++i;
  while (i < n) {
    while (i < n && !stem_is_consonant(w, i)) ++i;
    if (i >= n) break;
    while (i < n && stem_is_consonant(w, i)) ++i;
    ++m;
  }
  return m;
}

inline bool stem_has_vowel(std::string_view w) noexcept {
  for (std::size_t i = 0; i < w.size(); ++i)
    if (!stem_is_consonant(w, i)) return true;
  return false;
}

/// consonant-vowel-consonant at the end, the last not w, x or y ("hop", not "snow").
inline bool stem_ends_cvc(std::string_view w) noexcept {
  const std::size_t n = w.size();
  if (n < 3) return false;
  const char last = w[n - 1];
  return stem_is_consonant(w, n - 3) && !stem_is_consonant(w, n - 2) && stem_is_consonant(w, n - 1) &&
         last != 'w' && last != 'x' && last != 'y';
}

/// Stems `w` in place (see the file comment); the string's buffer is reused, so a short word costs no allocation.
inline void light_stem_in_place(std::string& w) {
  if (w.size() <= 3) return;
  for (const char c : w)
    if (c < 'a' || c > 'z') return;
  auto ends = [&](std::string_view suf) { return w.size() >= suf.size() && w.compare(w.size() - suf.size(), suf.size(), suf) == 0; };
  // step 1a: plurals
  if (ends("sses")) {
    w.resize(w.size() - 2);
  } else if (ends("ies")) {
    w.resize(w.size() - 2);
  } else if (!ends("ss") && !ends("us") && !ends("is") && ends("s")) {
    w.pop_back();
  }
  // step 1b: -eed, -ed, -ing
  if (ends("eed")) {
    if (stem_measure(std::string_view(w).substr(0, w.size() - 3)) > 0) w.pop_back();
    return;
  }
  std::size_t cut = 0;
  if (ends("ed")) cut = 2;
  else if (ends("ing")) cut = 3;
  if (cut && w.size() - cut >= 2 && stem_has_vowel(std::string_view(w).substr(0, w.size() - cut))) {
    w.resize(w.size() - cut);
    if (ends("at") || ends("bl") || ends("iz")) {
      w.push_back('e');
    } else if (w.size() >= 2 && w[w.size() - 1] == w[w.size() - 2] && stem_is_consonant(w, w.size() - 1) &&
               w.back() != 'l' && w.back() != 's' && w.back() != 'z') {
      w.pop_back();
    } else if (stem_measure(w) == 1 && stem_ends_cvc(w)) {
      w.push_back('e');
    }
  }
}

inline std::string light_stem(std::string_view word) {
  std::string w(word);
  light_stem_in_place(w);
  return w;
}

}  // namespace engram::inline v0::detail
