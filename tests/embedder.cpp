#include <engram/embed/hashing.hpp>
#include <engram/simd/scalar.hpp>

#include <catch2/catch.hpp>

#include <cmath>

using namespace engram;

namespace {
float cos(const std::vector<float>& a, const std::vector<float>& b) {
  return simd::cosine_scalar(a.data(), b.data(), a.size());
}
}  // namespace

TEST_CASE("embedder: deterministic, normalised, fixed dimension", "[embedder]") {
  const hashing_embedder e;
  CHECK(e.dimension() == 384);
  const auto a = e.embed("I love hiking in the mountains");
  const auto b = hashing_embedder{}.embed("I love hiking in the mountains");
  REQUIRE(a.size() == 384);
  CHECK(a == b);
  double norm = 0;
  for (float x : a) norm += double(x) * x;
  CHECK(std::sqrt(norm) == Approx(1.0).epsilon(1e-5));
  // A fixed fingerprint: the same on every platform and run (integer hashing, fixed float order).
  CHECK(a[0] == b[0]);
  const auto empty = e.embed("  !!! ");
  for (float x : empty) CHECK(x == 0.0f);
  CHECK(hashing_embedder{64}.embed("x").size() == 64);
  CHECK_THROWS_AS(hashing_embedder{8}, validation_error);
}

TEST_CASE("embedder: related texts score above unrelated ones", "[embedder]") {
  const hashing_embedder e;
  const auto tea = e.embed("My favourite drink is green tea");
  const auto tea_q = e.embed("which tea does she drink?");
  const auto car = e.embed("The car needs new tyres before winter");
  CHECK(cos(tea, tea_q) > cos(tea, car) + 0.1f);
  const auto hike = e.embed("I love hiking in the mountains");
  const auto hikes = e.embed("she hikes in mountain trails");
  CHECK(cos(hike, hikes) > cos(hike, car));
  CHECK(cos(hike, hikes) > cos(hike, tea));
  // case and punctuation do not matter
  CHECK(cos(e.embed("Green TEA!"), e.embed("green tea")) == Approx(1.0f).epsilon(1e-5));
}

TEST_CASE("embedder: tokenizer", "[embedder]") {
  const auto t = hashing_embedder::tokenize("Don't STOP, café-au-lait 42x");
  const std::vector<std::string> expected{"dont", "stop", "caf\xc3\xa9", "au", "lait", "42x"};
  CHECK(t == expected);
}

#include <engram/text/stem.hpp>

TEST_CASE("embedder: light stemmer", "[embedder]") {
  using detail::light_stem;
  CHECK(light_stem("hikes") == "hike");
  CHECK(light_stem("hiking") == "hike");
  CHECK(light_stem("hiked") == "hike");
  CHECK(light_stem("mountains") == "mountain");
  CHECK(light_stem("ponies") == "poni");
  CHECK(light_stem("caresses") == "caress");
  CHECK(light_stem("running") == "run");
  CHECK(light_stem("agreed") == "agree");
  CHECK(light_stem("status") == "status");
  CHECK(light_stem("sing") == "sing");
  CHECK(light_stem("tea") == "tea");
  CHECK(light_stem("caf\xc3\xa9s") == "caf\xc3\xa9s");
}
