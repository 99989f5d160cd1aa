#pragma once
/// @file embed/hashing.hpp
/// The offline default embedder: feature hashing of words, word pairs and character n-grams.

#include <engram/detail/fnv.hpp>
#include <engram/text/stem.hpp>
#include <engram/error.hpp>
#include <engram/text/related_words.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace engram::inline v0 {

/// Embeds text without a model: lowercased, lightly stemmed word unigrams (weight 1; common function words 0.2), adjacent word
/// bigrams (0.5) and character 3-, 4- and 5-grams of each word with boundary marks (together as heavy as the
/// word), each hashed (FNV-1a + mix) to a signed bucket of a fixed-dimension vector, then L2-normalised.
///
/// Deterministic across runs and platforms (integer hashing, a fixed order of float additions). By itself it
/// knows no synonyms: texts score high when they share words or word stems. Given related words (a WordNet
/// database, rank/related_words.hpp), each content word also adds the word features of its synonyms and
/// hypernyms ("physician" adds "doctor", "sister" adds "sibling"), weighted by their related_word weights and
/// scaled so that together they weigh `related_weight` times the word. Use an HTTP embedder for real meaning.
/// Thread-safe (stateless after construction; the related words are shared and immutable).
class hashing_embedder {
 public:
  /// @param dimension output size, at least 16 (default 384, the size of common small sentence models).
  explicit hashing_embedder(std::size_t dimension = 384) : hashing_embedder(dimension, nullptr, 0.0f) {}

  /// As above, each content word also adding its related words' features (see the class comment); `related`
  /// may be null (no expansion). @throws validation_error for a bad dimension or a related_weight outside [0, 4].
  hashing_embedder(std::size_t dimension, std::shared_ptr<const related_words> related, float related_weight = 1.0f)
      : dim_(dimension), related_(std::move(related)), related_weight_(related_weight) {
    if (dimension < 16 || dimension > 65536)
      throw validation_error("hashing_embedder: dimension " + std::to_string(dimension) +
                             " is out of range (expected 16 to 65536)");
    if (!(related_weight >= 0.0f && related_weight <= 4.0f))
      throw validation_error("hashing_embedder: related_weight " + std::to_string(related_weight) +
                             " is out of range (expected 0 to 4)");
  }

  [[nodiscard]] std::size_t dimension() const noexcept { return dim_; }
  /// Identity recorded by durable stores, so a store is never read with a different embedder.
  /// Bumped whenever the features change: vectors stored by another version would no longer match. With related
  /// words, the name carries their settings ("hashing-v1+wordnet:s2d1w0.50").
  [[nodiscard]] std::string name() const {
    if (!related_ || related_weight_ <= 0.0f) return "hashing-v1";
    const auto& o = related_->options();
    char buf[96];
    std::snprintf(buf, sizeof buf, "hashing-v1+wordnet:s%zud%zuw%.2fh%.2fr%.2f", o.senses, o.hypernym_depth,
                  double(o.synonym), double(o.hypernym_decay), double(related_weight_));
    return buf;
  }

  /// The embedding of `text`. Text with no word characters yields the zero vector.
  [[nodiscard]] std::vector<float> embed(std::string_view text) const {
    std::vector<float> v(dim_, 0.0f);
    const auto words = tokenize(text);
    for (std::size_t i = 0; i < words.size(); ++i) {
      const std::string& w = words[i];
      const float weight = is_stop_word(w) ? 0.2f : 1.0f;
      add_feature(v, 'w', detail::light_stem(w), weight);
      if (i + 1 < words.size()) add_feature(v, 'b', w + ' ' + words[i + 1], 0.5f);
      add_char_ngrams(v, w, weight);
      if (weight == 1.0f) add_related(v, w);
    }
    normalize(v);
    return v;
  }

  /// The embeddings of several texts, in order.
  [[nodiscard]] std::vector<std::vector<float>> embed_batch(std::span<const std::string> texts) const {
    std::vector<std::vector<float>> out;
    out.reserve(texts.size());
    for (const auto& t : texts) out.push_back(embed(t));
    return out;
  }

  /// Splits into lowercase words: ASCII letters and digits, plus every byte of a multi-byte UTF-8 sequence
  /// (so accented and non-Latin letters stay inside words); everything else separates.
  [[nodiscard]] static std::vector<std::string> tokenize(std::string_view text) {
    std::vector<std::string> words;
    std::string cur;
    for (const char ch : text) {
      const auto c = static_cast<unsigned char>(ch);
      if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80) {
        cur.push_back(static_cast<char>(c));
      } else if (c >= 'A' && c <= 'Z') {
        cur.push_back(static_cast<char>(c - 'A' + 'a'));
      } else if (c == '\'' && !cur.empty()) {
        continue;  // "don't" -> "dont", "user's" -> "users": one token, not two

      } else if (!cur.empty()) {
        words.push_back(std::move(cur));
        cur.clear();
      }
    }
    if (!cur.empty()) words.push_back(std::move(cur));
    return words;
  }

 private:
  static bool is_stop_word(std::string_view w) noexcept {
    static constexpr std::array<std::string_view, 48> stop = {
        "a",    "an",   "and",  "are",  "as",   "at",   "be",    "but",  "by",   "do",   "for",  "from",
        "has",  "have", "he",   "her",  "his",  "i",    "im",   "in",   "is",   "it",   "its",  "me",
        "my",   "of",   "on",   "or",   "our",  "she",  "so",    "that", "the",  "their", "them", "they",
        "this", "to",   "was",  "we",   "were", "what", "which", "who",  "will", "with", "you",  "your"};
    for (auto s : stop)
      if (s == w) return true;
    return false;
  }

  void add_feature(std::vector<float>& v, char kind, std::string_view feature, float weight) const {
    std::uint64_t h = detail::fnv1a64(std::string_view(&kind, 1));
    h = detail::mix64(detail::fnv1a64(feature, h));
    const auto bucket = static_cast<std::size_t>(h % dim_);
    v[bucket] += (h >> 63) ? -weight : weight;
  }

  /// The word features of w's related words (each word of a multi-word lemma), together related_weight_ heavy.
  void add_related(std::vector<float>& v, const std::string& w) const {
    if (!related_ || related_weight_ <= 0.0f) return;
    const auto stem = detail::light_stem(w);
    std::vector<std::pair<std::string, float>> features;
    for (const auto& r : related_->of(w)) {
      const auto parts = tokenize(r.word);
      for (const auto& part : parts) {
        if (is_stop_word(part)) continue;
        auto f = detail::light_stem(part);
        if (f == stem) continue;
        const float fw = r.weight / static_cast<float>(parts.size());
        auto e = std::find_if(features.begin(), features.end(), [&](const auto& x) { return x.first == f; });
        if (e == features.end()) features.emplace_back(std::move(f), fw);
        else e->second = std::max(e->second, fw);
      }
    }
    double sum = 0.0;
    for (const auto& [f, fw] : features) sum += double(fw) * double(fw);
    if (sum <= 0.0) return;
    const auto scale = static_cast<float>(double(related_weight_) / std::sqrt(sum));
    for (const auto& [f, fw] : features) add_feature(v, 'w', f, fw * scale);
  }

  void add_char_ngrams(std::vector<float>& v, const std::string& word, float word_weight) const {
    const std::string marked = "<" + word + ">";
    std::size_t count = 0;
    for (std::size_t n = 3; n <= 5; ++n)
      if (marked.size() >= n) count += marked.size() - n + 1;
    if (count == 0) return;
    const float w = word_weight / std::sqrt(static_cast<float>(count));
    for (std::size_t n = 3; n <= 5; ++n) {
      if (marked.size() < n) continue;
      for (std::size_t i = 0; i + n <= marked.size(); ++i)
        add_feature(v, static_cast<char>('0' + n), std::string_view(marked).substr(i, n), w);
    }
  }

  static void normalize(std::vector<float>& v) {
    double sum = 0.0;
    for (const float x : v) sum += double(x) * double(x);
    if (sum <= 0.0) return;
    const auto inv = static_cast<float>(1.0 / std::sqrt(sum));
    for (float& x : v) x *= inv;
  }

  std::size_t dim_;
  std::shared_ptr<const related_words> related_;
  float related_weight_ = 0.0f;
};

}  // namespace engram::inline v0
