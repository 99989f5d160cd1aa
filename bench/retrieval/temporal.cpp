// bench_temporal: facts that change over time, and what the memory answers about now and about a past date.
//
// Per user, six subjects (where they live, their job, their employer, their partner, their car, their gym), each
// stated one to four times over two years, every later statement a change in the world ("I moved to Porto"),
// plus fillers that share the subjects' words ("My sister lives in Madrid"). A scripted extractor marks the
// contradictions the generator planted (an UPDATE of the subject's memory), so the benchmark measures the
// memory, not a model. Three memories are loaded from the same statements, in one run:
//   add-only:   every statement ADDed (what ADD-only extraction gives: all versions rank side by side);
//   erase:      contradiction_policy::erase (Mem0's behaviour: the old version is gone);
//   supersede:  contradiction_policy::supersede (the old version is kept, closed, for as_of reads).
// Questions: "now" ("Where do I live?": the latest statement) for every changed subject, and "as of" a date
// between two statements (the one valid then). Reported: how often the current fact outranks every other
// version of its subject (the temporal measure: the retrieval itself is the same in every mode), how often it
// is the first hit at all, and for as_of questions how often the fact valid then is the first hit / in the top
// 10. Then search latency in one 10,000-memory scope, supersede (current and closed versions) against erase
// (the same current memories), alternating query by query, in thread CPU time.
//
//   ./bench_temporal [--users 100] [--fillers 60] [--seed N] [--latency-memories 10000, 0: skip] [--queries 2000]

#include <engram/engram.hpp>
#include "../data.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

using namespace engram;
using engram_bench::rng;
using engram_bench::thread_cpu_ms;

namespace {

using strings = std::vector<std::string>;

/// One subject: how a statement of it reads, the question about it, and the values it takes.
struct subject {
  std::string statement;  // "{v}" is the value
  std::string question;
  strings values;
};

const std::vector<subject> subjects = {
    {"I live in {v}", "Where do I live?",
     {"Lisbon", "Porto", "Madrid", "Berlin", "Oslo", "Krakow", "Dublin", "Lyon", "Turin", "Ghent", "Seville"}},
    {"I work as a {v}", "What do I work as?",
     {"nurse", "teacher", "plumber", "data analyst", "chef", "pilot", "lawyer", "architect", "baker"}},
    {"My employer is {v}", "Who is my employer?",
     {"Initrode", "Globex", "Hooli", "Acme", "Cyberdyne", "Soylent", "Umbrella Labs", "Tyrell Corp"}},
    {"My partner is {v}", "Who is my partner?",
     {"Marta", "Joana", "Rui", "Tomas", "Sofia", "Pedro", "Clara", "Hugo", "Lena", "Nadia", "Omar"}},
    {"I drive a {v}", "What car do I drive?",
     {"red Fiat Panda", "blue Volvo estate", "grey Toyota Prius", "white Tesla Model 3", "green Mini Cooper"}},
    {"My gym is {v}", "Which gym is my gym?",
     {"FitLab downtown", "Iron Temple", "the YMCA on Elm Street", "PureGym Central", "the climbing hall"}},
};

const strings fillers = {
    "My sister lives in {c}",           "My friend works as a {j}",        "My brother's employer is {o}",
    "My neighbour drives a {car}",      "My cousin's partner is {p}",      "My colleague's gym is {g}",
    "We talked about moving to {c}",    "The {o} office party was fun",   "I saw a {car} parked outside",
    "Dinner with {p} was lovely",       "I might train as a {j} one day", "{c} was beautiful in spring"};

std::string fill(std::string t, const std::string& key, const std::string& v) {
  for (auto pos = t.find(key); pos != std::string::npos; pos = t.find(key)) t.replace(pos, key.size(), v);
  return t;
}

struct statement {
  std::string user;
  std::string text;
  timestamp at{};
  int subject = -1;  // -1: a filler
  int version = 0;   // 0: the first statement of the subject
};

struct question {
  std::string user;
  std::string text;
  std::string answer;           // the statement valid at `as_of` (or now)
  strings others;               // the subject's other versions
  std::optional<timestamp> as_of{};
};

struct dataset {
  std::vector<statement> statements;  // in time order per user
  std::vector<question> now, past;
};

const timestamp epoch = parse_iso8601("2024-01-01T09:00:00Z");  // two years that are all past
timestamp day(std::size_t d) { return epoch + std::chrono::days(d); }

dataset generate(std::size_t users, std::size_t filler_count, std::uint64_t seed) {
  rng r{seed};
  dataset d;
  for (std::size_t u = 0; u < users; ++u) {
    const std::string user = "user-" + std::to_string(u);
    std::vector<statement> mine;
    for (std::size_t s = 0; s < subjects.size(); ++s) {
      const auto& sub = subjects[s];
      const std::size_t versions = 1 + r.below(4);  // one to four statements over two years
      strings values;
      while (values.size() < versions) {
        const auto& v = r.pick(sub.values);
        if (std::find(values.begin(), values.end(), v) == values.end()) values.push_back(v);
      }
      std::vector<std::size_t> days;
      for (std::size_t k = 0; k < versions; ++k) days.push_back(k * (720 / versions) + r.below(720 / versions - 10));
      strings texts;
      for (std::size_t k = 0; k < versions; ++k) {
        texts.push_back(fill(sub.statement, "{v}", values[k]));
        mine.push_back({user, texts.back(), day(days[k]), int(s), int(k)});
      }
      if (versions < 2) continue;
      d.now.push_back({user, sub.question, texts.back(), strings(texts.begin(), texts.end() - 1), std::nullopt});
      // a date strictly inside one version's interval (not its last): the fact valid then
      const std::size_t k = r.below(versions - 1);
      const std::size_t when = days[k] + 1 + r.below(days[k + 1] - days[k] - 1);
      strings others = texts;
      others.erase(others.begin() + std::ptrdiff_t(k));
      d.past.push_back({user, sub.question, texts[k], others, day(when)});
    }
    for (std::size_t i = 0; i < filler_count; ++i) {
      auto t = r.pick(fillers);
      t = fill(t, "{c}", r.pick(subjects[0].values));
      t = fill(t, "{j}", r.pick(subjects[1].values));
      t = fill(t, "{o}", r.pick(subjects[2].values));
      t = fill(t, "{p}", r.pick(subjects[3].values));
      t = fill(t, "{car}", r.pick(subjects[4].values));
      t = fill(t, "{g}", r.pick(subjects[5].values));
      mine.push_back({user, t, day(r.below(720)), -1, 0});
    }
    std::stable_sort(mine.begin(), mine.end(), [](const auto& a, const auto& b) { return a.at < b.at; });
    d.statements.insert(d.statements.end(), mine.begin(), mine.end());
  }
  return d;
}

/// What the next add decides: an UPDATE of `target` (a planted change), else an ADD.
struct script {
  std::string target;
};

/// The scripted extractor: one fact per message; the contradictions are the generator's.
struct scripted_extractor {
  std::shared_ptr<script> next = std::make_shared<script>();
  std::vector<fact> extract(std::span<const message> msgs, const extraction_context&) const {
    std::vector<fact> out;
    for (const auto& m : msgs) out.push_back(fact{m.content, m.role, m.name, nlohmann::json::object()});
    return out;
  }
  std::vector<memory_action> decide(std::span<const fact> facts, std::span<const std::vector<existing_memory>>,
                                    const extraction_context&) const {
    if (next->target.empty()) return {memory_action{event_kind::add, facts[0].text, "", 0}};
    return {memory_action{event_kind::update, facts[0].text, next->target, 0}};
  }
};

using bench_memory = basic_memory<hashing_embedder, flat_index, memory_store, scripted_extractor>;

enum class mode { add_only, erase, supersede };
const char* name_of(mode m) { return m == mode::add_only ? "add-only" : m == mode::erase ? "erase" : "supersede"; }

/// Adds the statements in time order; a later statement of a subject UPDATEs its memory (add-only: ADDs).
void load(bench_memory& mem, const scripted_extractor& ex, const std::vector<statement>& statements, mode m,
          const std::string& scope_user = "") {
  std::map<std::pair<std::string, int>, std::string> current;  // (user, subject) -> id
  for (const auto& st : statements) {
    const auto& u = scope_user.empty() ? st.user : scope_user;
    const auto key = std::make_pair(st.user, st.subject);
    ex.next->target = (m != mode::add_only && st.subject >= 0 && st.version > 0) ? current[key] : "";
    const auto res = mem.add(st.text, user(u), {.timestamp = st.at});
    if (st.subject >= 0 && st.version == 0 && !res.results.empty()) current[key] = res.results[0].id;
  }
}

struct tally {
  std::size_t n = 0, above_others = 0, first = 0, in_top10 = 0;
  void print(const char* what, mode m) const {
    std::printf("%-10s %-10s %14.3f %12.3f %12.3f   (%zu questions)\n", name_of(m), what,
                double(above_others) / double(n), double(first) / double(n), double(in_top10) / double(n), n);
  }
};

tally evaluate(const bench_memory& mem, const std::vector<question>& qs) {
  tally t;
  for (const auto& q : qs) {
    search_options o{.limit = 10};
    o.as_of = q.as_of;
    const auto hits = mem.search(q.text, user(q.user), o);
    std::size_t rank = 0, best_other = 0;
    for (std::size_t i = 0; i < hits.size(); ++i) {
      if (hits[i].record.memory == q.answer && !rank) rank = i + 1;
      if (!best_other && std::find(q.others.begin(), q.others.end(), hits[i].record.memory) != q.others.end())
        best_other = i + 1;
    }
    ++t.n;
    t.above_others += rank && (!best_other || rank < best_other);
    t.first += rank == 1;
    t.in_top10 += rank != 0;
  }
  return t;
}

memory_config config_for(mode m) {
  memory_config c;
  c.on_contradiction = m == mode::supersede ? contradiction_policy::supersede : contradiction_policy::erase;
  return c;
}

void latency(std::size_t memories, std::size_t queries) {
  // One scope: statements of many generated users, merged, until the erase memory holds `memories`.
  const auto d = generate(memories / 20 + 1, 12, 4242);
  std::vector<statement> sts;
  for (auto st : d.statements) {
    st.text += " (" + st.user + ")";  // one scope keeps one memory per text: each user's statements its own
    sts.push_back(std::move(st));
  }
  std::stable_sort(sts.begin(), sts.end(), [](const auto& a, const auto& b) { return a.at < b.at; });
  // subjects stay per generated user (their updates target that user's memory) in the one merged scope
  std::vector<statement> taken;
  std::size_t current = 0;
  for (const auto& st : sts) {
    if (current >= memories) break;
    taken.push_back(st);
    current += st.subject < 0 || st.version == 0;
  }
  const mode modes[3] = {mode::erase, mode::add_only, mode::supersede};
  scripted_extractor ex[3];
  std::vector<std::unique_ptr<bench_memory>> mems;
  for (std::size_t m = 0; m < 3; ++m) {
    mems.push_back(std::make_unique<bench_memory>(hashing_embedder{}, memory_store{}, ex[m], config_for(modes[m])));
    load(*mems[m], ex[m], taken, modes[m], "big");
  }
  std::printf("\nlatency (thread CPU time): one scope, erase %zu memories, add-only %zu, supersede %zu current and "
              "closed versions; %zu queries, the three taking turns\n",
              mems[0]->size(), mems[1]->size(), mems[2]->size(), queries);
  std::vector<double> ms[3];
  for (std::size_t i = 0; i < queries + 20; ++i) {
    const auto& q = d.now[i % d.now.size()];
    for (std::size_t turn = 0; turn < 3; ++turn) {
      const std::size_t m = (i + turn) % 3;
      const auto t0 = thread_cpu_ms();
      const auto hits = mems[m]->search(q.text, user("big"), {.limit = 10});
      const auto t1 = thread_cpu_ms();
      if (i >= 20) ms[m].push_back(t1 - t0);
      if (hits.empty()) std::printf("(no hit for %s)\n", q.text.c_str());
    }
  }
  std::printf("%-22s %9s %9s %9s\n", "mode", "p50 ms", "p95 ms", "max ms");
  double p50[3], p95[3];
  for (std::size_t m = 0; m < 3; ++m) {
    auto& v = ms[m];
    std::sort(v.begin(), v.end());
    p50[m] = v[v.size() / 2];
    p95[m] = v[v.size() * 95 / 100];
    std::printf("%-22s %9.3f %9.3f %9.3f\n", name_of(modes[m]), p50[m], p95[m], v.back());
  }
  std::printf("p95 ratio supersede / erase: %.2f, / add-only: %.2f   p50 ratio / erase: %.2f, / add-only: %.2f\n",
              p95[2] / p95[0], p95[2] / p95[1], p50[2] / p50[0], p50[2] / p50[1]);
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::size_t users = 100, filler_count = 60, big = 10000, queries = 2000;
  std::vector<std::uint64_t> seeds = {20261206, 9180233};  // development, held out
  const bool ok = engram_bench::parse_options(argc, argv, [&](std::string_view o, const char* value) {
    const auto v = static_cast<std::size_t>(std::strtoull(value, nullptr, 10));
    if (o == "--users") users = v;
    else if (o == "--fillers") filler_count = v;
    else if (o == "--latency-memories") big = v;
    else if (o == "--queries") queries = v;
    else if (o == "--seed") seeds = {v};
    else return false;
    return true;
  });
  if (!ok) return 2;
  for (const auto seed : seeds) {
    const auto d = generate(users, filler_count, seed);
    std::printf("\n=== temporal: %zu users, %zu statements, %zu 'now' and %zu 'as of' questions (seed %llu%s)\n",
                users, d.statements.size(), d.now.size(), d.past.size(), static_cast<unsigned long long>(seed),
                seed == 20261206 ? ", development" : seed == 9180233 ? ", held out" : "");
    std::printf("%-10s %-10s %14s %12s %12s\n", "mode", "questions", "above others", "first hit", "in top 10");
    for (const auto m : {mode::add_only, mode::erase, mode::supersede}) {
      scripted_extractor ex;
      bench_memory mem(hashing_embedder{}, memory_store{}, ex, config_for(m));
      load(mem, ex, d.statements, m);
      evaluate(mem, d.now).print("now", m);
      evaluate(mem, d.past).print("as of", m);
    }
  }
  if (big) latency(big, queries);
  return 0;
}
