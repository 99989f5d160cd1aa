// Entity memory on multi-hop questions: does search find the evidence spread over separate memories?
//
// The generator (fixed seeds, its own integer RNG) gives each user a small world: people with their employer,
// manager and home town, organisations with their office city, stated in separate memories ("Marta Lopez works
// at Initrode", "Initrode's office is in Tallinn", "Marta Lopez's manager is Hugo Silva", "Hugo Silva lives in
// Ghent"), and filler memories that share the questions' words and name other people, organisations and
// places ("Omar Reyes from Globex booked the office in Porto"). Questions:
// - multi-hop: "Where does Marta Lopez work from?" (evidence: her employer, and its office), "Where does
//   Marta Lopez's manager live?" (evidence: who the manager is, and where they live);
// - single-hop: "Where does Marta Lopez work?", "Who is Marta Lopez's manager?" (one memory each).
// Reported: recall@10 of the evidence memories (share of them in the top 10) and the share of questions with
// every evidence memory in the top 10, without and with the entity term (offline recogniser, one hop), in one
// run, for a development and a held-out seed; then search latency p50/p95 in one 10k-memory scope with and
// without it, and the entity index's memory per 1,000 memories.
//
// Usage: bench_multihop [--users N, default 100] [--fillers N per user, default 120] [--latency-memories N]
//                       [--queries N] [--entity W, default 0.5] [--seed N]

#include <engram/engram.hpp>
#include "../data.hpp"
#include <engram/entity/entity_index.hpp>

#include <algorithm>
#include <ctime>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <vector>

using namespace engram;

namespace {

using engram_bench::rng;  // splitmix64: the same sets on every platform (std distributions differ)
using engram_bench::thread_cpu_ms;

using strings = std::vector<std::string>;
const strings first_names = {"Marta", "Joana", "Ines", "Rui", "Tomas", "Sofia", "Pedro", "Clara", "Hugo", "Lena",
                             "Nadia", "Omar", "Yuki", "Priya", "Anders", "Bea", "Carlos", "Dmitri", "Elif", "Farid"};
const strings surnames = {"Lopez", "Silva", "Reyes", "Novak", "Berg", "Costa", "Haas", "Moreau", "Tanaka", "Kumar",
                          "Ortiz", "Weber", "Rossi", "Nagy", "Dias", "Lund"};
const strings orgs = {"Initrode", "Globex", "Umbrella Labs", "Hooli", "Vandelay Industries", "Stark Systems",
                      "Wayne Foundation", "Acme", "Cyberdyne", "Soylent", "Massive Dynamic", "Tyrell Corp"};
const strings cities = {"Lisbon", "Porto", "Madrid", "Berlin", "Oslo", "Krakow", "Dublin", "Lyon", "Turin", "Ghent",
                        "Seville", "Bergen", "Tallinn", "Utrecht", "Zurich"};

struct question {
  std::string user;
  std::string text;
  std::vector<std::string> evidence;  // memory texts
  bool multi_hop = false;
};

struct dataset {
  std::vector<std::pair<std::string, std::string>> memories;  // (user, text)
  std::vector<question> questions;
};

dataset generate(std::size_t users, std::size_t fillers, std::uint64_t seed) {
  rng r{seed};
  dataset d;
  for (std::size_t u = 0; u < users; ++u) {
    const std::string user = "user-" + std::to_string(u);
    auto person = [&] { return r.pick(first_names) + " " + r.pick(surnames); };
    std::set<std::string> people_seen;
    std::vector<std::string> people;
    while (people.size() < 4) {
      auto p = person();
      if (people_seen.insert(p).second) people.push_back(p);
    }
    std::vector<std::string> my_orgs;
    while (my_orgs.size() < 3) {
      const auto& o = r.pick(orgs);
      if (std::find(my_orgs.begin(), my_orgs.end(), o) == my_orgs.end()) my_orgs.push_back(o);
    }
    std::vector<std::string> texts, office(my_orgs.size()), home(people.size());
    for (std::size_t k = 0; k < my_orgs.size(); ++k) texts.push_back(office[k] = my_orgs[k] + "'s office is in " + r.pick(cities));
    for (std::size_t i = 0; i < people.size(); ++i) texts.push_back(home[i] = people[i] + " lives in " + r.pick(cities));
    for (std::size_t i = 0; i < people.size(); ++i) {
      const auto& p = people[i];
      const std::size_t k = i % my_orgs.size(), m = (i + 1) % people.size();
      const std::string works = p + " works at " + my_orgs[k];
      const std::string manages = p + "'s manager is " + people[m];
      texts.push_back(works);
      texts.push_back(manages);
      d.questions.push_back({user, "Where does " + p + " work from?", {works, office[k]}, true});
      d.questions.push_back({user, "Where does " + p + "'s manager live?", {manages, home[m]}, true});
      d.questions.push_back({user, "Where does " + p + " work?", {works}, false});
      d.questions.push_back({user, "Who is " + p + "'s manager?", {manages}, false});
    }
    const strings filler = {
        "{p} from {o} booked the office in {c}",          "The {o} office coffee machine is broken again",
        "{p} said the manager meeting moved to Thursday",  "Our team works from the new building on Fridays",
        "{p} lives near the station and works late",       "Where does the train to {c} leave from",
        "The manager of the bakery in {c} is friendly",    "{p} recommended a hotel in {c}",
        "I should ask who manages the {o} account",         "{p} visited {c} last spring with colleagues",
        "The {o} quarterly report is due next week",        "Remember to water the office plants"};
    for (std::size_t i = 0; i < fillers; ++i) {
      std::string t = r.pick(filler);
      for (const auto& [key, pool] : {std::pair<std::string, const strings*>{"{p}", nullptr}, {"{o}", &orgs}, {"{c}", &cities}}) {
        const auto pos = t.find(key);
        if (pos == std::string::npos) continue;
        t.replace(pos, 3, pool ? r.pick(*pool) : person());
      }
      texts.push_back(t);
    }
    std::set<std::string> seen;
    for (auto& t : texts)
      if (seen.insert(t).second) d.memories.emplace_back(user, t);
  }
  return d;
}

using bench_memory = basic_memory<hashing_embedder, flat_index, memory_store, verbatim_extractor>;

void evaluate(const bench_memory& mem, const dataset& d, float entity_weight) {
  struct row {
    const char* name;
    search_options options;
  };
  search_options plain{.limit = 10};
  search_options with = plain;
  with.weights.entity = entity_weight;
  char name[64];
  std::snprintf(name, sizeof name, "hybrid + entity %.2f", double(entity_weight));
  const std::vector<row> rows = {{"hybrid", plain}, {name, with}};
  std::printf("%-22s %-11s %10s %12s %10s\n", "mode", "questions", "recall@10", "all in top10", "recall@1");
  for (const bool multi : {true, false}) {
    for (const auto& [rname, opts] : rows) {
      std::size_t found = 0, total = 0, complete = 0, first = 0, n = 0;
      for (const auto& q : d.questions) {
        if (q.multi_hop != multi) continue;
        const auto hits = mem.search(q.text, user(q.user), opts);
        std::size_t in = 0;
        for (const auto& e : q.evidence)
          in += std::any_of(hits.begin(), hits.end(), [&](const search_hit& h) { return h.record.memory == e; });
        found += in;
        total += q.evidence.size();
        complete += in == q.evidence.size();
        first += !hits.empty() && std::find(q.evidence.begin(), q.evidence.end(), hits[0].record.memory) != q.evidence.end();
        ++n;
      }
      std::printf("%-22s %-11s %10.3f %12.3f %10.3f   (%zu questions)\n", rname, multi ? "multi-hop" : "single-hop",
                  double(found) / double(total), double(complete) / double(n), double(first) / double(n), n);
    }
  }
}

void load(bench_memory& mem, const dataset& d) {
  for (const auto& [u, t] : d.memories) mem.add(t, user(u), {.infer = false});
}

void latency(std::size_t memories, std::size_t queries, float entity_weight) {
  // one user's scope of `memories` memories: the generator's users merged into one scope
  // (texts repeat across the generator's users and the memory keeps one of each: generate more than needed)
  const auto d = generate(memories / 30 + 1, 100, 777);
  memory_config config;
  config.entities = true;
  bench_memory mem(hashing_embedder{}, memory_store{}, verbatim_extractor{}, config);
  std::size_t n = 0;
  detail::entity_index alone;  // the same index built apart, to measure its size
  for (const auto& [u, t] : d.memories) {
    if (mem.size() == memories) break;
    const auto before = mem.size();
    mem.add(t, user("big"), {.infer = false});
    if (mem.size() == before) continue;  // a repeat: nothing added
    alone.assign(static_cast<slot_id>(n), 0, t);
    ++n;
  }
  std::printf("\nlatency (thread CPU time): one scope of %zu memories, %zu queries (after 20 warm-up)\n", mem.size(), queries);
  std::printf("%-22s %9s %9s %9s\n", "mode", "p50 ms", "p95 ms", "max ms");
  // The two modes take turns query by query (order alternating), timed in the searching thread's CPU time (a
  // search runs on the calling thread at this size), so time lost to other processes on a shared machine
  // counts for neither.
  const float weights[2] = {0.0f, entity_weight};
  std::vector<double> ms[2];
  for (std::size_t i = 0; i < queries + 20; ++i) {
    const auto& q = d.questions[i % d.questions.size()];
    for (std::size_t turn = 0; turn < 2; ++turn) {
      const std::size_t m = (i + turn) % 2;
      search_options o{.limit = 10};
      o.weights.entity = weights[m];
      const auto t0 = thread_cpu_ms();
      const auto hits = mem.search(q.text, user("big"), o);
      const auto t1 = thread_cpu_ms();
      if (i >= 20) ms[m].push_back(t1 - t0);
      if (hits.empty()) std::printf("(no hit for %s)\n", q.text.c_str());
    }
  }
  std::vector<double> p95s, p50s;
  for (std::size_t m = 0; m < 2; ++m) {
    auto& v = ms[m];
    std::sort(v.begin(), v.end());
    char name[64];
    std::snprintf(name, sizeof name, m ? "hybrid + entity %.2f" : "hybrid", double(weights[m]));
    std::printf("%-22s %9.3f %9.3f %9.3f\n", name, v[v.size() / 2], v[v.size() * 95 / 100], v.back());
    p95s.push_back(v[v.size() * 95 / 100]);
    p50s.push_back(v[v.size() / 2]);
  }
  std::printf("p95 ratio (entity / plain): %.2f   p50 ratio: %.2f\n", p95s[1] / p95s[0], p50s[1] / p50s[0]);
  std::printf("entity index: %.1f KiB per 1,000 memories (estimated)\n",
              double(alone.bytes()) / 1024.0 / (double(n) / 1000.0));
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::size_t users = 100, fillers = 120, big = 10000, queries = 1000;
  float entity_weight = 0.5f;  // chosen on the development seed
  std::vector<std::uint64_t> seeds = {20261205, 7340019};  // development, held out
  const bool ok = engram_bench::parse_options(argc, argv, [&](std::string_view o, const char* value) {
    const auto v = static_cast<std::size_t>(std::strtoull(value, nullptr, 10));
    if (o == "--users") users = v;
    else if (o == "--fillers") fillers = v;
    else if (o == "--latency-memories") big = v;
    else if (o == "--queries") queries = v;
    else if (o == "--entity") entity_weight = std::strtof(value, nullptr);
    else if (o == "--seed") seeds = {v};
    else return false;
    return true;
  });
  if (!ok) return 2;
  for (const auto seed : seeds) {
    const auto d = generate(users, fillers, seed);
    memory_config config;
    config.entities = true;
    bench_memory mem(hashing_embedder{}, memory_store{}, verbatim_extractor{}, config);
    load(mem, d);
    std::printf("\n=== multi-hop: %zu users, %zu memories, %zu questions (seed %llu%s)\n", users, mem.size(),
                d.questions.size(), static_cast<unsigned long long>(seed),
                seed == 20261205 ? ", development" : seed == 7340019 ? ", held out" : "");
    evaluate(mem, d, entity_weight);
  }
  if (big) latency(big, queries, entity_weight);
  return 0;
}
