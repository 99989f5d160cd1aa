#pragma once
/// @file text/tokenize.hpp
/// The keyword index's text normalisation: UTF-8 aware word splitting, lowercasing (ASCII, Latin-1 and
/// Latin Extended-A), English stop words, abbreviation and spelling-variant folding, and the light stemmer of
/// detail/stem.hpp.

#include <engram/text/stem.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace engram::inline v0 {

namespace detail {

/// Decodes one code point at s[i] (advancing i). Invalid bytes decode as U+FFFD and advance by one.
inline char32_t next_code_point(std::string_view s, std::size_t& i) noexcept {
  const auto c = static_cast<unsigned char>(s[i]);
  std::size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
  if (len == 0 || i + len > s.size()) {
    ++i;
    return 0xfffd;
  }
  char32_t cp = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
  for (std::size_t j = 1; j < len; ++j) {
    const auto b = static_cast<unsigned char>(s[i + j]);
    if ((b & 0xc0) != 0x80) {
      ++i;
      return 0xfffd;
    }
    cp = (cp << 6) | (b & 0x3f);
  }
  i += len;
  return cp;
}

inline void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

/// True for code points that belong inside a word: ASCII letters and digits, and every non-ASCII code point
/// except the Latin-1 symbols (U+0080–U+00BF, ×, ÷), general punctuation (U+2000–U+206F), CJK punctuation
/// (U+3000–U+303F), full-width ASCII punctuation and U+FFFD.
constexpr bool is_word_code_point(char32_t cp) noexcept {
  if (cp < 0x80)
    return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9');
  if (cp < 0xc0 || cp == 0xd7 || cp == 0xf7) return false;
  if (cp >= 0x2000 && cp <= 0x206f) return false;
  if (cp >= 0x3000 && cp <= 0x303f) return false;
  if (cp >= 0xff01 && cp <= 0xff0f) return false;
  return cp != 0xfffd;
}

/// Lowercase of ASCII, Latin-1 (À–Þ except ×) and Latin Extended-A capitals; other code points unchanged.
constexpr char32_t to_lower_code_point(char32_t cp) noexcept {
  if (cp >= 'A' && cp <= 'Z') return cp + 32;
  if (cp >= 0xc0 && cp <= 0xde && cp != 0xd7) return cp + 32;
  if (cp >= 0x100 && cp <= 0x17f) {
    if (cp == 0x130) return 'i';  // İ
    if (cp == 0x178) return 0xff;  // Ÿ
    const bool odd_capitals = (cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17e);
    if (cp == 0x138 || cp == 0x149 || cp == 0x17f) return cp;  // ĸ, ŉ, ſ: no case pair
    if (odd_capitals ? (cp % 2 == 1) : (cp % 2 == 0)) return cp + 1;
  }
  return cp;
}

}  // namespace detail

/// English function words that carry no retrieval signal (compared after lowercasing, before stemming),
/// including the apostrophe-less contractions split_words makes of "what's", "don't", "I've", ...
inline bool is_keyword_stop_word(std::string_view w) noexcept {
  static constexpr std::array<std::string_view, 92> stop = {
      "a", "about", "am", "an", "and", "are", "arent", "as", "at", "be", "been", "but", "by", "can", "cant",
      "did", "didnt", "do", "does", "doesnt", "dont", "for", "from", "had", "has", "have", "he", "her", "hes",
      "him", "his", "how", "hows", "i", "if", "im", "in", "is", "isnt", "it", "its", "ive", "lets", "me",
      "mine", "my", "of", "on", "or", "our", "she", "shes", "so", "that", "thats", "the", "their", "them",
      "then", "there", "theres", "these", "they", "theyre", "theyve", "this", "those", "to", "us", "was",
      "wasnt", "we", "were", "weve", "what", "whats", "when", "whens", "where", "wheres", "which", "who",
      "whos", "will", "with", "wont", "would", "you", "your", "youre", "yours", "youve"};
  static_assert(std::is_sorted(stop.begin(), stop.end()), "binary search needs the list sorted");
  constexpr std::size_t longest = 6;
  return w.size() <= longest && std::binary_search(stop.begin(), stop.end(), w);
}

namespace detail {

/// One entry of a word table: `from` is read as `to`.
struct word_mapping {
  std::string_view from, to;
};

inline constexpr std::array<word_mapping, 52> british_roots = {{
    {"aeroplane", "airplane"}, {"aluminium", "aluminum"}, {"apologis", "apologiz"}, {"armour", "armor"},
    {"behaviour", "behavior"}, {"calibre", "caliber"},     {"cancell", "cancel"},     {"catalogue", "catalog"},
    {"centre", "center"},       {"cheque", "check"},        {"colour", "color"},       {"defence", "defense"},
    {"dialogue", "dialog"},     {"endeavour", "endeavor"},  {"favour", "favor"},       {"fibre", "fiber"},
    {"flavour", "flavor"},      {"grey", "gray"},           {"harbour", "harbor"},     {"honour", "honor"},
    {"humour", "humor"},        {"jewellery", "jewelry"},   {"labour", "labor"},       {"licence", "license"},
    {"litre", "liter"},         {"manoeuvre", "maneuver"},  {"metre", "meter"},        {"mould", "mold"},
    {"moustache", "mustache"},  {"mum", "mom"},             {"neighbour", "neighbor"}, {"odour", "odor"},
    {"offence", "offense"},     {"organis", "organiz"},     {"parlour", "parlor"},     {"plough", "plow"},
    {"practis", "practic"},     {"programme", "program"},   {"pyjama", "pajama"},      {"realis", "realiz"},
    {"recognis", "recogniz"},   {"rumour", "rumor"},        {"savour", "savor"},       {"sceptic", "skeptic"},
    {"theatre", "theater"},     {"travell", "travel"},      {"tumour", "tumor"},       {"tyre", "tire"},
    {"vapour", "vapor"},        {"vigour", "vigor"},        {"yoghurt", "yogurt"},     {"paediatric", "pediatric"},
}};

/// For each letter a-z, the british_roots starting with it (bit i: root i), so a word is compared with a few
/// roots at most.
inline constexpr auto british_roots_by_letter = [] {
  static_assert(british_roots.size() <= 64);
  std::array<std::uint64_t, 26> bits{};
  for (std::size_t i = 0; i < british_roots.size(); ++i)
    bits[static_cast<std::size_t>(british_roots[i].from[0] - 'a')] |= std::uint64_t{1} << i;
  return bits;
}();

/// British spellings folded to American ones so either matches the other: a word that is one of these roots
/// followed by nothing or one of the usual endings ("colours", "favourite", "centres", "organised").
inline void fold_spelling_in_place(std::string& w) {
  static constexpr std::array<std::string_view, 18> endings = {
      "", "s", "e", "es", "ed", "ing", "er", "ers", "ite", "ites", "ful", "able", "ation", "ations", "al", "ist", "ists", "y"};
  if (w.empty() || w[0] < 'a' || w[0] > 'z') return;
  for (auto bits = british_roots_by_letter[static_cast<std::size_t>(w[0] - 'a')]; bits != 0; bits &= bits - 1) {
    const auto& [british, american] = british_roots[static_cast<std::size_t>(std::countr_zero(bits))];
    if (w.size() < british.size() || w.compare(0, british.size(), british) != 0) continue;
    const std::string_view rest = std::string_view(w).substr(british.size());
    for (const auto e : endings)
      if (rest == e) {
        w.replace(0, british.size(), american);
        return;
      }
  }
}

inline std::string fold_spelling(std::string w) {
  fold_spelling_in_place(w);
  return w;
}

/// Common written abbreviations of a content word ("Dr." is "doctor"), expanded so that either form matches.
inline std::string_view expand_abbreviation(std::string_view w) noexcept {
  static constexpr std::array<word_mapping, 11> list = {{
      {"dr", "doctor"},       {"appt", "appointment"}, {"bday", "birthday"},   {"tmrw", "tomorrow"},
      {"mgr", "manager"},     {"dept", "department"},  {"govt", "government"}, {"pwd", "password"},
      {"approx", "approximately"}, {"msg", "message"}, {"hosp", "hospital"},
  }};
  for (const auto& [shortened, full] : list)
    if (w == shortened) return full;
  return w;
}

}  // namespace detail

namespace detail {

/// Calls f(std::string& word) for each lowercase word of `text` (the rules of split_words); f may change or
/// move from `word`. One buffer serves every word (an ASCII fast path; other bytes are decoded as UTF-8).
template <class F>
void for_each_word(std::string_view text, F&& f) {
  std::string cur;
  auto flush = [&] {
    if (cur.empty()) return;
    f(cur);
    cur.clear();
  };
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      ++i;
      if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
        cur.push_back(static_cast<char>(c));
      else if (c >= 'A' && c <= 'Z')
        cur.push_back(static_cast<char>(c + 32));
      else if (c != '\'' || cur.empty())
        flush();
      continue;
    }
    const char32_t cp = next_code_point(text, i);
    if (is_word_code_point(cp))
      append_utf8(cur, to_lower_code_point(cp));
    else if ((cp != '\'' && cp != 0x2019) || cur.empty())  // an overlong-encoded apostrophe is one too
      flush();
  }
  flush();
}

}  // namespace detail

/// Splits `text` into lowercase words (see detail::is_word_code_point; an apostrophe inside a word is
/// dropped, so "don't" is "dont"), without stop-word removal or stemming. Invalid UTF-8 bytes separate words.
/// O(bytes).
inline std::vector<std::string> split_words(std::string_view text) {
  std::vector<std::string> words;
  detail::for_each_word(text, [&](std::string& w) { words.push_back(std::move(w)); });
  return words;
}

/// The index terms of `text`: split_words, stop words removed, common abbreviations expanded ("dr" ->
/// "doctor"), British spellings folded to American ("favourite" -> "favorite"), each word lightly stemmed
/// (detail::light_stem: "hiking", "hikes", "hiked" -> "hike"). Order and repetitions are kept.
inline std::vector<std::string> keyword_terms(std::string_view text) {
  std::vector<std::string> out;
  detail::for_each_word(text, [&](std::string& w) {
    if (is_keyword_stop_word(w)) return;
    if (const auto full = detail::expand_abbreviation(w); full.data() != w.data()) w.assign(full);
    detail::fold_spelling_in_place(w);
    detail::light_stem_in_place(w);
    out.push_back(std::move(w));
  });
  return out;
}

}  // namespace engram::inline v0
