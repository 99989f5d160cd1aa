#pragma once
/// @file entity/recognizer.hpp
/// Entities and relations of a text with no model: the offline recogniser of entity memory. Deterministic
/// and English-centred, from the shape of the text alone:
/// - names: runs of capitalised words ("Maria Lopez", "Bank of Portugal": of/de/da/van/von/del/la/& join a run
///   between capitalised words); a possessive "'s" ends the name; a capitalised function word at the start of a
///   sentence ("The", "My", "When") and the pronoun "I" are not names; titles (Mr, Dr, ...) mark a person;
/// - organisations: a name ending in Inc, Ltd, Corp, Bank, University, Labs, ..., or named right after
///   "works at/for", "joined", "employed by";
/// - places: a name right after in, from, near, to, moved to, lives in, ...;
/// - people: a name after a title, or of two or more words not otherwise typed; other names keep type `name`;
/// - dates: ISO dates (2024-05-01), month names with an optional day and year ("March 2024", "12 May");
/// - handles: @handles and e-mail addresses; titles: short texts in double quotes.
/// Relations join two entities that follow each other in one sentence with one to six words between them
/// ("Maria works at Acme": Maria —works at→ Acme; "Acme's office is in Porto": Acme —office is in→ Porto).
/// Limits: a lone capitalised word opening a sentence before "from", "to", "me", "the", ... is taken for a
/// verb ("Call me"), so "Maria from sales" at the start of a sentence is missed; lowercase names ("maria") are found only as the name of a known entity (entity_index does that);
/// names in languages without capitals, nested quotes, and relations across sentences are not recognised.

#include <engram/entity/mentions.hpp>
#include <engram/text/tokenize.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace engram::inline v0 {

namespace detail {

struct entity_token {
  std::string text;
  std::size_t sentence = 0;
  bool word = false;        // letters/digits (else punctuation or a handle/quoted title already taken)
  bool capital = false;     // starts with an upper-case letter
  bool possessive = false;  // followed by 's
  bool sentence_start = false;
};

inline bool in_list(std::string_view w, std::initializer_list<std::string_view> list) noexcept {
  return std::find(list.begin(), list.end(), w) != list.end();
}

inline std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  return out;
}

inline int month_number(std::string_view lower) noexcept {
  static constexpr std::array<std::string_view, 12> months = {"january", "february", "march",     "april",
                                                              "may",     "june",     "july",      "august",
                                                              "september", "october", "november", "december"};
  for (std::size_t i = 0; i < months.size(); ++i)
    if (lower == months[i]) return static_cast<int>(i) + 1;
  return 0;
}

inline bool is_number(std::string_view s) noexcept {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

inline bool is_iso_date(std::string_view s) noexcept {
  return s.size() == 10 && s[4] == '-' && s[7] == '-' && is_number(s.substr(0, 4)) && is_number(s.substr(5, 2)) &&
         is_number(s.substr(8, 2));
}

/// Capitalised words that are not names at the start of a sentence (or anywhere, for "I").
inline bool is_function_word(std::string_view lower) noexcept {
  return is_keyword_stop_word(lower) ||
         in_list(lower, {"after", "before", "also", "yes", "no", "hi", "hello", "hey", "thanks", "today", "yesterday",
                         "tomorrow", "last", "next", "every", "just", "please", "maybe", "sometimes", "since", "until",
                         "while", "because", "although", "here", "why", "our", "ok", "okay", "sure", "well", "now",
                         "then", "once", "both", "each", "all", "some", "any", "not", "never", "always", "really",
                         "actually", "currently", "recently", "again", "oh", "dear", "good", "great", "may"}) ||
         in_list(lower, {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "mondays",
                         "tuesdays", "wednesdays", "thursdays", "fridays", "saturdays", "sundays"});
}

/// Splits `text` into tokens; handles, e-mail addresses and double-quoted titles are recognised here.
inline std::vector<entity_token> entity_tokens(std::string_view text, std::vector<entity_mention>& special) {
  std::vector<entity_token> out;
  std::size_t sentence = 0;
  bool at_start = true;
  std::size_t i = 0;
  auto word_char = [&](std::size_t k) {
    std::size_t j = k;
    return is_word_code_point(next_code_point(text, j));
  };
  while (i < text.size()) {
    const char c = text[i];
    if (c == '"' ) {  // a quoted title: up to the closing quote, at most 80 bytes
      const auto end = text.find('"', i + 1);
      if (end != std::string_view::npos && end > i + 1 && end - i <= 81) {
        special.push_back({std::string(text.substr(i + 1, end - i - 1)), entity_type::title});
        out.push_back({"\"", sentence, false});
        i = end + 1;
        at_start = false;
        continue;
      }
    }
    if (c == '@' || word_char(i)) {
      std::size_t j = i + (c == '@' ? 1 : 0);
      while (j < text.size()) {
        std::size_t k = j;
        const char32_t cp = next_code_point(text, k);
        const bool joiner = (cp == '-' || cp == '.' || cp == '@' || cp == '_') && k < text.size() && word_char(k);
        if (!is_word_code_point(cp) && !joiner) break;
        j = k;
      }
      const std::string_view w = text.substr(i, j - i);
      if (c == '@' || (w.find('@') != std::string_view::npos && w.find('.') != std::string_view::npos)) {
        special.push_back({std::string(w), entity_type::handle});
        out.push_back({std::string(w), sentence, false});
      } else {
        entity_token t{std::string(w), sentence, true};
        t.capital = w.front() >= 'A' && w.front() <= 'Z';
        if (!t.capital && static_cast<unsigned char>(w.front()) >= 0x80) {
          std::size_t k = 0;
          const char32_t cp = next_code_point(w, k);
          t.capital = to_lower_code_point(cp) != cp;
        }
        t.sentence_start = at_start;
        if (j + 1 < text.size() && (text[j] == '\'' || text.substr(j, 3) == "\xE2\x80\x99")) {
          const std::size_t s = text[j] == '\'' ? j + 1 : j + 3;
          if (s < text.size() && text[s] == 's' && (s + 1 == text.size() || !word_char(s + 1))) {
            t.possessive = true;
            j = s + 1;
          }
        }
        out.push_back(std::move(t));
      }
      i = j;
      at_start = false;
      continue;
    }
    std::size_t k = i;
    next_code_point(text, k);
    if (c == '.' || c == '!' || c == '?' || c == ';' || c == '\n') {
      ++sentence;
      at_start = true;
    }
    if (c == ',' || c == ':' || c == '(' || c == ')') out.push_back({std::string(1, c), sentence, false});
    i = k;
  }
  return out;
}

}  // namespace detail

/// The offline recogniser: see the file comment for what it finds. Stateless; safe to share between threads.
class offline_recognizer {
 public:
  [[nodiscard]] recognized_entities recognize(std::string_view text) const {
    using namespace detail;
    recognized_entities out;
    std::vector<entity_mention> special;
    const auto tokens = entity_tokens(text, special);
    struct found {
      entity_mention mention;
      std::size_t first, last;  // token range
    };
    std::vector<found> spans;
    for (std::size_t i = 0; i < tokens.size();) {
      const auto& t = tokens[i];
      const auto lower = ascii_lower(t.text);
      if (!t.word) {
        if (t.text != "\"" && t.text.size() > 1) {  // a handle
          spans.push_back({{t.text, entity_type::handle}, i, i});
        }
        ++i;
        continue;
      }
      if (is_iso_date(t.text)) {
        spans.push_back({{t.text, entity_type::date}, i, i});
        ++i;
        continue;
      }
      if (month_number(lower) && (t.capital || i + 1 < tokens.size())) {  // [day] Month [day] [year]
        std::size_t first = i, last = i;
        if (i > 0 && tokens[i - 1].word && is_number(tokens[i - 1].text) && tokens[i - 1].text.size() <= 2) first = i - 1;
        if (last + 1 < tokens.size() && tokens[last + 1].word && is_number(tokens[last + 1].text) &&
            tokens[last + 1].text.size() <= 2)
          ++last;
        if (last + 1 < tokens.size() && tokens[last + 1].word && is_number(tokens[last + 1].text) &&
            tokens[last + 1].text.size() == 4)
          ++last;
        if (t.capital && (first != i || last != i || lower != "may")) {
          if (first != i && !spans.empty() && spans.back().last == first) first = i;
          std::string name;
          for (std::size_t k = first; k <= last; ++k) name += (k == first ? "" : " ") + tokens[k].text;
          spans.push_back({{name, entity_type::date}, first, last});
          i = last + 1;
          continue;
        }
      }
      const bool starts = t.capital && !(lower == "i") && !(t.sentence_start && is_function_word(lower)) &&
                          !is_function_word(lower);
      // a lone capitalised word opening a sentence before a preposition or an object is a verb ("Work from
      // home", "Call me", "Write to"), not a name
      const bool imperative = t.sentence_start && i + 1 < tokens.size() && tokens[i + 1].word && !tokens[i + 1].capital &&
                              in_list(ascii_lower(tokens[i + 1].text), {"from", "to", "me", "us", "him", "her", "them",
                                                                        "the", "a", "an", "with", "on", "out", "up",
                                                                        "it", "this", "that", "some", "your", "my"});
      if (!starts || imperative) {
        ++i;
        continue;
      }
      // a run of capitalised words, joined by of/de/da/... between capitals; a possessive ends it
      std::size_t last = i;
      bool titled = false;
      std::size_t first = i;
      if (in_list(lower, {"mr", "mrs", "ms", "dr", "prof", "sir", "madam"}) && i + 1 < tokens.size() &&
          tokens[i + 1].word && tokens[i + 1].capital) {
        titled = true;
        first = last = i + 1;
      }
      while (!tokens[last].possessive && last + 1 < tokens.size()) {
        const auto& n = tokens[last + 1];
        if (n.word && n.capital && !month_number(ascii_lower(n.text)) && !is_function_word(ascii_lower(n.text))) {
          ++last;
          continue;
        }
        if (n.word && last + 2 < tokens.size() && in_list(ascii_lower(n.text), {"of", "de", "da", "do", "van", "von", "del", "la", "and"}) &&
            tokens[last + 2].word && tokens[last + 2].capital && ascii_lower(n.text) != "and") {
          last += 2;
          continue;
        }
        break;
      }
      std::string name;
      for (std::size_t k = first; k <= last; ++k) name += (k == first ? "" : " ") + tokens[k].text;
      spans.push_back({{name, type_of(tokens, first, last, titled)}, first, last});
      i = last + 1;
    }
    for (auto& s : special)
      if (s.type == entity_type::title) spans.push_back({std::move(s), tokens.size(), tokens.size()});
    // entities, each name once; relations between consecutive spans of one sentence
    for (const auto& s : spans)
      if (std::none_of(out.entities.begin(), out.entities.end(),
                       [&](const entity_mention& m) { return m.name == s.mention.name; }))
        out.entities.push_back(s.mention);
    for (std::size_t k = 0; k + 1 < spans.size(); ++k) {
      const auto& a = spans[k];
      const auto& b = spans[k + 1];
      if (b.first >= tokens.size() || a.last + 1 >= b.first || tokens[a.last].sentence != tokens[b.first].sentence)
        continue;
      std::string rel;
      std::size_t words = 0;
      bool clean = true;
      for (std::size_t m = a.last + 1; m < b.first; ++m) {
        if (!tokens[m].word) {
          clean = false;
          break;
        }
        rel += (rel.empty() ? "" : " ") + ascii_lower(tokens[m].text);
        ++words;
      }
      if (clean && words >= 1 && words <= 6 && a.mention.name != b.mention.name)
        out.relations.push_back({a.mention.name, std::move(rel), b.mention.name});
    }
    return out;
  }

 private:
  static entity_type type_of(const std::vector<detail::entity_token>& tokens, std::size_t first, std::size_t last,
                             bool titled) {
    using detail::ascii_lower;
    using detail::in_list;
    if (titled) return entity_type::person;
    const auto tail = ascii_lower(tokens[last].text);
    if (in_list(tail, {"inc", "ltd", "llc", "corp", "corporation", "company", "co", "gmbh", "ag", "sa", "plc", "labs",
                       "bank", "university", "college", "school", "hospital", "group", "foundation", "institute",
                       "studio", "studios", "systems", "technologies", "airlines", "press", "club", "agency"}))
      return entity_type::organization;
    if (last > first && in_list(ascii_lower(tokens[first].text), {"bank", "university", "college", "school", "hospital",
                                                                  "institute", "museum", "church", "ministry"}))
      return entity_type::organization;
    const std::string before = first > 0 && tokens[first - 1].word ? ascii_lower(tokens[first - 1].text) : "";
    const std::string before2 = first > 1 && tokens[first - 2].word ? ascii_lower(tokens[first - 2].text) : "";
    const bool work_verb = in_list(before2, {"works", "work", "worked", "working", "job"});
    if (before == "joined" || ((before == "at" || before == "for") && work_verb) ||
        (before == "by" && before2 == "employed"))
      return entity_type::organization;
    if (in_list(before, {"in", "from", "near", "to", "visiting", "visited", "around", "across"})) return entity_type::place;
    if (last > first) return entity_type::person;
    return entity_type::name;
  }
};

}  // namespace engram::inline v0
