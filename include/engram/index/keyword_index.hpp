#pragma once
/// @file index/keyword_index.hpp
/// BM25 keyword search over scope partitions: per-partition inverted lists of normalised terms
/// (rank/tokenize.hpp), kept in step with the vector index by basic_memory.

#include <engram/detail/catalog.hpp>
#include <engram/detail/fnv.hpp>
#include <engram/detail/slot_hash_set.hpp>
#include <engram/index/term_dictionary.hpp>
#include <engram/error.hpp>
#include <engram/index/topk.hpp>
#include <engram/text/tokenize.hpp>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace engram::inline v0 {

/// Okapi BM25 parameters.
struct bm25_params {
  /// Term-frequency saturation: a term's contribution approaches (k1 + 1) × idf as it repeats. 1.2 is the
  /// usual default (Lucene, Elasticsearch); 0 ignores repetitions.
  float k1 = 1.2f;
  /// Length normalisation: 0 ignores document length, 1 divides fully by length / average length.
  float b = 0.75f;
  /// Weight of a query term's morphological variants (see keyword_index): 0 matches exact terms only.
  float variants = 0.5f;
};

/// An inverted index over memory texts, searched with Okapi BM25:
///
///   score(q, d) = Σ_{t ∈ terms(q), distinct} idf(t) · tf(t,d)·(k1 + 1) / (tf(t,d) + k1·(1 − b + b·|d| / avgdl))
///   idf(t)      = ln(1 + (N − df(t) + 0.5) / (df(t) + 0.5))      (Lucene's form: never negative)
///
/// where N, df and avgdl are counted over the partitions searched (a scope's own statistics, so one user's
/// memories never change another's scores), |d| is the number of terms of d after stop-word removal, and
/// terms are those of keyword_terms(). A filter narrows which documents are returned, not the statistics.
///
/// Morphological variants: each distinct query term t also matches, with weight params.variants (w), the
/// indexed terms v ≠ t that the light stemmer leaves apart but that are forms of one word ("allergic" /
/// "allergy", "employ" / "employer", "birth" / "birthday"): t and v share a prefix p of at least 5 bytes,
/// neither goes on for more than 3 bytes after p, and p is 6 bytes or longer or is t or v itself. Such a v
/// adds w · idf(v) · (its BM25 term-frequency part) to a document's score, as if it were a query term of
/// weight w (a query's own terms are never added as variants of each other).
///
/// Thread-safety: const members may run concurrently; add/update/remove/clear need exclusive access.
/// Memory: one posting (8 bytes) per distinct term per document, plus the terms of each document, and each
/// distinct term's bytes once (detail::term_dictionary), kept until clear().
class keyword_index {
 public:
  explicit keyword_index(bm25_params params = {}) : params_(params) {
    if (!(params.k1 >= 0.0f) || !(params.b >= 0.0f && params.b <= 1.0f) ||
        !(params.variants >= 0.0f && params.variants <= 1.0f))
      throw validation_error("keyword_index: k1 " + std::to_string(params.k1) + " / b " + std::to_string(params.b) +
                             " / variants " + std::to_string(params.variants) +
                             " out of range (expected k1 >= 0, 0 <= b <= 1 and 0 <= variants <= 1)");
  }

  [[nodiscard]] const bm25_params& params() const noexcept { return params_; }

  /// Indexes `text` as the document of `slot` in partition `p` (replacing what the slot held).
  /// O(terms of text).
  void add(slot_id slot, partition_id p, std::string_view text) { add_terms(slot, p, keyword_terms(text)); }

  /// Re-indexes the text of `slot`, keeping its partition. @throws validation_error for a slot not held.
  void update(slot_id slot, std::string_view text) {
    if (!contains(slot)) throw validation_error("keyword_index::update: slot " + std::to_string(slot) + " is not indexed");
    add(slot, docs_[slot].partition, text);
  }

 private:
  /// add() after tokenising: `terms` are keyword_terms(text) (strings or string views).
  template <class Terms>
  void add_terms(slot_id slot, partition_id p, const Terms& terms) {
    remove(slot);
    if (slot >= docs_.size()) docs_.resize(std::size_t{slot} + 1);
    if (p >= parts_.size()) parts_.resize(std::size_t{p} + 1);
    auto& d = docs_[slot];
    d.partition = p;
    d.live = true;
    d.length = static_cast<std::uint32_t>(terms.size());
    for (const auto& t : terms) {
      const auto id = terms_.intern(t);
      auto it = std::find_if(d.terms.begin(), d.terms.end(), [&](const auto& e) { return e.first == id; });
      if (it == d.terms.end())
        d.terms.emplace_back(id, 1u);
      else
        ++it->second;
    }
    auto& part = parts_[p];
    for (const auto& [id, tf] : d.terms) part.list_of(id).push_back(posting{slot, tf});
    ++part.documents;
    part.total_length += d.length;
    ++size_;
  }

 public:
  /// Forgets `slot` (a no-op when it holds nothing). O(Σ posting-list lengths of its terms).
  void remove(slot_id slot) {
    if (!contains(slot)) return;
    auto& d = docs_[slot];
    auto& part = parts_[d.partition];
    for (const auto& [id, tf] : d.terms) {
      const auto at = part.index_of(id);
      if (at == partition::none) continue;
      auto& list = part.lists[at].list;
      auto pos = std::find_if(list.begin(), list.end(), [&](const posting& x) { return x.slot == slot; });
      if (pos != list.end()) {
        *pos = list.back();
        list.pop_back();
      }
      if (list.empty()) part.erase(at);
    }
    --part.documents;
    part.total_length -= d.length;
    d = document{};
    --size_;
  }

  void clear() { *this = keyword_index(params_); }

  class bulk_loader;

  /// Number of documents held.
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool contains(slot_id slot) const noexcept { return slot < docs_.size() && docs_[slot].live; }

  /// Documents of `partitions` that contain the (normalised) term, e.g. document_frequency(keyword_terms("Hiking")[0]).
  [[nodiscard]] std::size_t document_frequency(std::string_view term, std::span<const partition_id> partitions) const {
    const auto id = terms_.find(term);
    if (!id) return 0;
    std::size_t df = 0;
    for (const auto p : partitions)
      if (p < parts_.size())
        if (const auto* list = parts_[p].find(*id)) df += list->size();
    return df;
  }

  /// The BM25 score of every document of `partitions` that shares a term with `query` and that
  /// `accept(slot)` admits, in no particular order. O(Σ posting-list lengths of the query's terms).
  template <class Accept>
  [[nodiscard]] std::vector<index_hit> score_all(std::string_view query, std::span<const partition_id> partitions,
                                                 Accept&& accept) const {
    std::vector<index_hit> out;
    const auto terms = weighted_terms(query);
    std::size_t n = 0;
    std::uint64_t total_length = 0;
    for (const auto p : partitions)
      if (p < parts_.size()) {
        n += parts_[p].documents;
        total_length += parts_[p].total_length;
      }
    if (n == 0 || terms.empty()) return out;
    const double avgdl = std::max(1.0, double(total_length) / double(n));
    // scores by slot: a dense array when the partitions hold a good share of all documents, else a hash map
    // (a small scope in a large index must not pay for every slot)
    const bool dense = n * 8 >= docs_.size();
    std::vector<float> acc;
    std::unordered_map<slot_id, float> sparse;
    std::vector<slot_id> touched;
    for (const auto& [term, weight] : terms) {
      std::size_t df = 0;
      for (const auto p : partitions)
        if (p < parts_.size())
          if (const auto* list = parts_[p].find(term)) df += list->size();
      if (df == 0) continue;
      const double idf = double(weight) * std::log(1.0 + (double(n) - double(df) + 0.5) / (double(df) + 0.5));
      if (dense && acc.empty()) acc.assign(docs_.size(), -1.0f);
      for (const auto p : partitions) {
        if (p >= parts_.size()) continue;
        const auto* list = parts_[p].find(term);
        if (!list) continue;
        for (const auto& post : *list) {
          const double tf = post.tf;
          const double norm = params_.k1 * (1.0 - params_.b + params_.b * double(docs_[post.slot].length) / avgdl);
          const auto s = static_cast<float>(idf * tf * (params_.k1 + 1.0) / (tf + norm));
          if (!dense) {
            auto [it, fresh] = sparse.try_emplace(post.slot, s);
            if (fresh)
              touched.push_back(post.slot);
            else
              it->second += s;
          } else if (acc[post.slot] < 0.0f) {
            acc[post.slot] = s;
            touched.push_back(post.slot);
          } else {
            acc[post.slot] += s;
          }
        }
      }
    }
    out.reserve(touched.size());
    for (const auto slot : touched)
      if (accept(slot)) out.push_back(index_hit{slot, dense ? acc[slot] : sparse.at(slot)});
    return out;
  }

  /// The `k` best documents for `query` (see score_all), best first, equal scores by lower slot.
  template <class Accept>
  [[nodiscard]] std::vector<index_hit> search(std::string_view query, std::size_t k,
                                              std::span<const partition_id> partitions, Accept&& accept) const {
    topk best(k);
    for (const auto& h : score_all(query, partitions, accept)) best.push(h.slot, h.score);
    return best.take_sorted();
  }

  /// search() without a filter.
  [[nodiscard]] std::vector<index_hit> search(std::string_view query, std::size_t k,
                                              std::span<const partition_id> partitions) const {
    return search(query, k, partitions, [](slot_id) { return true; });
  }

 private:
  struct posting {
    slot_id slot = 0;
    std::uint32_t tf = 0;
  };
  struct document {
    partition_id partition = 0;
    std::uint32_t length = 0;
    bool live = false;
    std::vector<std::pair<std::uint32_t, std::uint32_t>> terms;  // (term id, frequency)
  };
  struct term_postings {
    std::uint32_t term = 0;
    std::vector<posting> list;
  };
  /// One partition's inverted lists, found by term id through an open-addressing table whose keys are the
  /// lists' own term ids (no node per term: a large vocabulary of rare terms is the common case).
  struct partition {
    static constexpr std::uint32_t none = detail::slot_hash_set::none;
    detail::slot_hash_set where;      // term id -> position in lists
    std::vector<term_postings> lists;
    std::size_t documents = 0;
    std::uint64_t total_length = 0;

    static std::uint64_t hash(std::uint32_t term) noexcept { return detail::mix64(term); }
    [[nodiscard]] std::uint32_t index_of(std::uint32_t term) const {
      return where.find(hash(term), [&](std::uint32_t at) { return lists[at].term == term; });
    }
    [[nodiscard]] const std::vector<posting>* find(std::uint32_t term) const {
      const auto at = index_of(term);
      return at == none ? nullptr : &lists[at].list;
    }
    std::vector<posting>& list_of(std::uint32_t term) {
      auto at = index_of(term);
      if (at == none) {
        at = static_cast<std::uint32_t>(lists.size());
        lists.push_back(term_postings{term, {}});
        where.insert(hash(term), at);
      }
      return lists[at].list;
    }
    /// Drops the list at `at` (moving the last list into its place).
    void erase(std::uint32_t at) {
      where.erase(hash(lists[at].term), at);
      const auto last = static_cast<std::uint32_t>(lists.size() - 1);
      if (at != last) {
        where.replace(hash(lists[last].term), last, at);
        lists[at] = std::move(lists[last]);
      }
      lists.pop_back();
    }
  };

  static constexpr std::size_t variant_prefix = detail::term_dictionary::prefix_bytes;  // bytes two variants share at least
  static constexpr std::size_t variant_suffix = 3;  // bytes each may have beyond their common prefix

  /// Whether indexed term `v` is a morphological variant of query term `t` (see the class comment).
  static bool is_variant(std::string_view t, std::string_view v) noexcept {
    if (t == v) return false;
    std::size_t p = 0;
    while (p < t.size() && p < v.size() && t[p] == v[p]) ++p;
    if (p < variant_prefix || t.size() - p > variant_suffix || v.size() - p > variant_suffix) return false;
    return p > variant_prefix || p == t.size() || p == v.size();
  }

  /// The query's weighted terms: its distinct terms (weight 1), then their variants (params_.variants).
  [[nodiscard]] std::vector<std::pair<std::uint32_t, float>> weighted_terms(std::string_view query) const {
    auto terms = keyword_terms(query);
    std::sort(terms.begin(), terms.end());
    terms.erase(std::unique(terms.begin(), terms.end()), terms.end());
    std::vector<std::pair<std::uint32_t, float>> out;
    for (const auto& t : terms)
      if (const auto id = terms_.find(t)) out.emplace_back(*id, 1.0f);
    if (params_.variants <= 0.0f) return out;
    const std::size_t exact = out.size();
    for (const auto& t : terms) {
      if (t.size() < variant_prefix) continue;
      terms_.for_each_with_prefix(t, [&](std::uint32_t v) {
        const auto vt = terms_.term(v);
        if (!is_variant(t, vt)) return;
        if (std::binary_search(terms.begin(), terms.end(), vt)) return;  // a query term itself
        if (std::any_of(out.begin() + std::ptrdiff_t(exact), out.end(), [&](const auto& e) { return e.first == v; }))
          return;
        out.emplace_back(v, params_.variants);
      });
    }
    return out;
  }

  bm25_params params_;
  detail::term_dictionary terms_;              // every term ever seen (kept until clear())
  std::vector<document> docs_;                  // by slot
  std::vector<partition> parts_;                // by partition id
  std::size_t size_ = 0;
};

/// Fills a keyword_index with many documents (opening a large memory): add() collects texts into chunks, and
/// full chunks are indexed by a second thread while the caller goes on reading its store. Tokenising is shared
/// between the two threads: a chunk is tokenised by the caller while the worker has a backlog, else by the
/// worker, so neither waits for the other for long. The result is
/// the index the same keyword_index::add calls would build. Until finish() returned (or the loader was
/// destroyed), the index must not be used, and add() must be called from one thread only.
class keyword_index::bulk_loader {
 public:
  /// background: index on a second thread; false: add() indexes at once (small loads, one core).
  bulk_loader(keyword_index& index, bool background) : index_(index) {
    if (background) worker_ = std::thread([this] { run(); });
  }
  bulk_loader(const bulk_loader&) = delete;
  bulk_loader& operator=(const bulk_loader&) = delete;
  /// Stops the worker (documents not indexed yet are dropped when finish() was not called).
  ~bulk_loader() {
    stop(false);
  }

  /// Indexes `text` as the document of `slot` in partition `p`, now or in the background. O(|text|) here.
  void add(slot_id slot, partition_id p, std::string_view text) {
    if (!worker_.joinable()) {
      index_.add(slot, p, text);
      return;
    }
    if (!cur_.tokenized) {  // the worker tokenises this chunk: keep the text
      cur_.docs.push_back({slot, p, cur_.terms.size(), 1});
      cur_.terms.emplace_back(cur_.text.size(), text.size());
      cur_.text.append(text);
    } else {
      const auto terms = keyword_terms(text);
      cur_.docs.push_back({slot, p, cur_.terms.size(), terms.size()});
      for (const auto& t : terms) {
        cur_.terms.emplace_back(cur_.text.size(), t.size());
        cur_.text.append(t);
      }
    }
    if (cur_.docs.size() >= chunk_docs) hand_over();
  }

  /// Returns once every document added is indexed. @throws what indexing threw (std::bad_alloc).
  void finish() { stop(true); }

 private:
  static constexpr std::size_t chunk_docs = 4096;
  struct doc {
    slot_id slot;
    partition_id partition;
    std::size_t first_term, terms;  // in chunk::terms
  };
  struct chunk {
    std::vector<doc> docs;
    std::vector<std::pair<std::size_t, std::size_t>> terms;  // (offset, size) in text
    std::string text;  // the terms of every document, back to back (untokenised: each document's whole text)
    bool tokenized = false;  // false: each doc has one "term", its text, which the worker tokenises
  };

  void hand_over() {
    bool backlog = false;
    {
      std::lock_guard lock(mtx_);
      if (!failed_) queue_.push_back(std::move(cur_));  // after a failure finish() reports it; nothing more is indexed
      backlog = queue_.size() > 1;
    }
    cv_.notify_one();
    cur_ = chunk{};
    cur_.docs.reserve(chunk_docs);
    cur_.tokenized = backlog;  // the worker is behind: tokenise the next chunk here
  }

  void stop(bool keep) {
    if (!worker_.joinable()) return;
    if (keep && !cur_.docs.empty()) hand_over();
    {
      std::lock_guard lock(mtx_);
      if (!keep) queue_.clear();
      done_ = true;
    }
    cv_.notify_one();
    worker_.join();
    if (keep && error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }

  void run() {
    try {
      while (true) {
        chunk c;
        {
          std::unique_lock lock(mtx_);
          cv_.wait(lock, [&] { return done_ || !queue_.empty(); });
          if (queue_.empty()) return;
          c = std::move(queue_.front());
          queue_.pop_front();
        }
        std::vector<std::string_view> terms;
        for (const auto& d : c.docs) {
          if (!c.tokenized) {
            const auto& [at, size] = c.terms[d.first_term];
            index_.add_terms(d.slot, d.partition, keyword_terms(std::string_view(c.text).substr(at, size)));
            continue;
          }
          terms.clear();
          for (std::size_t i = d.first_term; i < d.first_term + d.terms; ++i)
            terms.push_back(std::string_view(c.text).substr(c.terms[i].first, c.terms[i].second));
          index_.add_terms(d.slot, d.partition, terms);
        }
      }
    } catch (...) {
      error_ = std::current_exception();  // read by stop() after join
      std::lock_guard lock(mtx_);
      failed_ = true;
      queue_.clear();
    }
  }

  keyword_index& index_;
  chunk cur_;
  std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<chunk> queue_;
  bool done_ = false;
  bool failed_ = false;
  std::exception_ptr error_;
  std::thread worker_;
};

}  // namespace engram::inline v0
