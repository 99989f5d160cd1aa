#include <engram/engram.hpp>
#include <engram/rank/expiry.hpp>
#include <engram/rank/fusion.hpp>
#include <engram/index/keyword_index.hpp>
#include <engram/rank/rerank.hpp>
#include <engram/text/tokenize.hpp>
#include <engram/index/term_dictionary.hpp>

#include <catch2/catch.hpp>

#include "support/temp_dir.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <thread>
#include <string>
#include <vector>

using namespace engram;

namespace {

std::string day_string(std::chrono::sys_days d) {
  const std::chrono::year_month_day ymd{d};
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", int(ymd.year()), unsigned(ymd.month()), unsigned(ymd.day()));
  return buf;
}
std::chrono::sys_days today() { return std::chrono::floor<std::chrono::days>(utc_now()); }

bool contains_text(const std::vector<search_hit>& hits, const std::string& text) {
  return std::any_of(hits.begin(), hits.end(), [&](const search_hit& h) { return h.record.memory == text; });
}

const partition_id p0 = 0;

}  // namespace

TEST_CASE("rank: words are split on Unicode letters, lowercased, stop words dropped and stemmed", "[rank]") {
  CHECK(split_words("Don't STOP—Café ÉCOLE naïve, Zoë's x×y") ==
        std::vector<std::string>{"dont", "stop", "café", "école", "naïve", "zoës", "x", "y"});
  CHECK(split_words("ŁÓDŹ Straße") == std::vector<std::string>{"łódź", "straße"});
  CHECK(keyword_terms("I was hiking with the dogs in Łódź") == std::vector<std::string>{"hike", "dog", "łódź"});
  CHECK(keyword_terms("the and of").empty());
  CHECK(split_words(std::string("ab\xff" "cd")) == std::vector<std::string>{"ab", "cd"});
}

TEST_CASE("rank: abbreviations, British spellings and contractions are normalised", "[rank]") {
  CHECK(keyword_terms("I see Dr. Okafor") == std::vector<std::string>{"see", "doctor", "okafor"});
  CHECK(keyword_terms("My favourite colours") == keyword_terms("my favorite colors"));
  CHECK(keyword_terms("the centre organised it") == std::vector<std::string>{"center", "organize"});
  CHECK(keyword_terms("Favourites") == std::vector<std::string>{"favorite"});
  CHECK(keyword_terms("What's my bday? I'd say don't") == std::vector<std::string>{"birthday", "id", "say"});
  // only the listed roots and endings fold: "organism" is not "organizm", "four" and "your" stay
  CHECK(keyword_terms("organism four hour") == std::vector<std::string>{"organism", "four", "hour"});
  CHECK(keyword_terms("Drive") == std::vector<std::string>{"drive"});  // "dr" only as a whole word
}

TEST_CASE("rank: a query term matches its morphological variants at the variants weight", "[rank]") {
  const std::vector<partition_id> parts{p0};
  auto build = [](float variants) {
    keyword_index idx(bm25_params{.variants = variants});
    idx.add(0, p0, "peanut allergy");
    idx.add(1, p0, "my employer pays well");
    idx.add(2, p0, "born on a birthday");
    idx.add(3, p0, "the company car");
    idx.add(4, p0, "partner dance");
    return idx;
  };
  const auto exact = build(0.0f), half = build(0.5f), full = build(1.0f);
  // variants off: "allergic" shares no term with "peanut allergy"
  CHECK(exact.search("allergic", 10, parts).empty());
  // on: the document scores as for the indexed term itself, times the weight
  const float allergy = exact.search("allergy", 10, parts).front().score;
  REQUIRE(half.search("allergic", 10, parts).size() == 1);
  CHECK(half.search("allergic", 10, parts).front().score == Approx(0.5f * allergy));
  CHECK(full.search("allergic", 10, parts).front().score == Approx(allergy));
  // a word and its longer form: "employs" -> "employ" ~ "employer", "birth" ~ "birthday"
  CHECK(half.search("who employs me", 10, parts).front().slot == 1);
  CHECK(half.search("date of birth", 10, parts).front().slot == 2);
  // not variants: a 5-byte common prefix of two words that both go on ("compare" / "company"), a short prefix
  // ("party" / "partner"), or a longer ending ("allergenic" / "allergy": 4 bytes after "allerg")
  CHECK(half.search("compare", 10, parts).empty());
  CHECK(half.search("party", 10, parts).empty());
  CHECK(half.search("allergenic", 10, parts).empty());
  // a query term is never also counted as a variant of another query term
  CHECK(half.search("allergy allergic", 10, parts).front().score == Approx(allergy));
  CHECK_THROWS_AS(keyword_index(bm25_params{.variants = 1.5f}), validation_error);
  CHECK_THROWS_AS(keyword_index(bm25_params{.variants = -0.1f}), validation_error);
}

TEST_CASE("rank: keyword search matches abbreviations, spelling variants and word forms", "[rank]") {
  memory mem;
  const scope u = user("alice");
  for (const auto* t : {"I see Dr. Okafor for checkups", "My favourite food is ramen", "I am allergic to peanuts",
                        "The meeting moved to Friday", "I need to buy printer paper", "My employer is Globex"})
    mem.add(t, u, {.infer = false});
  auto top = [&](const char* q) {
    const auto hits = mem.search(q, u, {.limit = 1, .mode = search_mode::keyword});
    return hits.empty() ? std::string() : hits.front().record.memory;
  };
  CHECK(top("What's my doctor's name?") == "I see Dr. Okafor for checkups");
  CHECK(top("Which dish is my favorite?") == "My favourite food is ramen");
  CHECK(top("Which allergy do I have?") == "I am allergic to peanuts");
  CHECK(top("Which company employs me?") == "My employer is Globex");
  CHECK(top("What's the weather?").empty());
}

TEST_CASE("rank: BM25 scores match a hand-computed example", "[rank]") {
  keyword_index idx;  // k1 = 1.2, b = 0.75
  idx.add(0, p0, "apple banana");        // |d| = 2
  idx.add(1, p0, "apple apple cherry");  // |d| = 3, tf(apple) = 2
  idx.add(2, p0, "cherry date");         // |d| = 2
  const std::vector<partition_id> parts{p0};
  // N = 3, avgdl = 7/3, df(apple) = df(cherry) = 2, idf = ln(1 + 1.5/2.5) = ln 1.6 = 0.4700036
  // d0: 0.4700036 · 1·2.2 / (1 + 1.2·(0.25 + 0.75·2/(7/3)))  = 0.4700036 · 2.2 / 2.0714286 = 0.4991769
  // d1: 0.4700036 · 2·2.2 / (2 + 1.2·(0.25 + 0.75·3/(7/3)))  = 0.4700036 · 4.4 / 3.4571429 = 0.5981864
  auto hits = idx.search("apples", 10, parts);
  REQUIRE(hits.size() == 2);
  CHECK(hits[0].slot == 1);
  CHECK(hits[0].score == Approx(0.5981864).epsilon(1e-5));
  CHECK(hits[1].slot == 0);
  CHECK(hits[1].score == Approx(0.4991769).epsilon(1e-5));
  // "apple cherry": d1 = 0.5981864 + 0.4700036 · 2.2 / 2.4571429 = 0.5981864 + 0.4208172; d0 and d2 tie (slot order)
  hits = idx.search("Apple? Cherry!", 10, parts);
  REQUIRE(hits.size() == 3);
  CHECK(hits[0].slot == 1);
  CHECK(hits[0].score == Approx(1.0190036).epsilon(1e-5));
  CHECK(hits[1].slot == 0);
  CHECK(hits[2].slot == 2);
  CHECK(hits[1].score == Approx(hits[2].score));
  CHECK(idx.search("banana", 1, parts).front().score ==
        Approx(std::log(1.0 + 2.5 / 1.5) * 2.2 / (1.0 + 1.2 * (0.25 + 0.75 * 2.0 / (7.0 / 3.0)))).epsilon(1e-5));
  CHECK(idx.search("durian", 10, parts).empty());
  CHECK(idx.search("the of", 10, parts).empty());
}

TEST_CASE("rank: keyword statistics are per partition, and the index follows update and remove", "[rank]") {
  keyword_index idx;
  idx.add(0, 0, "red fox");
  idx.add(1, 1, "red fox");
  idx.add(2, 1, "blue whale");
  const std::vector<partition_id> only0{0}, only1{1}, both{0, 1};
  CHECK(idx.document_frequency("red", only0) == 1);
  CHECK(idx.document_frequency("red", both) == 2);
  // a partition's documents never score against another partition's statistics
  CHECK(idx.search("fox", 10, only0).front().score != Approx(idx.search("fox", 10, only1).front().score));
  CHECK(idx.search("fox", 10, only1).size() == 1);
  // the same scores when the searched partitions are a small share of the index (sparse accumulation)
  const auto before = idx.search("red fox", 10, only0);
  for (slot_id s = 10; s < 40; ++s) idx.add(s, 2, "red fox number " + std::to_string(s));
  const auto after = idx.search("red fox", 10, only0);
  REQUIRE(after.size() == 1);
  CHECK(after.front().slot == before.front().slot);
  CHECK(after.front().score == before.front().score);
  for (slot_id s = 10; s < 40; ++s) idx.remove(s);

  idx.update(1, "green turtle");
  CHECK(idx.document_frequency("fox", only1) == 0);
  CHECK(idx.search("turtle", 10, both).front().slot == 1);
  idx.remove(2);
  CHECK(idx.search("whale", 10, both).empty());
  CHECK(idx.size() == 2);
  idx.remove(2);  // no-op
  CHECK(idx.size() == 2);
  CHECK_THROWS_AS(idx.update(7, "x"), validation_error);
  idx.clear();
  CHECK(idx.size() == 0);
  CHECK(idx.search("turtle", 10, both).empty());
  CHECK_THROWS_AS(keyword_index(bm25_params{.k1 = 1.2f, .b = 1.5f}), validation_error);
}

TEST_CASE("rank: the term dictionary gives dense ids and chains terms by prefix in order", "[rank]") {
  detail::term_dictionary d;
  CHECK(d.intern("garden") == 0);
  CHECK(d.intern("tea") == 1);
  CHECK(d.intern("gardener") == 2);
  CHECK(d.intern("garden") == 0);
  CHECK(d.size() == 3);
  CHECK(d.find("gardener") == 2u);
  CHECK_FALSE(d.find("gard").has_value());
  CHECK(d.term(2) == "gardener");
  for (int i = 0; i < 5000; ++i) d.intern("w" + std::to_string(i));  // grows the table
  CHECK(d.find("w4999") == 5002u);
  CHECK(d.term(0) == "garden");
  CHECK(d.intern("gardens") == 5003);
  std::vector<std::uint32_t> chain;
  d.for_each_with_prefix("gardenia", [&](std::uint32_t id) { chain.push_back(id); });
  CHECK(chain == std::vector<std::uint32_t>{0, 2, 5003});
  chain.clear();
  d.for_each_with_prefix("zzzzz", [&](std::uint32_t id) { chain.push_back(id); });
  CHECK(chain.empty());
}

TEST_CASE("rank: after any sequence of add, update and remove the index scores as one built afresh", "[rank]") {
  // Words with morphological variants of each other, so the variant lookup takes part too.
  const std::vector<std::string> words = {"allergic", "allergy", "employ", "employer", "employee", "birth",
                                          "birthday", "hike", "hiking", "garden", "gardener", "paint", "painter",
                                          "tea", "coffee", "red", "fox", "whale", "number", "numbers"};
  std::uint64_t x = 42;
  auto next = [&](std::uint64_t n) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return x % n;
  };
  auto text = [&] {
    std::string t;
    for (auto n = 1 + next(8); n > 0; --n) t += words[next(words.size())] + (next(4) == 0 ? " " + std::to_string(next(50)) + " " : " ");
    return t;
  };
  keyword_index idx;
  std::map<slot_id, std::pair<partition_id, std::string>> docs;
  for (int op = 0; op < 3000; ++op) {
    const auto slot = static_cast<slot_id>(next(300));
    const auto p = static_cast<partition_id>(next(3));
    const auto kind = next(3);
    if (kind == 0 || !docs.count(slot)) {
      auto t = text();
      idx.add(slot, p, t);
      docs[slot] = {p, t};
    } else if (kind == 1) {
      auto t = text();
      idx.update(slot, t);
      docs[slot].second = t;
    } else {
      idx.remove(slot);
      docs.erase(slot);
    }
  }
  keyword_index fresh;
  {
    keyword_index::bulk_loader load(fresh, true);  // the opening path, on a second thread
    for (const auto& [slot, d] : docs) load.add(slot, d.first, d.second);
    load.finish();
  }
  REQUIRE(idx.size() == docs.size());
  REQUIRE(fresh.size() == docs.size());
  const std::vector<std::vector<partition_id>> selections = {{0}, {1}, {2}, {0, 2}, {0, 1, 2}};
  auto scores = [](const keyword_index& k, const std::string& q, const std::vector<partition_id>& parts) {
    std::map<slot_id, float> out;
    for (const auto& h : k.score_all(q, parts, [](slot_id) { return true; })) out[h.slot] = h.score;
    return out;
  };
  for (const auto& w : words)
    for (const auto& parts : selections) CHECK(idx.document_frequency(w, parts) == fresh.document_frequency(w, parts));
  for (int q = 0; q < 200; ++q) {
    const auto query = text();
    const auto& parts = selections[next(selections.size())];
    const auto a = scores(idx, query, parts), b = scores(fresh, query, parts);
    REQUIRE(a.size() == b.size());
    for (const auto& [slot, score] : a) {
      REQUIRE(b.count(slot));
      CHECK(score == Approx(b.at(slot)).epsilon(1e-5));
    }
  }
}

TEST_CASE("rank: hybrid search finds an exact rare token that semantic search misses", "[rank]") {
  memory mem;
  const scope u = user("alice");
  std::vector<std::string> distractors;
  for (int i = 0; i < 60; ++i)
    distractors.push_back("the office wifi network password was changed by the admin team, note " + std::to_string(i));
  for (const auto& d : distractors) mem.add(d, u, {.infer = false});
  const std::string target = "My locker code is QX7731";
  mem.add(target, u, {.infer = false});

  const std::string q = "office wifi network password admin QX7731";
  const auto semantic = mem.search(q, u, {.limit = 5, .mode = search_mode::semantic});
  REQUIRE_FALSE(contains_text(semantic, target));  // the premise: cosine alone ranks the distractors higher

  const auto hybrid = mem.search(q, u, {.limit = 5});  // hybrid is the default
  REQUIRE_FALSE(hybrid.empty());
  CHECK(hybrid.front().record.memory == target);
  // reciprocal-rank fusion: the keyword list's first contributes keyword / (rrf_k + 1), and nothing from a
  // vector list it is absent from
  const auto rrf = mem.search(q, u, {.limit = 100, .weights = {.fusion = fusion_method::reciprocal_rank}, .explain = true});
  auto it = std::find_if(rrf.begin(), rrf.end(), [&](const search_hit& h) { return h.record.memory == target; });
  REQUIRE(it != rrf.end());
  CHECK(it->details->keyword == Approx(0.5 / 61.0));
  const double cosine_rank = 0.5 / it->details->semantic - 60.0;  // semantic / (rrf_k + rank)
  CHECK(cosine_rank == Approx(std::round(cosine_rank)).margin(1e-3));
  CHECK(cosine_rank > 5.0);
  const auto keyword = mem.search(q, u, {.limit = 1, .mode = search_mode::keyword});
  REQUIRE(keyword.size() == 1);
  CHECK(keyword.front().record.memory == target);
  CHECK(keyword.front().score == Approx(1.0f));  // the best keyword match scores 1

  // a memory found only by its keywords gets its exact cosine in hybrid mode (it was outside the vector pool)
  const auto explained = mem.search(q, u, {.limit = 1, .explain = true});
  REQUIRE(explained.front().details);
  CHECK(explained.front().details->cosine > 0.0f);
  CHECK(explained.front().details->bm25 > 0.0f);
}

TEST_CASE("rank: the keyword index stays consistent through update, delete, reset and reopen", "[rank]") {
  memory mem;
  const scope u = user("bob");
  const auto kw = search_options{.limit = 10, .mode = search_mode::keyword};
  const auto id = mem.add("My zebra is named Stripes", u, {.infer = false}).results.at(0).id;
  mem.add("My yak is named Fluffy", u, {.infer = false});
  mem.add("Alice has a zebra too", user("alice"), {.infer = false});
  CHECK(mem.search("zebra", u, kw).size() == 1);

  mem.update(id, "My okapi is named Stripes");
  CHECK(mem.search("zebra", u, kw).empty());
  REQUIRE(mem.search("okapi", u, kw).size() == 1);
  CHECK(mem.search("okapi", u, kw).front().record.id == id);
  CHECK(mem.search("stripes", u, kw).size() == 1);

  // reopen: a new memory over a store holding the same records rebuilds the keyword index
  memory_store copy;
  write_batch batch;
  for (const auto& r : mem.get_all(all_scopes)) batch.upserts.push_back(*mem.get(r.id));
  copy.apply(batch);
  memory reopened(hashing_embedder(), std::move(copy));
  REQUIRE(reopened.search("okapi", u, kw).size() == 1);
  CHECK(reopened.search("okapi", u, kw).front().record.id == id);
  CHECK(reopened.search("zebra", user("alice"), kw).size() == 1);
  CHECK(reopened.search("zebra", u, kw).empty());

  mem.delete_memory(id);
  CHECK(mem.search("okapi", u, kw).empty());
  CHECK(mem.search("yak", u, kw).size() == 1);
  CHECK(mem.delete_all(u) == 1);
  CHECK(mem.search("yak", u, kw).empty());
  mem.reset();
  CHECK(mem.search("zebra", user("alice"), kw).empty());
  mem.add("a zebra again", u, {.infer = false});
  CHECK(mem.search("zebra", u, kw).size() == 1);
  CHECK(mem.search("zebra", u).size() == 1);
}

TEST_CASE("rank: expired memories are hidden from the day after their expiration date", "[rank]") {
  memory mem;
  const scope u = user("carol");
  const auto t = today();
  using std::chrono::days;
  const auto yesterday = mem.add("The parking permit code is 1111", u, {.infer = false, .expiration_date = day_string(t - days{1})});
  const auto on_day = mem.add("The parking gate code is 2222", u, {.infer = false, .expiration_date = day_string(t)});
  mem.add("The parking lift code is 3333", u, {.infer = false, .expiration_date = day_string(t + days{1})});
  mem.add("The parking garage code is 4444", u, {.infer = false});
  REQUIRE(yesterday.results.size() == 1);

  for (const auto mode : {search_mode::hybrid, search_mode::semantic, search_mode::keyword}) {
    const auto hits = mem.search("parking code", u, {.mode = mode});
    CHECK(hits.size() == 3);
    CHECK_FALSE(contains_text(hits, "The parking permit code is 1111"));
    CHECK(contains_text(hits, "The parking gate code is 2222"));  // the day itself is visible
    CHECK(mem.search("parking code", u, {.mode = mode, .show_expired = true}).size() == 4);
    // also through a filter
    const auto filtered = mem.search("parking code", u, {.filter = field("user_id") == "carol", .mode = mode});
    CHECK(filtered.size() == 3);
  }
  CHECK(mem.get_all(u).size() == 3);
  CHECK(mem.get_all(u, {.show_expired = true}).size() == 4);
  CHECK(mem.get(yesterday.results[0].id).has_value());  // get by id still answers
  CHECK(mem.get(on_day.results[0].id)->expiration_date == day_string(t));

  // clearing the date makes it visible again; setting one hides it
  mem.update(yesterday.results[0].id, "The parking permit code is 1111", {.expiration_date = ""});
  CHECK(mem.get_all(u).size() == 4);
  CHECK_FALSE(mem.get(yesterday.results[0].id)->expiration_date.has_value());
  mem.update(on_day.results[0].id, "The parking gate code is 2222", {.expiration_date = "2001-01-01"});
  CHECK(mem.get_all(u).size() == 3);
  CHECK_FALSE(contains_text(mem.search("gate", u), "The parking gate code is 2222"));

  // the same text said again is a new (visible) memory, not a duplicate of the expired one
  const auto again = mem.add("The parking gate code is 2222", u, {.infer = false});
  REQUIRE(again.results.size() == 1);
  CHECK(again.results[0].event == event_kind::add);
  CHECK(contains_text(mem.search("gate", u), "The parking gate code is 2222"));
  mem.delete_memory(again.results[0].id);

  // bad dates are refused and nothing is stored
  CHECK_THROWS_AS(mem.add("x", u, {.expiration_date = "2026-02-30"}), validation_error);
  CHECK_THROWS_AS(mem.add("x", u, {.expiration_date = "31/12/2026"}), validation_error);
  CHECK_THROWS_AS(mem.update(on_day.results[0].id, "y", {.expiration_date = "tomorrow"}), validation_error);
  CHECK(mem.get_all(u, {.show_expired = true}).size() == 4);
  CHECK(mem.get(on_day.results[0].id)->memory == "The parking gate code is 2222");

  // JSON carries the date both ways
  const nlohmann::json j = *mem.get(on_day.results[0].id);
  CHECK(j.at("expiration_date") == "2001-01-01");
  CHECK(j.get<record>().expiration_date == "2001-01-01");
  CHECK_FALSE(nlohmann::json(*mem.get(yesterday.results[0].id)).contains("expiration_date"));
  auto bad = j;
  bad["expiration_date"] = "2001-13-01";
  CHECK_THROWS_AS(bad.get<record>(), validation_error);
}

TEST_CASE("rank: explained parts sum to the final score in every mode", "[rank]") {
  memory mem;
  const scope u = user("dan");
  mem.add("I drink green tea every morning", u, {.metadata = {{"importance", 0.9}}, .infer = false});
  mem.add("Green tea is my favourite drink", u, {.metadata = {{"importance", 0.1}}, .infer = false});
  mem.add("I drink coffee at work", u, {.metadata = {{"importance", "high"}}, .infer = false});
  const ranking_weights extra{.recency = 0.2f, .importance = 0.3f, .access = 0.1f};
  for (const auto mode : {search_mode::hybrid, search_mode::semantic, search_mode::keyword})
    for (const auto fusion : {fusion_method::weighted, fusion_method::reciprocal_rank}) {
      auto w = extra;
      w.fusion = fusion;
      const auto hits = mem.search("green tea drink", u, {.mode = mode, .weights = w, .explain = true});
      REQUIRE_FALSE(hits.empty());
      for (std::size_t i = 0; i < hits.size(); ++i) {
        REQUIRE(hits[i].details);
        const auto& d = *hits[i].details;
        CHECK(d.semantic + d.keyword + d.recency + d.importance + d.access == Approx(d.final));
        CHECK(d.final == hits[i].score);
        CHECK(d.recency == Approx(0.2f).epsilon(1e-3));  // just written: recency ~ 1
        if (i) CHECK(hits[i - 1].score >= hits[i].score);
      }
    }
  // no explain, no details; JSON shows score_details only when explained
  const auto plain = mem.search("green tea", u);
  CHECK_FALSE(plain.front().details);
  CHECK_FALSE(nlohmann::json(plain.front()).contains("score_details"));
  const auto explained = mem.search("green tea", u, {.explain = true});
  const nlohmann::json j = explained.front();
  CHECK(j.at("score_details").at("final").get<float>() == Approx(explained.front().score));

  // a plain semantic search still scores by cosine alone
  const auto sem = mem.search("green tea", u, {.mode = search_mode::semantic, .explain = true});
  CHECK(sem.front().score == sem.front().details->cosine);

  // importance decides between two equally similar memories
  memory m2;
  m2.add("meeting with Rui on Friday", u, {.metadata = {{"importance", 0.1}}, .infer = false});
  m2.add("meeting with Rui on Monday", u, {.metadata = {{"importance", 1.0}}, .infer = false});
  const auto by_importance = m2.search("meeting with Rui", u, {.weights = {.importance = 1.0f}});
  CHECK(by_importance.front().record.memory == "meeting with Rui on Monday");

  CHECK_THROWS_AS(mem.search("tea", u, {.weights = {.recency = -1.0f}}), validation_error);
  CHECK_THROWS_AS(mem.search("tea", u, {.weights = {.recency = 1.0f, .recency_half_life_days = 0.0}}), validation_error);
}

TEST_CASE("rank: recency, importance and access scores", "[rank]") {
  const auto now = utc_now();
  CHECK(recency_score(now, now, 30.0) == Approx(1.0f));
  CHECK(recency_score(now - std::chrono::days{30}, now, 30.0) == Approx(0.5f));
  CHECK(recency_score(now - std::chrono::days{60}, now, 30.0) == Approx(0.25f));
  CHECK(recency_score(now + std::chrono::days{5}, now, 30.0) == Approx(1.0f));
  CHECK(importance_score({{"importance", 0.4}}, "importance") == Approx(0.4f));
  CHECK(importance_score({{"importance", 7}}, "importance") == Approx(1.0f));
  CHECK(importance_score({{"importance", -2}}, "importance") == 0.0f);
  CHECK(importance_score({{"importance", "x"}}, "importance") == 0.0f);
  CHECK(importance_score({{"weight", 0.5}}, "weight") == Approx(0.5f));
  CHECK(access_score(0, 5.0f) == 0.0f);
  CHECK(access_score(5, 5.0f) == Approx(0.5f));

  // access frequency: a memory returned more often ranks higher when the access term is on
  memory mem;
  const scope u = user("erin");
  mem.add("The blue notebook is on the desk", u, {.infer = false});
  mem.add("The blue notebook is on the shelf", u, {.infer = false});
  for (int i = 0; i < 5; ++i) (void)mem.search("shelf", u, {.limit = 1});
  const auto hits = mem.search("blue notebook", u, {.weights = {.access = 1.0f}, .explain = true});
  REQUIRE(hits.size() == 2);
  CHECK(hits.front().record.memory == "The blue notebook is on the shelf");
  CHECK(hits.front().details->access > hits.back().details->access);
}

namespace {
using file_memory = basic_memory<hashing_embedder, flat_index, file_store, verbatim_extractor>;

std::map<std::string, std::uint32_t> stored_access(const file_memory& m) {
  std::map<std::string, std::uint32_t> out;
  m.store().for_each_access_count(scope{}, [&](const std::string& id, std::uint32_t n) { out[id] = n; });
  return out;
}
}  // namespace

TEST_CASE("rank: access counts are written to the store and survive reopening", "[rank][access]") {
  engram_test::temp_dir dir;
  const scope u = user("erin");
  std::string shelf, desk;
  {
    file_memory mem(hashing_embedder(), file_store(dir.sub("db")));  // default interval: written on destruction
    desk = mem.add("The blue notebook is on the desk", u, {.infer = false}).results.at(0).id;
    shelf = mem.add("The blue notebook is on the shelf", u, {.infer = false}).results.at(0).id;
    for (int i = 0; i < 5; ++i) CHECK(mem.search("shelf", u, {.limit = 1}).at(0).record.id == shelf);
    CHECK(stored_access(mem).empty());  // not due yet
  }
  {
    file_memory mem(hashing_embedder(), file_store(dir.sub("db")));
    CHECK(stored_access(mem) == std::map<std::string, std::uint32_t>{{shelf, 5}});
    const auto hits = mem.search("blue notebook", u, {.weights = {.access = 1.0f}, .explain = true});
    REQUIRE(hits.size() == 2);
    CHECK(hits.front().record.id == shelf);
    CHECK(hits.front().details->access == Approx(access_score(5, 5.0f)));
    CHECK(hits.back().details->access == 0.0f);
    mem.flush_access_counts();  // that search counted both
    CHECK(stored_access(mem) == std::map<std::string, std::uint32_t>{{shelf, 6}, {desk, 1}});

    // an update keeps the count, a delete drops it; neither is an access
    mem.update(shelf, "The blue notebook is on the top shelf");
    mem.delete_memory(desk);
    CHECK(stored_access(mem) == std::map<std::string, std::uint32_t>{{shelf, 6}});
    CHECK(mem.history(shelf).size() == 2);
  }
  memory_config every_search;
  every_search.access_flush_interval = std::chrono::milliseconds{0};
  file_memory mem(hashing_embedder(), flat_index(hashing_embedder().dimension()), file_store(dir.sub("db")),
                  verbatim_extractor(), every_search);
  CHECK(stored_access(mem) == std::map<std::string, std::uint32_t>{{shelf, 6}});
  (void)mem.search("notebook", u);
  // a search never writes: the background flusher does, at once with an interval of 0
  const std::map<std::string, std::uint32_t> after{{shelf, 7}};
  for (int i = 0; i < 500 && stored_access(mem) != after; ++i) std::this_thread::sleep_for(std::chrono::milliseconds{10});
  CHECK(stored_access(mem) == after);
  mem.reset();
  CHECK(stored_access(mem).empty());
}

TEST_CASE("rank: a read-only store keeps counts in memory only", "[rank][access]") {
  engram_test::temp_dir dir;
  const scope u = user("gus");
  {
    file_memory mem(hashing_embedder(), file_store(dir.sub("db")));
    mem.add("Gus keeps bees on the roof", u, {.infer = false});
  }
  memory_config every_search;
  every_search.access_flush_interval = std::chrono::milliseconds{0};
  file_memory ro(hashing_embedder(), flat_index(hashing_embedder().dimension()),
                 file_store(dir.sub("db"), {.read_only = true}), verbatim_extractor(), every_search);
  for (int i = 0; i < 3; ++i) (void)ro.search("bees", u);
  const auto hits = ro.search("bees", u, {.weights = {.access = 1.0f}, .explain = true});
  REQUIRE(hits.size() == 1);
  CHECK(hits.front().details->access == Approx(access_score(3, 5.0f)));
  CHECK_NOTHROW(ro.flush_access_counts());
  CHECK(stored_access(ro).empty());
}

TEST_CASE("rank: a scope evicted from the partition cache reloads its access counts", "[rank][access]") {
  memory_config cfg;
  cfg.partition_cache_bytes = 1;  // every scope is evicted once the operation using it is done
  cfg.access_flush_interval = std::chrono::hours{1};  // written only by flush_access_counts()
  basic_memory<hashing_embedder, flat_index, memory_store, verbatim_extractor> mem(
      hashing_embedder(), flat_index(hashing_embedder().dimension()), memory_store(), verbatim_extractor(), cfg);
  const scope a = user("ann"), b = user("bo");
  mem.add("Ann grows tomatoes", a, {.infer = false});
  mem.add("Bo collects stamps", b, {.infer = false});
  auto access_of_ann = [&] {
    const auto hits = mem.search("tomatoes", a, {.weights = {.access = 1.0f}, .explain = true});
    REQUIRE(hits.size() == 1);
    return hits.front().details->access;  // the counts before this search
  };
  for (int i = 0; i < 3; ++i) (void)mem.search("tomatoes", a);
  (void)mem.search("stamps", b);  // ann's scope is evicted, then reloaded: 3 hits gathered, not yet written
  CHECK(access_of_ann() == Approx(access_score(3, 5.0f)));
  mem.flush_access_counts();
  (void)mem.search("stamps", b);
  CHECK(access_of_ann() == Approx(access_score(4, 5.0f)));  // from the store now
  CHECK(mem.cache_stats().evictions >= 2);
}

TEST_CASE("rank: filters apply in every mode", "[rank]") {
  memory mem;
  const scope u = user("fay");
  for (int i = 0; i < 20; ++i)
    mem.add("project note " + std::to_string(i) + " about the budget", u,
            {.metadata = {{"topic", i % 2 ? "work" : "home"}}, .infer = false});
  mem.add("budget budget budget for home", u, {.metadata = {{"topic", "home"}}, .infer = false});
  for (const auto mode : {search_mode::hybrid, search_mode::semantic, search_mode::keyword}) {
    const auto hits = mem.search("budget", u, {.limit = 50, .filter = field("topic") == "work", .mode = mode});
    CHECK(hits.size() == 10);
    for (const auto& h : hits) CHECK(h.record.metadata.at("topic") == "work");
    for (const auto strategy : {filter_strategy::pre_filter, filter_strategy::post_filter}) {
      const auto hs = mem.search("budget", u,
                                 {.limit = 3, .filter = field("topic") == "home", .strategy = strategy, .mode = mode});
      CHECK(hs.size() == 3);
      for (const auto& h : hs) CHECK(h.record.metadata.at("topic") == "home");
    }
  }
  // scope walls hold for keyword search too
  mem.add("budget for another user", user("gus"), {.infer = false});
  for (const auto& h : mem.search("budget", u, {.limit = 100, .mode = search_mode::keyword})) CHECK(h.record.user_id == "fay");
}

TEST_CASE("rank: a reranker sees the candidate pool and decides the order", "[rank]") {
  struct reverse_reranker {
    std::vector<search_hit> rerank(std::string_view, std::vector<search_hit> hits) const {
      std::reverse(hits.begin(), hits.end());
      return hits;
    }
  };
  static_assert(reranker<reverse_reranker>);
  static_assert(reranker<no_reranker>);
  const scope u = user("hal");
  memory plain;
  memory reversed(hashing_embedder(), memory_store(), verbatim_extractor(),
                  memory_config{.rerank = make_rerank_function(reverse_reranker{})});
  memory noop(hashing_embedder(), memory_store(), verbatim_extractor(),
              memory_config{.rerank = make_rerank_function(no_reranker{})});
  for (auto* m : {&plain, &reversed, &noop}) {
    m->add("apples are red", u, {.infer = false});
    m->add("apples and pears", u, {.infer = false});
    m->add("I like apples, pears and plums", u, {.infer = false});
  }
  const auto a = plain.search("apples pears plums", u, {.limit = 2});
  const auto b = reversed.search("apples pears plums", u, {.limit = 2});
  const auto c = noop.search("apples pears plums", u, {.limit = 2});
  REQUIRE(a.size() == 2);
  REQUIRE(b.size() == 2);
  CHECK(b.front().record.memory == "apples are red");  // the pool's last, first after reversal
  CHECK(c.front().record.memory == a.front().record.memory);
  CHECK(c[1].record.memory == a[1].record.memory);
}
