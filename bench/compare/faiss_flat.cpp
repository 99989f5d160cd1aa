// engram's flat_index against FAISS IndexFlatIP on the same data in one process: clustered, normalised,
// fixed-seed vectors, d = 384, k = 10. Prints one table row per case with the time of each, the ratio
// engram / FAISS (below 1.0: engram is faster), engram's recall@10 against exact double-precision search,
// and the memory-bandwidth floor measured in this run.
//
//   bench_compare_faiss [--quick] [--cases single,batch,bitmap]
// Threads: FAISS uses OpenMP (OMP_NUM_THREADS) and BLAS (OPENBLAS_NUM_THREADS) for batches; engram's batch
// search is split over omp_get_max_threads() std::threads. scripts/bench.sh runs it with 1 and with 2.
#include <engram/index/flat.hpp>

#include "data.hpp"

#include <faiss/IndexFlat.h>
#include <faiss/impl/IDSelector.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr std::size_t dim = 384;
constexpr std::size_t k = 10;

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/// Exact top-k by double-precision dot products (the data is normalised, so this is cosine).
std::vector<std::pair<double, std::size_t>> exact(const std::vector<float>& data, std::size_t n, const float* q,
                                                   const std::vector<unsigned char>* allowed = nullptr) {
  std::vector<std::pair<double, std::size_t>> all;
  all.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (allowed && !(*allowed)[i]) continue;
    double s = 0;
    const float* r = data.data() + i * dim;
    for (std::size_t j = 0; j < dim; ++j) s += double(q[j]) * r[j];
    all.emplace_back(-s, i);
  }
  std::partial_sort(all.begin(), all.begin() + std::ptrdiff_t(std::min(k, all.size())), all.end());
  all.resize(std::min(k, all.size()));
  return all;
}

/// Fraction of the exact top k found; a returned id whose exact score ties the k-th (within 1e-6) counts.
double recall(const std::vector<std::pair<double, std::size_t>>& truth, const std::vector<std::size_t>& got,
              const std::vector<float>& data, const float* q) {
  std::set<std::size_t> t;
  for (const auto& [s, i] : truth) t.insert(i);
  const double kth = -truth.back().first;
  std::size_t ok = 0;
  for (const std::size_t i : got) {
    if (t.count(i)) {
      ++ok;
      continue;
    }
    double s = 0;
    for (std::size_t j = 0; j < dim; ++j) s += double(q[j]) * data[i * dim + j];
    if (std::abs(s - kth) < 1e-6) ++ok;
  }
  return double(ok) / double(truth.size());
}

struct row {
  std::string name;
  double faiss_s, engram_s, recall_engram, recall_faiss, floor_s;
};

void print(const std::vector<row>& rows, double bw, int threads) {
  std::printf("\nengram flat_index vs FAISS IndexFlatIP, d=%zu, k=%zu, threads=%d, read bandwidth %.1f GB/s\n", dim, k,
              threads, bw / 1e9);
  std::printf("OPENBLAS_CORETYPE=%s OPENBLAS_NUM_THREADS=%s\n", std::getenv("OPENBLAS_CORETYPE") ? std::getenv("OPENBLAS_CORETYPE") : "(unset)",
              std::getenv("OPENBLAS_NUM_THREADS") ? std::getenv("OPENBLAS_NUM_THREADS") : "(unset)");
  std::printf("| %-28s | %12s | %12s | %14s | %8s | %13s | %12s |\n", "case", "FAISS", "engram", "engram/FAISS",
              "x floor", "recall engram", "recall FAISS");
  std::printf("|%s|%s|%s|%s|%s|%s|%s|\n", std::string(30, '-').c_str(), std::string(14, '-').c_str(),
              std::string(14, '-').c_str(), std::string(16, '-').c_str(), std::string(10, '-').c_str(),
              std::string(15, '-').c_str(), std::string(14, '-').c_str());
  for (const auto& r : rows) {
    char fl[32] = "-";
    if (r.floor_s > 0) std::snprintf(fl, sizeof fl, "%.2f", r.engram_s / r.floor_s);
    std::printf("| %-28s | %9.3f ms | %9.3f ms | %14.3f | %8s | %13.4f | %12.4f |\n", r.name.c_str(), r.faiss_s * 1e3,
                r.engram_s * 1e3, r.engram_s / r.faiss_s, fl, r.recall_engram, r.recall_faiss);
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::string cases = "single,batch,bitmap";
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) quick = true;
    else if (!std::strcmp(argv[i], "--cases") && i + 1 < argc) cases = argv[++i];
    else {
      std::fprintf(stderr, "usage: %s [--quick] [--cases single,batch,bitmap]\n", argv[0]);
      return 2;
    }
  }
  const int threads = omp_get_max_threads();
  const double bw = engram_bench::read_bandwidth(std::size_t{1} << 30, 5, unsigned(threads));
  const engram_bench::clustered gen(dim, 1000, 42);
  const auto queries = gen.block(100'000'000, 1000);
  const std::vector<engram::partition_id> part0{0};
  std::vector<row> rows;

  std::vector<std::size_t> sizes{100'000};
  if (!quick) sizes.push_back(1'000'000);
  for (const std::size_t n : sizes) {
    const std::string tag = n >= 1'000'000 ? "1M" : std::to_string(n / 1000) + "k";
    std::fprintf(stderr, "building %s...\n", tag.c_str());
    const auto data = gen.block(0, n);
    faiss::IndexFlatIP fi(dim);
    fi.add(faiss::Index::idx_t(n), data.data());
    engram::flat_index ei(dim, engram::flat_index_options{.int8_codes = true});
    for (std::size_t i = 0; i < n; ++i)
      ei.add(engram::slot_id(i), 0, std::span<const float>(data).subspan(i * dim, dim));
    const double floor_s = double(n) * double(ei.stride()) * sizeof(float) / bw;

    std::vector<float> fd(k);
    std::vector<faiss::Index::idx_t> fl(k);
    const std::size_t nsingle = n >= 1'000'000 ? 20 : 100;
    const std::size_t nrecall = n >= 1'000'000 ? 10 : 50;

    if (cases.find("single") != std::string::npos) {
      std::vector<double> tf, te;
      double rec_e = 0, rec_f = 0;
      for (int round = 0; round < 3; ++round) {
        double t0 = now();
        for (std::size_t i = 0; i < nsingle; ++i) fi.search(1, queries.data() + i * dim, k, fd.data(), fl.data());
        tf.push_back((now() - t0) / double(nsingle));
        t0 = now();
        std::size_t sink = 0;
        for (std::size_t i = 0; i < nsingle; ++i) sink += ei.search(std::span<const float>(queries).subspan(i * dim, dim), k, part0).size();
        te.push_back((now() - t0) / double(nsingle));
        if (sink != nsingle * k) std::fprintf(stderr, "unexpected result size\n");
      }
      for (std::size_t i = 0; i < nrecall; ++i) {
        const float* q = queries.data() + i * dim;
        const auto truth = exact(data, n, q);
        std::vector<std::size_t> ge, gf;
        for (const auto& h : ei.search(std::span<const float>(q, dim), k, part0)) ge.push_back(h.slot);
        fi.search(1, q, k, fd.data(), fl.data());
        for (const auto id : fl) gf.push_back(std::size_t(id));
        rec_e += recall(truth, ge, data, q) / double(nrecall);
        rec_f += recall(truth, gf, data, q) / double(nrecall);
      }
      rows.push_back({"single query, N=" + tag, median(tf), median(te), rec_e, rec_f, floor_s});
      print({rows.back()}, bw, threads);

      // int8 codes + exact rescoring of the shortlist (engram's search_int8), same queries
      std::vector<double> t8;
      for (int round = 0; round < 3; ++round) {
        const double t0 = now();
        for (std::size_t i = 0; i < nsingle; ++i) (void)ei.search_int8(std::span<const float>(queries).subspan(i * dim, dim), k, part0);
        t8.push_back((now() - t0) / double(nsingle));
      }
      double rec_8 = 0;
      for (std::size_t i = 0; i < nrecall; ++i) {
        const float* q = queries.data() + i * dim;
        std::vector<std::size_t> g8;
        for (const auto& h : ei.search_int8(std::span<const float>(q, dim), k, part0)) g8.push_back(h.slot);
        rec_8 += recall(exact(data, n, q), g8, data, q) / double(nrecall);
      }
      rows.push_back({"single, int8+rescore, N=" + tag, median(tf), median(t8), rec_8, rec_f, floor_s});
      print({rows.back()}, bw, threads);
    }

    if (cases.find("batch") != std::string::npos) {
      const std::size_t nq = 1000;
      const int rounds = n >= 1'000'000 ? 1 : 3;
      std::vector<double> tf, te;
      std::vector<float> bd(nq * k);
      std::vector<faiss::Index::idx_t> bl(nq * k);
      std::vector<std::vector<std::vector<engram::index_hit>>> parts(static_cast<std::size_t>(threads));
      for (int round = 0; round < rounds; ++round) {
        double t0 = now();
        fi.search(faiss::Index::idx_t(nq), queries.data(), k, bd.data(), bl.data());
        tf.push_back(now() - t0);
        t0 = now();
        const std::size_t per = (nq + std::size_t(threads) - 1) / std::size_t(threads);
        auto work = [&](std::size_t t) {
          const std::size_t b = std::min(nq, t * per), e = std::min(nq, b + per);
          parts[t] = ei.search_batch(std::span<const float>(queries).subspan(b * dim, (e - b) * dim), e - b, k, part0);
        };
        std::vector<std::thread> pool;
        for (std::size_t t = 1; t < std::size_t(threads); ++t) pool.emplace_back(work, t);
        work(0);
        for (auto& th : pool) th.join();
        te.push_back(now() - t0);
      }
      std::vector<std::vector<engram::index_hit>> res;
      for (auto& p : parts)
        for (auto& r : p) res.push_back(std::move(r));
      double rec_e = 0, rec_f = 0;
      std::size_t same_as_single = 0;
      for (std::size_t i = 0; i < nrecall; ++i) {
        const float* q = queries.data() + i * dim;
        const auto truth = exact(data, n, q);
        std::vector<std::size_t> ge, gf;
        for (const auto& h : res[i]) ge.push_back(h.slot);
        for (std::size_t j = 0; j < k; ++j) gf.push_back(std::size_t(bl[i * k + j]));
        rec_e += recall(truth, ge, data, q) / double(nrecall);
        rec_f += recall(truth, gf, data, q) / double(nrecall);
        same_as_single += res[i] == ei.search(std::span<const float>(q, dim), k, part0);
      }
      if (same_as_single != nrecall) std::fprintf(stderr, "batch differs from one-by-one search!\n");
      rows.push_back({"batch of 1000, N=" + tag + " (per batch)", median(tf), median(te), rec_e, rec_f, 0});
      print({rows.back()}, bw, threads);
    }

    // A filter's candidates: 1%, 10% and 50% of the slots, as FAISS's IDSelectorBitmap and engram's slot_bitmap.
    for (const std::size_t pct : {1u, 10u, 50u}) {
      if (cases.find("bitmap") == std::string::npos || n < 1'000'000) break;
      engram::slot_bitmap c(n);
      std::vector<std::uint8_t> bits((n + 7) / 8, 0);
      std::vector<unsigned char> allowed(n, 0);
      engram_bench::rng g{7};
      while (c.count() < n * pct / 100) {
        const auto s = std::size_t(g.next() % n);
        c.set(engram::slot_id(s));
        bits[s / 8] |= std::uint8_t(1u << (s % 8));
        allowed[s] = 1;
      }
      faiss::IDSelectorBitmap sel(bits.size(), bits.data());
      faiss::SearchParameters params;
      params.sel = &sel;
      std::vector<double> tf, te, tfull;
      for (int round = 0; round < 3; ++round) {
        double t0 = now();
        for (std::size_t i = 0; i < nsingle; ++i) fi.search(1, queries.data() + i * dim, k, fd.data(), fl.data(), &params);
        tf.push_back((now() - t0) / double(nsingle));
        t0 = now();
        for (std::size_t i = 0; i < nsingle; ++i) (void)ei.search(std::span<const float>(queries).subspan(i * dim, dim), k, part0, &c);
        te.push_back((now() - t0) / double(nsingle));
        t0 = now();
        for (std::size_t i = 0; i < nsingle; ++i) (void)ei.search(std::span<const float>(queries).subspan(i * dim, dim), k, part0);
        tfull.push_back((now() - t0) / double(nsingle));
      }
      double rec_e = 0, rec_f = 0;
      for (std::size_t i = 0; i < nrecall; ++i) {
        const float* q = queries.data() + i * dim;
        const auto truth = exact(data, n, q, &allowed);
        std::vector<std::size_t> ge, gf;
        for (const auto& h : ei.search(std::span<const float>(q, dim), k, part0, &c)) ge.push_back(h.slot);
        fi.search(1, q, k, fd.data(), fl.data(), &params);
        for (const auto id : fl) gf.push_back(std::size_t(id));
        rec_e += recall(truth, ge, data, q) / double(nrecall);
        rec_f += recall(truth, gf, data, q) / double(nrecall);
      }
      rows.push_back({std::to_string(pct) + "% bitmap, N=" + tag, median(tf), median(te), rec_e, rec_f, 0});
      print({rows.back()}, bw, threads);
      std::printf("engram %zu%% bitmap vs engram full scan: %.3f ms vs %.3f ms = %.1fx faster\n", pct, median(te) * 1e3,
                  median(tfull) * 1e3, median(tfull) / median(te));
    }
  }
  std::printf("\n=== summary ===");
  print(rows, bw, threads);
  return 0;
}
