// Retrieval quality and latency of engram's search modes on synthetic multi-session conversations.
//
// The generator (fixed seed, its own integer RNG so every platform builds the same set) writes, for 100 users,
// six sessions of chat spread over five weeks: planted facts (a pet's name, the city they live in, a locker
// code, ...), later contradictions of some of them ("I just moved to Porto"), and everyday filler that shares
// words with the questions (a friend's dog, a colleague's car). Each user then asks one paraphrased question per
// planted fact; the known answer is the latest memory stating that fact. Reported per mode: recall@1/5/10 and
// MRR (over the top 10), and for contradicted facts how often the current fact outranks the stale one.
// Then the search latency (p50, p95) in one 10k-memory scope.
//
// Usage: bench_retrieval [--users N] [--fillers N per user, default 300] [--latency-memories N, 0: skip]
//                        [--queries N] [--seed N, default: both the development and the held-out seed]

#include <engram/engram.hpp>
#include "../data.hpp"
#include <engram/detail/md5.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

using namespace engram;

namespace {

using engram_bench::rng;  // splitmix64: the same sets on every platform (std distributions differ)

std::string fill(std::string t, const std::string& v) {
  const auto pos = t.find("{v}");
  if (pos != std::string::npos) t.replace(pos, 3, v);
  return t;
}

using strings = std::vector<std::string>;

struct category {
  strings facts;      // templates stating the fact, {v} the value
  strings updates;    // templates stating a changed value (contradictions); empty: never changes
  strings questions;  // paraphrased questions
  strings values;
};

std::string digits(rng& r, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s.push_back(static_cast<char>('0' + r.below(10)));
  return s;
}

const strings cities = {"Lisbon", "Porto", "Madrid", "Berlin", "Oslo", "Krakow", "Dublin", "Lyon", "Turin", "Ghent",
                        "Seville", "Bergen", "Tallinn", "Utrecht", "Zurich"};
const strings names = {"Marta", "Joana", "Ines", "Rui", "Tomas", "Sofia", "Pedro", "Clara", "Hugo", "Lena", "Nadia",
                       "Omar", "Yuki", "Priya", "Anders", "Bea", "Carlos", "Dmitri"};
const strings pets = {"Biscuit", "Pepper", "Nala", "Rocco", "Miso", "Tofu", "Luna", "Bruno", "Ziggy", "Waffles",
                      "Mochi", "Pixel", "Olive", "Juniper"};
const strings cars = {"Toyota Corolla", "Volkswagen Golf", "Tesla Model 3", "Renault Clio", "Volvo V60",
                      "Fiat Panda", "Skoda Octavia", "Mazda MX-5", "Honda Civic"};
const strings foods = {"ramen", "lasagna", "sushi", "paella", "tacos", "pho", "bacalhau", "dumplings", "risotto",
                       "falafel", "moussaka"};

std::vector<category> categories() {
  return {
      {{"My dog is called {v}", "We named our puppy {v}"},
       {},
       {"What is the name of my dog?", "What did we call the puppy?"},
       pets},
      {{"I live in {v}", "Home for me is {v} these days"},
       {"I just moved to {v}", "We relocated to {v} last month"},
       {"Which city do I live in?", "Where is my home now?"},
       cities},
      {{"I work as a {v}", "My job is {v} at a small firm"},
       {"I changed careers and I am now a {v}"},
       {"What do I do for a living?", "What is my profession?"},
       {"nurse", "carpenter", "data analyst", "pharmacist", "architect", "pilot", "librarian", "chef", "electrician"}},
      {{"My favourite food is {v}", "I could eat {v} every single day"},
       {},
       {"What food do I love most?", "Which dish is my favorite?"},
       foods},
      {{"I am allergic to {v}", "{v} gives me a bad allergic reaction"},
       {},
       {"What am I allergic to?", "Which allergy do I have?"},
       {"peanuts", "shellfish", "penicillin", "pollen", "latex", "sesame", "kiwi"}},
      {{"I drive a {v}", "My car is a {v}"},
       {"I sold my old car and bought a {v}"},
       {"What car do I drive?", "Which vehicle do I own?"},
       cars},
      {{"My sister's name is {v}", "{v} is my younger sister"},
       {},
       {"What is my sister called?", "Who is my sibling?"},
       names},
      {{"My gym locker code is {v}", "The combination of my locker at the gym is {v}"},
       {"The gym reset my locker code to {v}"},
       {"What's the combination for my gym locker?", "locker code?"},
       {}},  // values: 4 digits
      {{"The home wifi password is {v}", "Our wifi key at home is {v}"},
       {"We changed the home wifi password to {v}"},
       {"What's the password for the wifi at home?", "wifi key?"},
       {}},  // values: word-word-digits
      {{"My doctor is Dr. {v}", "I see Dr. {v} for checkups"},
       {"I switched to a new GP, Dr. {v}"},
       {"Who is my physician?", "What's my doctor's name?"},
       {"Almeida", "Okafor", "Lindqvist", "Moreau", "Tanaka", "Novak", "Brennan", "Costa"}},
      {{"My flight number for the trip is {v}", "I'm booked on flight {v}"},
       {"The airline moved me to flight {v}"},
       {"Which flight am I taking?", "What's my flight number?"},
       {}},  // values: XX1234
      {{"My birthday is on {v}", "I was born on {v}"},
       {},
       {"When is my birthday?", "What is my date of birth?"},
       {"March 3", "July 19", "October 30", "January 8", "May 22", "December 1", "August 14"}},
      {{"I play {v} on weekends", "Most Saturdays I spend playing {v}"},
       {"I gave up my old hobby and now play {v}"},
       {"What do I do for fun on weekends?", "Which sport or instrument do I play?"},
       {"tennis", "chess", "the violin", "basketball", "padel", "the drums", "volleyball", "the cello"}},
      {{"I am learning {v}", "I take {v} lessons twice a week"},
       {"I stopped my old course and started learning {v}"},
       {"Which language am I studying?", "What language lessons do I take?"},
       {"Japanese", "German", "Portuguese", "Korean", "Italian", "Arabic", "Finnish"}},
      {{"I always order a {v}", "My usual coffee is a {v}"},
       {"These days my coffee order is a {v}"},
       {"What's my usual coffee order?", "How do I take my coffee?"},
       {"flat white", "cortado", "oat latte", "double espresso", "cappuccino", "americano"}},
      {{"I support {v}", "I have been a {v} fan since childhood"},
       {},
       {"Which football club do I root for?", "What team do I cheer for?"},
       {"Benfica", "Arsenal", "Celtic", "Ajax", "Napoli", "Sevilla", "Rosenborg"}},
      {{"I work at {v}", "My employer is {v}"},
       {"I left my job and joined {v}"},
       {"Which company employs me?", "Where do I work?"},
       {"Acme", "Globex", "Initech", "Hooli", "Vandelay Industries", "Stark Logistics", "Wonka Labs"}},
      {{"My insurance policy number is {v}", "The policy number on my health insurance is {v}"},
       {},
       {"What's my insurance policy number?", "policy number?"},
       {}},  // values: POL-123456
      {{"I'm reading {v} right now", "My current book is {v}"},
       {"I finished that book and started {v}"},
       {"Which book am I reading at the moment?", "What am I reading?"},
       {"Dune", "Middlemarch", "The Hobbit", "Pachinko", "Beloved", "Solaris", "Stoner", "Persuasion"}},
      {{"My partner's name is {v}", "I have been married to {v} for five years"},
       {},
       {"What is my partner called?", "Who is my spouse?"},
       names},
  };
}

std::string value_for(std::size_t cat, const category& c, rng& r) {
  if (!c.values.empty()) return r.pick(c.values);
  static const strings words = {"blue", "otter", "maple", "quartz", "tiger", "lemon", "harbor", "cobalt", "fern"};
  switch (cat) {
    case 7: return digits(r, 4);
    case 8: return r.pick(words) + "-" + r.pick(words) + "-" + digits(r, 4);
    case 10: return std::string(1, static_cast<char>('A' + r.below(26))) + static_cast<char>('A' + r.below(26)) + digits(r, 4);
    case 17: return "POL-" + digits(r, 6);
    default: return digits(r, 5);
  }
}

std::string filler(rng& r) {
  static const strings movies = {"Alien", "Amelie", "Heat", "Up", "Arrival", "Parasite", "Jaws"};
  static const strings items = {"milk", "batteries", "a new kettle", "socks", "printer paper", "olive oil"};
  static const strings topics = {"solar panels", "sleep", "urban gardening", "chess openings", "the housing market"};
  static const strings days = {"Monday", "Tuesday", "Thursday", "Friday"};
  switch (r.below(16)) {
    case 0: return "I watched " + r.pick(movies) + " last night";
    case 1: return "I need to buy " + r.pick(items) + " tomorrow";
    case 2: return "My friend " + r.pick(names) + " has a dog named " + r.pick(pets);
    case 3: return "My colleague drives a " + r.pick(cars);
    case 4: return "My brother lives in " + r.pick(cities);
    case 5: return "I had " + r.pick(foods) + " for lunch today";
    case 6: return "The meeting with " + r.pick(names) + " moved to " + r.pick(days);
    case 7: return "I read an article about " + r.pick(topics);
    case 8: return "The cat next door is called " + r.pick(pets);
    case 9: return "My old work password was " + r.pick(pets) + digits(r, 3);
    case 10: return "We might visit " + r.pick(cities) + " in the spring";
    case 11: return "The gym was packed this morning";
    case 12: return "My cousin works as a pharmacist in " + r.pick(cities);
    case 13: return "Traffic was terrible on the way home";
    case 14: return "I booked a table for " + std::to_string(2 + r.below(5)) + " at an Italian place";
    default: return "Remind me to call " + r.pick(names) + " about the " + r.pick(items);
  }
}

struct question {
  std::string user;
  std::string text;
  std::string answer_id;
  std::string stale_id;  // the contradicted memory, when there is one
  bool names_value = false;  // asks about the fact's value itself ("What did I tell you about QX7731?")
  bool shares_term = false;  // the question and the answer share a keyword term (after stemming and stop words)
  std::size_t category = 0;  // index into categories()
};

struct dataset {
  std::vector<record> records;
  std::vector<question> questions;
};

/// `counter` numbers the ids of one data set: deterministic ids keep slot order, and so tie-breaking, the same
/// every run, whichever other data sets the run generates.
record make_record(std::size_t& counter, const std::string& user_id, const std::string& text, timestamp at) {
  record r;
  r.id = "mem-" + std::to_string(++counter);
  r.memory = text;
  r.hash = detail::md5_hex(text);
  r.user_id = user_id;
  r.role = "user";
  r.created_at = r.updated_at = at;
  return r;
}

/// `fillers` everyday memories drawn per user, plus 12 of the 20 fact categories planted and 4 of those
/// contradicted. A filler whose text the user already has is dropped unless `keep_duplicates`, as
/// basic_memory::add skips an exact duplicate in a scope (a store never holds "The gym was packed this morning"
/// 19 times for one user); the draws are the same either way, so both sets hold the same facts and questions.
dataset generate(std::size_t users, std::size_t fillers, std::uint64_t seed, bool keep_duplicates = false) {
  rng r{seed};
  const auto cats = categories();
  // six weekly sessions ending about a week ago (ages matter to the recency term)
  const timestamp base = std::chrono::floor<std::chrono::days>(utc_now()) - std::chrono::days{49};
  constexpr int sessions = 6;
  auto session_time = [&](int s) { return base + std::chrono::days{7 * s} + std::chrono::minutes{r.below(600)}; };
  dataset d;
  std::size_t counter = 0;
  for (std::size_t u = 0; u < users; ++u) {
    const std::string uid = "user-" + std::to_string(u);
    std::vector<std::size_t> order(cats.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[r.below(i)]);
    order.resize(12);
    std::size_t contradicted = 0;
    for (const auto c : order) {
      const auto& cat = cats[c];
      const int s = static_cast<int>(r.below(3));  // facts are told in the first three sessions
      std::string value = value_for(c, cat, r);
      const auto first = make_record(counter, uid, fill(r.pick(cat.facts), value), session_time(s));
      d.records.push_back(first);
      question q{uid, r.pick(cat.questions), first.id, {}};
      q.category = c;
      std::string answer = first.memory;
      if (!cat.updates.empty() && contradicted < 4) {
        std::string v;
        do v = value_for(c, cat, r);
        while (first.memory.find(v) != std::string::npos);
        const auto later = make_record(counter, uid, fill(r.pick(cat.updates), v), session_time(3 + static_cast<int>(r.below(3))));
        d.records.push_back(later);
        q.answer_id = later.id;
        q.stale_id = first.id;
        answer = later.memory;
        value = v;
        ++contradicted;
      }
      // one question in four names the value instead (agents ask about a name or code they saw)
      if (r.below(4) == 0) {
        static const strings about = {"What did I tell you about {v}?", "Remind me what {v} is", "{v}?"};
        q.text = fill(r.pick(about), value);
        q.names_value = true;
      }
      const auto qt = keyword_terms(q.text), at = keyword_terms(answer);
      q.shares_term = std::any_of(qt.begin(), qt.end(), [&](const std::string& t) { return std::find(at.begin(), at.end(), t) != at.end(); });
      d.questions.push_back(std::move(q));
    }
    std::set<std::string> seen;
    for (std::size_t i = 0; i < fillers; ++i) {
      // drawn in the order of the first version's make_record(.., filler(r), session_time(..)) as GCC evaluates
      // it (arguments right to left), so --duplicates 1 rebuilds that version's set exactly
      const auto at = session_time(static_cast<int>(r.below(sessions)));
      auto text = filler(r);
      if (!seen.insert(text).second && !keep_duplicates) continue;
      d.records.push_back(make_record(counter, uid, text, at));
    }
  }
  return d;
}

memory load(const std::vector<record>& records, hashing_embedder embedder = hashing_embedder(),
            const memory_config& config = {}) {
  memory_store store;
  write_batch batch;
  batch.upserts = records;  // without vectors: the memory embeds them when it opens
  store.apply(batch);
  return memory(std::move(embedder), std::move(store), verbatim_extractor{}, config);
}

struct mode_row {
  const char* name;
  search_options options;
};

template <class Pred>
void evaluate(const memory& mem, const dataset& d, const std::vector<mode_row>& rows, const char* title, Pred&& which) {
  std::size_t count = 0;
  for (const auto& q : d.questions) count += which(q) ? 1 : 0;
  std::printf("\n%s: %zu questions\n", title, count);
  if (!count) return;
  std::printf("%-26s %9s %9s %9s %7s %12s\n", "mode", "recall@1", "recall@5", "recall@10", "MRR", "current>stale");
  for (const auto& row : rows) {
    std::size_t at1 = 0, at5 = 0, at10 = 0, contradictions = 0, current_first = 0;
    double mrr = 0.0;
    for (const auto& q : d.questions) {
      if (!which(q)) continue;
      auto o = row.options;
      o.limit = 10;
      const auto hits = mem.search(q.text, user(q.user), o);
      std::size_t rank = 0, stale_rank = 0;
      for (std::size_t i = 0; i < hits.size(); ++i) {
        if (hits[i].record.id == q.answer_id) rank = i + 1;
        if (!q.stale_id.empty() && hits[i].record.id == q.stale_id) stale_rank = i + 1;
      }
      at1 += rank == 1;
      at5 += rank && rank <= 5;
      at10 += rank && rank <= 10;
      if (rank) mrr += 1.0 / double(rank);
      if (!q.stale_id.empty()) {
        ++contradictions;
        current_first += rank && (!stale_rank || rank < stale_rank);
      }
    }
    const double n = double(count);
    std::printf("%-26s %9.3f %9.3f %9.3f %7.3f %12.3f\n", row.name, at1 / n, at5 / n, at10 / n, mrr / n,
                contradictions ? double(current_first) / double(contradictions) : 0.0);
  }
  // the ceiling of any fusion of the two lists: the answer is in the semantic or the keyword top 10
  // (and of the top 50: the candidate pool hybrid search fuses for limit 10)
  std::size_t in_union = 0, only_semantic = 0, only_keyword = 0, in_pools = 0;
  for (const auto& q : d.questions) {
    if (!which(q)) continue;
    auto rank = [&](search_mode m) {
      const auto hits = mem.search(q.text, user(q.user), {.limit = 50, .mode = m});
      for (std::size_t i = 0; i < hits.size(); ++i)
        if (hits[i].record.id == q.answer_id) return i + 1;
      return std::size_t{999};
    };
    const auto rs = rank(search_mode::semantic), rk = rank(search_mode::keyword);
    const bool s = rs <= 10, k = rk <= 10;
    in_union += s || k;
    only_semantic += s && !k;
    only_keyword += k && !s;
    in_pools += rs <= 50 || rk <= 50;
  }
  std::printf("answer in the semantic or keyword top 10: %.3f (%zu; only semantic %zu, only keyword %zu); "
              "top 50: %.3f\n",
              double(in_union) / double(count), in_union, only_semantic, only_keyword, double(in_pools) / double(count));
}

void latency(std::size_t memories, std::size_t queries, const std::vector<mode_row>& rows, const hashing_embedder& embedder) {
  // one user holding `memories` memories: the generator's output for many users, all under one user id
  auto d = generate(memories / 40 + 1, 44, 7);  // about 50 distinct memories per user
  d.records.resize(std::min(memories, d.records.size()));
  for (auto& r : d.records) r.user_id = "big";
  const memory mem = load(d.records, embedder);
  std::printf("\nsearch latency, one scope of %zu memories, %zu queries, limit 10 (query embedding included)\n",
              mem.size(), queries);
  std::printf("%-26s %9s %9s %9s %9s\n", "mode", "p50 ms", "p95 ms", "max ms", "hits/q");
  for (const auto& row : rows) {
    std::vector<double> ms;
    std::size_t found = 0;
    auto o = row.options;
    o.limit = 10;
    for (std::size_t i = 0; i < queries + 20; ++i) {
      const auto& q = d.questions[i % d.questions.size()];
      const auto t0 = std::chrono::steady_clock::now();
      const auto hits = mem.search(q.text, user("big"), o);
      const auto t1 = std::chrono::steady_clock::now();
      found += hits.size();
      if (i >= 20) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());  // 20 warm-up
    }
    std::sort(ms.begin(), ms.end());
    std::printf("%-26s %9.3f %9.3f %9.3f %9.1f\n", row.name, ms[ms.size() / 2], ms[ms.size() * 95 / 100], ms.back(),
                double(found) / double(queries + 20));
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::size_t users = 100, fillers = 300, big = 10000, queries = 1000;
  bool keep_duplicates = false, by_category = false;
  std::string wordnet_dir = std::filesystem::exists("/usr/share/wordnet/index.noun") ? "/usr/share/wordnet" : "";
  wordnet_options wn;
  float related_weight = 1.0f, semantic_weight = 0.5f, entity_weight = 0.0f;
  // The development seed, and a held-out seed that no ranking change was tuned on: a change is kept only when
  // it helps on both.
  std::vector<std::uint64_t> seeds = {20261124, 5550123};
  for (int i = 1; i + 1 < argc; i += 2) {
    const auto v = static_cast<std::size_t>(std::strtoull(argv[i + 1], nullptr, 10));
    if (!std::strcmp(argv[i], "--users")) users = v;
    else if (!std::strcmp(argv[i], "--latency-memories")) big = v;
    else if (!std::strcmp(argv[i], "--queries")) queries = v;
    else if (!std::strcmp(argv[i], "--fillers")) fillers = v;
    else if (!std::strcmp(argv[i], "--seed")) seeds = {v};
    else if (!std::strcmp(argv[i], "--duplicates")) keep_duplicates = v != 0;
    else if (!std::strcmp(argv[i], "--by-category")) by_category = v != 0;
    else if (!std::strcmp(argv[i], "--semantic-weight")) semantic_weight = std::strtof(argv[i + 1], nullptr);
    else if (!std::strcmp(argv[i], "--wordnet")) wordnet_dir = std::strcmp(argv[i + 1], "-") ? argv[i + 1] : "";
    else if (!std::strcmp(argv[i], "--senses")) wn.senses = v;
    else if (!std::strcmp(argv[i], "--depth")) wn.hypernym_depth = v;
    else if (!std::strcmp(argv[i], "--decay")) wn.hypernym_decay = std::strtof(argv[i + 1], nullptr);
    else if (!std::strcmp(argv[i], "--entity")) entity_weight = std::strtof(argv[i + 1], nullptr);
    else if (!std::strcmp(argv[i], "--related-weight")) related_weight = std::strtof(argv[i + 1], nullptr);
  }
  // the embedders compared: the plain hashing embedder, and with WordNet's related words when a database is there
  std::vector<std::pair<std::string, hashing_embedder>> embedders = {{"hashing_embedder", hashing_embedder()}};
  if (!wordnet_dir.empty()) {
    const auto t0 = std::chrono::steady_clock::now();
    auto rw = std::make_shared<const related_words>(related_words::load_wordnet(wordnet_dir, wn));
    std::printf("WordNet loaded from %s in %.2f s\n", wordnet_dir.c_str(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    hashing_embedder e(384, std::move(rw), related_weight);
    embedders.emplace_back(e.name(), e);
  }
  char hybrid_name[64];
  std::snprintf(hybrid_name, sizeof hybrid_name, "hybrid (weighted %.1f/%.1f)", double(semantic_weight),
                1.0 - double(semantic_weight));
  std::vector<mode_row> rows = {
      {"semantic", {.mode = search_mode::semantic}},
      {"keyword (BM25)", {.mode = search_mode::keyword}},
      {hybrid_name, {.mode = search_mode::hybrid,
                     .weights = {.semantic = semantic_weight, .keyword = 1.0f - semantic_weight}}},
      {"hybrid (RRF k=60)", {.mode = search_mode::hybrid, .weights = {.fusion = fusion_method::reciprocal_rank}}},
      {"hybrid + recency 0.1", {.mode = search_mode::hybrid, .weights = {.recency = 0.1f}}},
  };
  // --entity W: the entity term (offline recogniser, one hop) on this single-hop set, against plain hybrid
  memory_config config;
  char entity_name[64];
  if (entity_weight > 0.0f) {
    config.entities = true;
    std::snprintf(entity_name, sizeof entity_name, "hybrid + entity %.2f", double(entity_weight));
    rows.push_back({entity_name, {.mode = search_mode::hybrid, .weights = {.entity = entity_weight}}});
  }
  for (const auto seed : users ? seeds : std::vector<std::uint64_t>{})  // --users 0: latency only
  for (const auto& [embedder_name, embedder] : embedders) {
    const auto d = generate(users, fillers, seed, keep_duplicates);
    const memory mem = load(d.records, embedder, config);
    std::printf("\n=== retrieval: %zu users, %zu memories, %zu questions (seed %llu%s, %s%s)\n", users,
                mem.size(), d.questions.size(), static_cast<unsigned long long>(seed),
                seed == 20261124 ? ", development" : seed == 5550123 ? ", held out" : "", embedder_name.c_str(),
                keep_duplicates ? ", duplicates kept" : "");
    evaluate(mem, d, rows, "all questions", [](const question&) { return true; });
    evaluate(mem, d, rows, "paraphrased questions", [](const question& q) { return !q.names_value; });
    evaluate(mem, d, rows, "questions naming the value", [](const question& q) { return q.names_value; });
    evaluate(mem, d, rows, "questions sharing no keyword term with the answer",
             [](const question& q) { return !q.shares_term; });
    if (by_category) {
      const auto cats = categories();
      for (std::size_t c = 0; c < cats.size(); ++c)
        evaluate(mem, d, {rows[0], rows[1], rows[2]}, cats[c].questions[0].c_str(),
                 [c](const question& q) { return q.category == c; });
    }
  }
  if (big)
    for (const auto& [embedder_name, embedder] : embedders) {
      std::printf("\nlatency with %s", embedder_name.c_str());
      latency(big, queries, rows, embedder);
    }
  return 0;
}
