#include <engram/engram.hpp>
#include <engram/embed/hashing.hpp>
#include <engram/text/related_words.hpp>

#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

using namespace engram;

namespace {

void write(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

/// A tiny WordNet 3.0 database in the real file format: doctor/doc/physician -> medical practitioner ->
/// professional; sister -> sibling; "bank" with two senses; verb "employ" -> "hire"; "children" -> "child".
void write_wordnet(const engram_test::temp_dir& dir) {
  const std::string licence = "  1 This software and database is being provided to you, the LICENSEE, ...\n";
  write(dir.sub("data.noun"),
        licence +
            "00000100 05 n 03 doctor 0 doc 0 physician 0 002 @ 00000200 n 0000 ~ 00000900 n 0000 | a licensed medical "
            "practitioner\n"
            "00000200 05 n 02 medical_practitioner 0 medical_man 0 001 @ 00000300 n 0000 | someone who practices "
            "medicine\n"
            "00000300 05 n 01 professional 0 000 | a person engaged in a learned profession\n"
            "00000400 05 n 01 sister 0 001 @ 00000500 n 0000 | a female person who has the same parents\n"
            "00000500 05 n 02 sibling 0 sib 0 000 | a person's brother or sister\n"
            "00000600 05 n 02 bank 0 depository_financial_institution 0 000 | a financial institution\n"
            "00000700 05 n 02 bank 0 riverside 0 000 | sloping land beside a body of water\n"
            "00000800 05 n 01 child 0 000 | a young person\n"
            "00000900 05 n 01 surgeon 0 001 @ 00000100 n 0000 | a physician who operates\n");
  write(dir.sub("index.noun"),
        licence +
            "doctor n 1 1 @ 1 1 00000100  \n"
            "doc n 1 1 @ 1 0 00000100  \n"
            "physician n 1 1 @ 1 0 00000100  \n"
            "medical_practitioner n 1 1 @ 1 0 00000200  \n"
            "professional n 1 0 1 0 00000300  \n"
            "sister n 1 1 @ 1 1 00000400  \n"
            "sibling n 1 0 1 0 00000500  \n"
            "bank n 2 0 2 2 00000600 00000700  \n"
            "child n 1 0 1 0 00000800  \n"
            "surgeon n 1 1 @ 1 0 00000900  \n");
  write(dir.sub("data.verb"), licence + "00001000 41 v 02 employ 0 hire 0 000 | engage or hire for work\n");
  write(dir.sub("index.verb"), licence + "employ v 1 0 1 1 00001000  \nhire v 1 0 1 0 00001000  \n");
  write(dir.sub("data.adj"), licence);
  write(dir.sub("index.adj"), licence);
  write(dir.sub("noun.exc"), "children child\n");
}

float weight_of(const std::vector<related_word>& rel, const std::string& w) {
  auto it = std::find_if(rel.begin(), rel.end(), [&](const related_word& r) { return r.word == w; });
  return it == rel.end() ? -1.0f : it->weight;
}

float cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) s += double(a[i]) * double(b[i]);
  return static_cast<float>(s);  // both are L2-normalised
}

}  // namespace

TEST_CASE("rank_related_words: synonyms weigh 1, hypernyms decay per level, the word itself is left out",
          "[rank_related_words]") {
  engram_test::temp_dir dir;
  write_wordnet(dir);
  const auto rw = related_words::load_wordnet(dir.path);  // senses 2, depth 1, decay 0.5
  const auto rel = rw.of("physician");
  CHECK(weight_of(rel, "doctor") == 1.0f);
  CHECK(weight_of(rel, "doc") == 1.0f);
  CHECK(weight_of(rel, "physician") == -1.0f);
  CHECK(weight_of(rel, "medical practitioner") == 0.5f);  // multi-word lemma, '_' read as a space
  CHECK(weight_of(rel, "medical man") == 0.5f);
  CHECK(weight_of(rel, "professional") == -1.0f);  // two levels up
  CHECK(rel.size() == 4);

  const auto deep = related_words::load_wordnet(dir.path, {.hypernym_depth = 2});
  CHECK(weight_of(deep.of("physician"), "professional") == 0.25f);
  // a word reached both as a synonym and as a hypernym keeps its largest weight
  CHECK(weight_of(deep.of("surgeon"), "doctor") == 0.5f);
  const auto flat = related_words::load_wordnet(dir.path, {.hypernym_depth = 0});
  CHECK(flat.of("physician").size() == 2);
}

TEST_CASE("rank_related_words: inflected forms are looked up by their base form", "[rank_related_words]") {
  engram_test::temp_dir dir;
  write_wordnet(dir);
  const auto rw = related_words::load_wordnet(dir.path);
  CHECK(weight_of(rw.of("sisters"), "sibling") == 0.5f);   // noun rule -s
  CHECK(weight_of(rw.of("employs"), "hire") == 1.0f);      // verb rule -s
  CHECK(weight_of(rw.of("employed"), "hire") == 1.0f);     // verb rule -ed
  // an irregular form reaches its base through the exception list; the base, a word of the synset, comes back
  CHECK(weight_of(rw.of("children"), "child") == 1.0f);
  CHECK(rw.of("children").size() == 1);
  CHECK(rw.of("zebra").empty());
  CHECK(rw.of("").empty());
}

TEST_CASE("rank_related_words: senses are taken most frequent first, up to options.senses", "[rank_related_words]") {
  engram_test::temp_dir dir;
  write_wordnet(dir);
  const auto two = related_words::load_wordnet(dir.path);
  CHECK(weight_of(two.of("bank"), "riverside") == 1.0f);
  const auto one = related_words::load_wordnet(dir.path, {.senses = 1});
  CHECK(weight_of(one.of("bank"), "depository financial institution") == 1.0f);
  CHECK(weight_of(one.of("bank"), "riverside") == -1.0f);
}

TEST_CASE("rank_related_words: a missing file or a malformed record is a storage_error naming it",
          "[rank_related_words]") {
  engram_test::temp_dir dir;
  write_wordnet(dir);
  std::filesystem::remove(dir.sub("index.verb"));
  CHECK_THROWS_WITH(related_words::load_wordnet(dir.path), Catch::Contains("index.verb"));
  CHECK_THROWS_AS(related_words::load_wordnet(dir.sub("nowhere")), storage_error);
  write_wordnet(dir);
  write(dir.sub("data.verb"), "00001000 41 v 05 employ 0 hire\n");  // five words announced, one given
  CHECK_THROWS_WITH(related_words::load_wordnet(dir.path), Catch::Contains("data.verb line 1"));
}

TEST_CASE("rank_related_words: hashing_embedder adds related words' features only when given them",
          "[rank_related_words]") {
  engram_test::temp_dir dir;
  write_wordnet(dir);
  auto rw = std::make_shared<const related_words>(related_words::load_wordnet(dir.path));
  const hashing_embedder plain, plain_null(384, nullptr), expanded(384, rw), off(384, rw, 0.0f);
  CHECK(plain.name() == "hashing-v1");
  CHECK(plain_null.name() == "hashing-v1");
  CHECK(off.name() == "hashing-v1");
  CHECK(expanded.name() != plain.name());  // a store embedded one way is never read the other way
  CHECK(plain_null.embed("my physician") == plain.embed("my physician"));
  CHECK(off.embed("my physician") == plain.embed("my physician"));
  // words without related words embed as before
  CHECK(expanded.embed("zebra crossing") == plain.embed("zebra crossing"));

  const float before = cosine(plain.embed("Who is my physician?"), plain.embed("My doctor is Dr. Costa"));
  const float after = cosine(expanded.embed("Who is my physician?"), expanded.embed("My doctor is Dr. Costa"));
  CHECK(after > before + 0.1f);
  const float unrelated = cosine(expanded.embed("Who is my physician?"), expanded.embed("I had ramen for lunch"));
  CHECK(after > unrelated + 0.2f);
  CHECK_THROWS_AS(hashing_embedder(384, rw, -1.0f), validation_error);
  CHECK_THROWS_AS(hashing_embedder(384, rw, 5.0f), validation_error);
}

TEST_CASE("rank_related_words: semantic search finds a memory by a synonym of its words", "[rank_related_words]") {
  engram_test::temp_dir dir;
  write_wordnet(dir);
  auto rw = std::make_shared<const related_words>(related_words::load_wordnet(dir.path));
  const std::vector<std::string> texts = {"My doctor is Dr. Costa", "I had ramen for lunch", "Who won the match?",
                                          "My sister Ines lives in Porto", "The gym was packed this morning"};
  auto top = [&](hashing_embedder e, const std::string& q) {
    memory m(std::move(e));
    for (const auto& t : texts) m.add(t, user("u"), {.infer = false});
    return m.search(q, user("u"), {.limit = 1, .mode = search_mode::semantic}).front().record.memory;
  };
  CHECK(top(hashing_embedder(384, rw), "Who is my physician?") == "My doctor is Dr. Costa");
  CHECK(top(hashing_embedder(384, rw), "Which siblings do I have?") == "My sister Ines lives in Porto");
}

TEST_CASE("rank_related_words: the installed WordNet 3.0, when there is one, knows everyday synonyms",
          "[rank_related_words]") {
  const std::filesystem::path dir = "/usr/share/wordnet";  // Debian package wordnet-base
  if (!std::filesystem::exists(dir / "index.noun")) {
    WARN("no WordNet database in /usr/share/wordnet (apt-get install wordnet-base): nothing to check");
    return;
  }
  const auto rw = related_words::load_wordnet(dir);
  CHECK(weight_of(rw.of("physician"), "doctor") == 1.0f);
  CHECK(weight_of(rw.of("sister"), "female sibling") == 0.5f);
  CHECK(weight_of(rw.of("spouse"), "partner") == 1.0f);
  CHECK(weight_of(rw.of("cars"), "automobile") == 1.0f);
}
