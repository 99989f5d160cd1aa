#pragma once
/// @file text/related_words.hpp
/// Related English words (synonyms and more general words) read from a WordNet 3.0 database, for embedders
/// that should know that a "physician" is a "doctor" and a "sister" a "sibling". Optional: nothing in engram
/// needs it; the data is the user's (Debian: package wordnet-base, files in /usr/share/wordnet).

#include <engram/error.hpp>
#include <engram/detail/catalog.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace engram::inline v0 {

/// What related_words::of returns for a word.
struct wordnet_options {
  /// Senses of the word looked at, most frequent first (WordNet orders a word's senses by frequency in its
  /// tagged corpus); rarer senses mostly add noise ("car" as a railway car).
  std::size_t senses = 2;
  /// Levels of more general words (hypernyms, "instance of") followed from each sense: 0 synonyms only.
  std::size_t hypernym_depth = 1;
  /// Weight of a synonym (a word of the same synset); a hypernym at level l weighs synonym · hypernym_decay^l.
  float synonym = 1.0f;
  float hypernym_decay = 0.5f;
};

/// One related word with its weight (see wordnet_options).
struct related_word {
  std::string word;  ///< lowercase; a multi-word lemma has its words separated by spaces ("motor vehicle")
  float weight = 0.0f;
};

/// An in-memory copy of the nouns, verbs and adjectives of a WordNet 3.0 database (index.*, data.*, *.exc):
/// lemmas, synsets and hypernym links. Immutable after load; const members are thread-safe.
/// Memory: about 60 MB for the full WordNet 3.0 (load takes about a second).
class related_words {
 public:
  /// Reads `dir`/{index,data}.{noun,verb,adj} and the optional {noun,verb,adj}.exc.
  /// @throws storage_error naming the file when one of the six is missing or unreadable, or a line is malformed.
  static related_words load_wordnet(const std::filesystem::path& dir, wordnet_options options = {}) {
    related_words rw;
    rw.options_ = options;
    for (std::size_t pos = 0; pos < pos_count; ++pos) {
      rw.read_data(dir / (std::string("data.") + pos_names[pos]), pos);
      rw.read_index(dir / (std::string("index.") + pos_names[pos]), pos);
      rw.read_exceptions(dir / (std::string(pos_names[pos]) + ".exc"), pos);
    }
    if (rw.lemmas_[0].empty()) throw storage_error("related_words: no noun in " + dir.string());
    return rw;
  }

  [[nodiscard]] const wordnet_options& options() const noexcept { return options_; }

  /// The words related to `word` (lowercase, one word), merged over its noun, verb and adjective senses: its
  /// synonyms and hypernyms (see wordnet_options), each once with its largest weight, `word` itself
  /// excluded. An inflected form is looked up by its base form (WordNet's morphy rules and exception lists:
  /// "sisters" -> "sister", "employs" -> "employ", "born" -> "bear"). Empty for an unknown word. O(senses ×
  /// hypernym branching^depth).
  [[nodiscard]] std::vector<related_word> of(std::string_view word) const {
    std::vector<related_word> out;
    if (word.empty()) return out;
    for (std::size_t pos = 0; pos < pos_count; ++pos)
      for (const auto& base : base_forms(word, pos)) {
        auto it = lemmas_[pos].find(base);
        if (it == lemmas_[pos].end()) continue;
        const auto& offsets = it->second;
        for (std::size_t s = 0; s < offsets.size() && s < options_.senses; ++s)
          collect(pos, offsets[s], options_.synonym, 0, word, out);
      }
    return out;
  }

 private:
  static constexpr std::size_t pos_count = 3;
  static constexpr std::array<const char*, pos_count> pos_names = {"noun", "verb", "adj"};

  struct synset {
    std::vector<std::uint32_t> words;      // word ids
    std::vector<std::uint32_t> hypernyms;  // synset offsets, same part of speech
  };

  /// The base forms morphy would try for `word` as part of speech `pos`: the word itself, its exception-list
  /// bases, then each detachment rule that applies.
  [[nodiscard]] std::vector<std::string> base_forms(std::string_view word, std::size_t pos) const {
    std::vector<std::string> out{std::string(word)};
    if (auto it = exceptions_[pos].find(word); it != exceptions_[pos].end())
      out.insert(out.end(), it->second.begin(), it->second.end());
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 8> noun = {
        {{"s", ""}, {"ses", "s"}, {"xes", "x"}, {"zes", "z"}, {"ches", "ch"}, {"shes", "sh"}, {"men", "man"}, {"ies", "y"}}};
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 8> verb = {
        {{"s", ""}, {"ies", "y"}, {"es", "e"}, {"es", ""}, {"ed", "e"}, {"ed", ""}, {"ing", "e"}, {"ing", ""}}};
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 4> adj = {
        {{"er", ""}, {"est", ""}, {"er", "e"}, {"est", "e"}}};
    auto apply = [&](const auto& rules) {
      for (const auto& [suffix, repl] : rules)
        if (word.size() > suffix.size() + 1 && word.substr(word.size() - suffix.size()) == suffix)
          out.push_back(std::string(word.substr(0, word.size() - suffix.size())) + std::string(repl));
    };
    if (pos == 0) apply(noun);
    else if (pos == 1) apply(verb);
    else apply(adj);
    return out;
  }

  void collect(std::size_t pos, std::uint32_t offset, float weight, std::size_t level, std::string_view self,
               std::vector<related_word>& out) const {
    auto it = synsets_[pos].find(offset);
    if (it == synsets_[pos].end()) return;
    for (const auto id : it->second.words) {
      const auto& w = words_[id];
      if (w == self) continue;
      auto e = std::find_if(out.begin(), out.end(), [&](const related_word& r) { return r.word == w; });
      if (e == out.end()) out.push_back({w, weight});
      else e->weight = std::max(e->weight, weight);
    }
    if (level >= options_.hypernym_depth) return;
    for (const auto h : it->second.hypernyms) collect(pos, h, weight * options_.hypernym_decay, level + 1, self, out);
  }

  std::uint32_t intern(std::string lemma) {
    std::replace(lemma.begin(), lemma.end(), '_', ' ');
    std::transform(lemma.begin(), lemma.end(), lemma.begin(),
                   [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; });
    // adjective lemmas may carry a syntactic marker: "galore(ip)"
    if (auto paren = lemma.find('('); paren != std::string::npos) lemma.resize(paren);
    if (auto it = word_ids_.find(lemma); it != word_ids_.end()) return it->second;
    const auto id = static_cast<std::uint32_t>(words_.size());
    word_ids_.emplace(lemma, id);
    words_.push_back(std::move(lemma));
    return id;
  }

  static std::ifstream open(const std::filesystem::path& file) {
    std::ifstream in(file);
    if (!in) throw storage_error("related_words: cannot read " + file.string() + " (a WordNet 3.0 database file)");
    return in;
  }

  [[noreturn]] static void malformed(const std::filesystem::path& file, std::size_t line) {
    throw storage_error("related_words: " + file.string() + " line " + std::to_string(line) +
                        " is not a WordNet 3.0 record");
  }

  /// Splits a line at spaces.
  static std::vector<std::string_view> fields(std::string_view line) {
    std::vector<std::string_view> f;
    std::size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && line[i] == ' ') ++i;
      const std::size_t start = i;
      while (i < line.size() && line[i] != ' ') ++i;
      if (i > start) f.push_back(line.substr(start, i - start));
    }
    return f;
  }

  static bool parse_number(std::string_view s, int base, std::uint32_t& out) {
    if (s.empty() || s.size() > 10) return false;
    char* end = nullptr;
    const std::string tmp(s);
    const auto v = std::strtoul(tmp.c_str(), &end, base);
    if (end != tmp.c_str() + tmp.size()) return false;
    out = static_cast<std::uint32_t>(v);
    return true;
  }

  /// data.<pos>: "offset lex_filenum ss_type w_cnt(hex) word lex_id ... p_cnt ptr ... | gloss"; lines starting
  /// with a space are the licence.
  void read_data(const std::filesystem::path& file, std::size_t pos) {
    auto in = open(file);
    std::string line;
    std::size_t n = 0;
    while (std::getline(in, line)) {
      ++n;
      if (line.empty() || line[0] == ' ') continue;
      const auto bar = line.find(" | ");
      const auto f = fields(std::string_view(line).substr(0, bar));
      std::uint32_t offset = 0, w_cnt = 0, p_cnt = 0;
      if (f.size() < 4 || !parse_number(f[0], 10, offset) || !parse_number(f[3], 16, w_cnt) ||
          f.size() < 5 + 2 * std::size_t{w_cnt} || !parse_number(f[4 + 2 * w_cnt], 10, p_cnt) ||
          f.size() < 5 + 2 * std::size_t{w_cnt} + 4 * std::size_t{p_cnt})
        malformed(file, n);
      synset s;
      for (std::size_t i = 0; i < w_cnt; ++i) s.words.push_back(intern(std::string(f[4 + 2 * i])));
      for (std::size_t i = 0; i < p_cnt; ++i) {
        const std::size_t at = 5 + 2 * std::size_t{w_cnt} + 4 * i;
        std::uint32_t target = 0;
        // "@" hypernym, "@i" instance hypernym ("Japanese" is a language); same part of speech only
        if ((f[at] == "@" || f[at] == "@i") && f[at + 2] == f[2].substr(0, 1) && parse_number(f[at + 1], 10, target))
          s.hypernyms.push_back(target);
      }
      synsets_[pos].emplace(offset, std::move(s));
    }
  }

  /// index.<pos>: "lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt tagsense_cnt offset..."
  void read_index(const std::filesystem::path& file, std::size_t pos) {
    auto in = open(file);
    std::string line;
    std::size_t n = 0;
    while (std::getline(in, line)) {
      ++n;
      if (line.empty() || line[0] == ' ') continue;
      const auto f = fields(line);
      std::uint32_t synset_cnt = 0, p_cnt = 0;
      if (f.size() < 4 || !parse_number(f[2], 10, synset_cnt) || !parse_number(f[3], 10, p_cnt) ||
          f.size() < 6 + std::size_t{p_cnt} + synset_cnt)
        malformed(file, n);
      std::vector<std::uint32_t> offsets;
      for (std::size_t i = 0; i < synset_cnt; ++i) {
        std::uint32_t o = 0;
        if (!parse_number(f[6 + p_cnt + i], 10, o)) malformed(file, n);
        offsets.push_back(o);
      }
      std::string lemma(f[0]);
      std::replace(lemma.begin(), lemma.end(), '_', ' ');
      lemmas_[pos].emplace(std::move(lemma), std::move(offsets));
    }
  }

  /// <pos>.exc: "inflected base..." (optional file).
  void read_exceptions(const std::filesystem::path& file, std::size_t pos) {
    std::ifstream in(file);
    if (!in) return;
    std::string line;
    while (std::getline(in, line)) {
      const auto f = fields(line);
      if (f.size() < 2) continue;
      auto& bases = exceptions_[pos][std::string(f[0])];
      for (std::size_t i = 1; i < f.size(); ++i) bases.emplace_back(f[i]);
    }
  }

  wordnet_options options_{};
  std::array<detail::string_map<std::vector<std::uint32_t>>, pos_count> lemmas_;  // lemma -> synset offsets
  std::array<std::unordered_map<std::uint32_t, synset>, pos_count> synsets_;      // by offset
  std::array<detail::string_map<std::vector<std::string>>, pos_count> exceptions_;
  detail::string_map<std::uint32_t> word_ids_;
  std::vector<std::string> words_;
};

}  // namespace engram::inline v0
