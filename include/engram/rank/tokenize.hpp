#pragma once
/// @file rank/tokenize.hpp
/// The keyword index's text normalisation: UTF-8 aware word splitting, lowercasing (ASCII, Latin-1 and
/// Latin Extended-A), English stop words, abbreviation and spelling-variant folding, and the light stemmer of
/// detail/stem.hpp.

#include <engram/detail/stem.hpp>

#include <array>
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
      "a",     "about", "am",    "an",     "and",    "are",   "as",     "at",    "be",     "been",  "but",   "by",
      "can",   "did",   "do",    "does",   "for",    "from",  "had",    "has",   "have",   "he",    "her",   "him",
      "his",   "how",   "i",     "im",     "if",     "in",    "is",     "it",    "its",    "me",    "my",    "of",
      "on",    "or",    "our",   "she",    "so",     "that",  "the",    "their", "them",   "then",  "there", "they",
      "this",  "to",    "was",   "we",     "were",   "what",  "when",   "where", "which",  "who",   "will",  "with",
      "would", "you",   "your",  "yours",  "whats",  "whos",  "wheres", "whens", "hows",   "thats", "theres", "ive",
      "hes",   "shes",  "youre", "youve",  "dont",   "doesnt", "didnt", "isnt",  "arent",  "wasnt", "cant",  "wont",
      "theyre", "weve", "theyve", "lets",   "these",  "those", "us",     "mine"};
  for (const auto s : stop)
    if (s == w) return true;
  return false;
}

namespace detail {

/// One entry of a word table: `from` is read as `to`.
struct word_mapping {
  std::string_view from, to;
};

/// British spellings folded to American ones so either matches the other: a word that is one of these roots
/// followed by nothing or one of the usual endings ("colours", "favourite", "centres", "organised").
inline std::string fold_spelling(std::string w) {
  static constexpr std::array<word_mapping, 52> roots = {{
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
  static constexpr std::array<std::string_view, 18> endings = {
      "", "s", "e", "es", "ed", "ing", "er", "ers", "ite", "ites", "ful", "able", "ation", "ations", "al", "ist", "ists", "y"};
  for (const auto& [british, american] : roots) {
    if (w.size() < british.size() || w.compare(0, british.size(), british) != 0) continue;
    const std::string_view rest = std::string_view(w).substr(british.size());
    for (const auto e : endings)
      if (rest == e) return std::string(american) + std::string(rest);
  }
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

/// Splits `text` into lowercase words (see detail::is_word_code_point; an apostrophe inside a word is
/// dropped, so "don't" is "dont"), without stop-word removal or stemming. Invalid UTF-8 bytes separate words.
/// O(bytes).
inline std::vector<std::string> split_words(std::string_view text) {
  std::vector<std::string> words;
  std::string cur;
  std::size_t i = 0;
  while (i < text.size()) {
    const char32_t cp = detail::next_code_point(text, i);
    if (detail::is_word_code_point(cp)) {
      detail::append_utf8(cur, detail::to_lower_code_point(cp));
    } else if ((cp == '\'' || cp == 0x2019) && !cur.empty()) {
      continue;
    } else if (!cur.empty()) {
      words.push_back(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty()) words.push_back(std::move(cur));
  return words;
}

/// The index terms of `text`: split_words, stop words removed, common abbreviations expanded ("dr" ->
/// "doctor"), British spellings folded to American ("favourite" -> "favorite"), each word lightly stemmed
/// (detail::light_stem: "hiking", "hikes", "hiked" -> "hike"). Order and repetitions are kept.
inline std::vector<std::string> keyword_terms(std::string_view text) {
  auto words = split_words(text);
  std::vector<std::string> out;
  out.reserve(words.size());
  for (auto& w : words)
    if (!is_keyword_stop_word(w))
      out.push_back(detail::light_stem(detail::fold_spelling(std::string(detail::expand_abbreviation(w)))));
  return out;
}

}  // namespace engram::inline v0
