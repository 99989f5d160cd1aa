// engram's ivf_index against FAISS IndexIVFFlat (inner product) on the same data in one process: clustered,
// normalised, fixed-seed vectors with noise (bench/data.hpp: N / 10 clusters of about 10 vectors, noise 0.8,
// seed 42, queries from index 100,000,000), d = 384, k = 10. On these a query's neighbours spread over several
// lists, so recall grows with nprobe (about 0.5 at nprobe 1 to 0.97 at 128 of 256 lists on 100k) as on real
// embeddings; --noise 0.6 --clusters 1000 gives the well-separated data of the flat comparison, where both
// engines reach recall 1.0 at nprobe 1.
//
// Both train nlist centroids with 10 k-means rounds on the same --train vectors (default 256 per list, FAISS's
// own sample size: the fixed-seed sample ivf_index::train() draws; the k-means initialisations differ: expect
// recall to differ by about 0.01 either way from that alone). Reported: training time (engram's includes moving
// all N vectors to their lists; FAISS's add of the N vectors is counted with it), recall@10 against exact
// search and queries/s for each nprobe (queries one at a time on one thread, as a memory searches), exact
// search's queries/s (engram probing every list = a flat scan), add throughput after training, and a 10% filter
// (FAISS: IDSelectorBitmap; engram: slot_bitmap, which probes more lists when the filter is selective).
// --threads T (default 1): FAISS trains with T OpenMP threads and engram with a T-thread executor; the search
// table stays on one thread for both. --train-only: the training figures alone. --clusters default: N / 10.
//
//   bench_compare_faiss_ivf [--n N] [--queries Q] [--nlist L] [--train T] [--clusters C] [--noise X]
//                           [--threads T] [--train-only] [--quick]
// --quick: N = 100k, nlist = 256, 100 queries. The BLAS (OpenBLAS) gets T threads for the training, 1 after.
#include <engram/index/ivf.hpp>

#include "data.hpp"

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/impl/IDSelector.h>
#include <dlfcn.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <set>
#include <span>
#include <string>
#include <vector>

namespace {

constexpr std::size_t dim = 384;
constexpr std::size_t k = 10;

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

using hits = std::vector<std::vector<std::size_t>>;

/// Mean fraction of truth[i]'s ids found in got[i].
double recall(const hits& truth, const hits& got) {
  double r = 0;
  for (std::size_t i = 0; i < truth.size(); ++i) {
    const std::set<std::size_t> t(truth[i].begin(), truth[i].end());
    std::size_t ok = 0;
    for (const auto id : got[i]) ok += t.count(id);
    r += truth[i].empty() ? 1.0 : double(ok) / double(truth[i].size());
  }
  return r / double(truth.size());
}

struct row {
  std::string name;
  double recall_faiss, qps_faiss, recall_engram, qps_engram;
};

void print(const std::vector<row>& rows, double exact_qps) {
  std::printf("| %-22s | %12s | %11s | %13s | %11s | %13s | %16s |\n", "case", "recall FAISS", "QPS FAISS",
              "recall engram", "QPS engram", "QPS engram/FAISS", "engram vs exact");
  std::printf("|%s|%s|%s|%s|%s|%s|%s|\n", std::string(24, '-').c_str(), std::string(14, '-').c_str(),
              std::string(13, '-').c_str(), std::string(15, '-').c_str(), std::string(13, '-').c_str(),
              std::string(18, '-').c_str(), std::string(18, '-').c_str());
  for (const auto& r : rows)
    std::printf("| %-22s | %12.4f | %11.0f | %13.4f | %11.0f | %16.2fx | %15.1fx |\n", r.name.c_str(), r.recall_faiss,
                r.qps_faiss, r.recall_engram, r.qps_engram, r.qps_engram / r.qps_faiss, r.qps_engram / exact_qps);
  std::fflush(stdout);
}

/// engram's queries/s at recall r, interpolated (log QPS linear in recall) between the two nprobe rows whose
/// recalls bracket r; negative when r lies outside engram's measured recalls.
double engram_qps_at(std::span<const row> rows, double r) {
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& b = rows[i];
    if (b.recall_engram < r) continue;
    if (i == 0 || b.recall_engram == r) return b.qps_engram;
    const auto& a = rows[i - 1];
    const double t = (r - a.recall_engram) / (b.recall_engram - a.recall_engram);
    return std::exp(std::log(a.qps_engram) + t * (std::log(b.qps_engram) - std::log(a.qps_engram)));
  }
  return -1;
}

/// For each FAISS nprobe row: engram's queries/s at FAISS's recall, and the ratio.
void print_equal_recall(std::span<const row> rows) {
  std::printf("\nat equal recall (engram's curve interpolated at FAISS's recall):\n");
  std::printf("| %-12s | %12s | %11s | %22s | %16s |\n", "FAISS", "recall FAISS", "QPS FAISS", "engram QPS, same recall",
              "QPS engram/FAISS");
  std::printf("|--------------|--------------|-------------|------------------------|------------------|\n");
  for (const auto& r : rows) {
    const double q = engram_qps_at(rows, r.recall_faiss);
    if (q < 0)
      std::printf("| %-12s | %12.4f | %11.0f | %22s | %16s |\n", r.name.c_str(), r.recall_faiss, r.qps_faiss,
                  "beyond measured", "-");
    else
      std::printf("| %-12s | %12.4f | %11.0f | %22.0f | %15.2fx |\n", r.name.c_str(), r.recall_faiss, r.qps_faiss, q,
                  q / r.qps_faiss);
  }
  std::fflush(stdout);
}

/// OpenBLAS's thread count (FAISS's k-means runs its matrix products there): set through the library's own
/// call when the BLAS is OpenBLAS; otherwise only OPENBLAS_NUM_THREADS / the BLAS's own variable applies.
bool set_blas_threads(int threads) {
  using setter = void (*)(int);
  if (auto* f = reinterpret_cast<setter>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    f(threads);
    return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t n = 1'000'000, nq = 200, nlist = 1024, ntrain = 0, clusters = 0, iterations = 10, threads = 1;
  double noise = 0.8;
  bool train_only = false;
  for (int i = 1; i < argc; ++i) {
    const auto num = [&] { return i + 1 < argc ? std::strtoull(argv[++i], nullptr, 10) : 0ull; };
    if (!std::strcmp(argv[i], "--quick")) {
      n = 100'000;
      nlist = 256;
      nq = 100;
    } else if (!std::strcmp(argv[i], "--n")) n = num();
    else if (!std::strcmp(argv[i], "--queries")) nq = num();
    else if (!std::strcmp(argv[i], "--nlist")) nlist = num();
    else if (!std::strcmp(argv[i], "--train")) ntrain = num();
    else if (!std::strcmp(argv[i], "--clusters")) clusters = num();
    else if (!std::strcmp(argv[i], "--iterations")) iterations = num();
    else if (!std::strcmp(argv[i], "--threads")) threads = num();
    else if (!std::strcmp(argv[i], "--train-only")) train_only = true;
    else if (!std::strcmp(argv[i], "--noise")) noise = i + 1 < argc ? std::strtod(argv[++i], nullptr) : 0.0;
    else {
      std::fprintf(stderr, "usage: %s [--n N] [--queries Q] [--nlist L] [--train T] [--clusters C] [--noise X] "
                           "[--threads T] [--train-only] [--quick]\n", argv[0]);
      return 2;
    }
  }
  if (ntrain == 0) ntrain = std::min(n, 256 * nlist);  // FAISS's default sample: 256 points per centroid
  if (clusters == 0) clusters = std::max<std::size_t>(1, n / 10);
  if (n == 0 || nq == 0 || nlist == 0 || clusters == 0 || iterations == 0 || threads == 0 || ntrain < nlist ||
      ntrain > n || !(noise >= 0)) {
    std::fprintf(stderr, "%s: need n, queries, nlist, clusters, threads >= 1, nlist <= train <= n, noise >= 0\n",
                 argv[0]);
    return 2;
  }
  omp_set_num_threads(int(threads));
  const bool blas_set = set_blas_threads(int(threads));
  engram::thread_pool_executor pool(threads);
  const engram_bench::clustered gen(dim, clusters, 42, float(noise));
  const auto queries = gen.block(100'000'000, nq);
  const std::vector<engram::partition_id> part0{0};
  std::fprintf(stderr, "generating %zu vectors...\n", n);
  auto data = gen.block(0, n);

  // ---- FAISS: train on the very sample ivf_index::train() draws (same positions, same fixed seed), add all
  constexpr std::uint64_t seed = 1234;
  std::vector<float> sample(ntrain * dim);
  {
    std::vector<std::uint32_t> pos(n);
    std::iota(pos.begin(), pos.end(), 0u);
    engram::detail::kmeans_rng g{seed};
    for (std::size_t i = 0; i < ntrain; ++i) std::swap(pos[i], pos[i + g.below(n - i)]);
    pos.resize(ntrain);
    std::sort(pos.begin(), pos.end());
    for (std::size_t i = 0; i < ntrain; ++i)
      std::copy_n(data.begin() + std::ptrdiff_t(pos[i] * dim), dim, sample.begin() + std::ptrdiff_t(i * dim));
  }
  faiss::IndexFlatIP quantizer(dim);
  faiss::IndexIVFFlat fi(&quantizer, dim, nlist, faiss::METRIC_INNER_PRODUCT);
  fi.cp.niter = int(iterations);
  fi.cp.max_points_per_centroid = int(ntrain / nlist + 1);  // no further subsampling
  fi.cp.seed = int(seed);
  std::fprintf(stderr, "FAISS train...\n");
  double t0 = now();
  fi.train(faiss::Index::idx_t(ntrain), sample.data());
  std::vector<float>().swap(sample);
  const double faiss_train = now() - t0;
  t0 = now();
  fi.add(faiss::Index::idx_t(n), data.data());
  const double faiss_add_all = now() - t0;
  omp_set_num_threads(1);  // searches: one thread, queries one at a time for both
  set_blas_threads(1);

  // ---- engram: add all (untrained: one flat list), then train (k-means + moving every vector to its list)
  engram::ivf_index ei(dim, engram::ivf_index_options{.nlist = nlist, .nprobe = 16, .train_threshold = n + 1,
                                                      .max_train = ntrain, .min_per_list = 1, .iterations = iterations,
                                                      .seed = seed, .retrain_growth = 0.0, .max_imbalance = 4.0,
                                                      .executor = pool});
  std::fprintf(stderr, "engram add + train...\n");
  t0 = now();
  for (std::size_t i = 0; i < n; ++i) ei.add(engram::slot_id(i), 0, std::span<const float>(data).subspan(i * dim, dim));
  const double engram_load = now() - t0;
  t0 = now();
  ei.train(0);
  const double engram_train = now() - t0;
  ei.set_executor({});  // searches: the calling thread only
  std::vector<float>().swap(data);

  const auto print_training = [&] {
    std::printf("\n=== summary ===\n");
    std::printf("engram ivf_index vs FAISS IndexIVFFlat (inner product), clustered N=%zu, d=%zu, nlist=%zu, k=%zu, "
                "%zu queries, %zu data clusters, noise %.2f; training on %zu thread(s)%s, searches on 1\n",
                n, dim, nlist, k, nq, clusters, noise, threads,
                blas_set ? "" : " (BLAS thread count not settable: set it in the environment)");
    std::printf("training (%zu-vector sample, %zu rounds): FAISS train %.2f s + add %zu %.2f s = %.2f s; engram "
                "k-means + list assignment of %zu %.2f s (ratio %.2f) [+ %.2f s loading the untrained index]\n",
                ntrain, iterations, faiss_train, n, faiss_add_all, faiss_train + faiss_add_all, n, engram_train,
                engram_train / (faiss_train + faiss_add_all), engram_load);
    std::printf("imbalance factor: engram %.3f, FAISS %.3f\n", ei.imbalance(0), fi.invlists->imbalance_factor());
  };
  if (train_only) {
    print_training();
    return 0;
  }

  // ---- exact answers (probing every list: a flat scan, bit-identical to flat_index) and their speed
  std::fprintf(stderr, "exact search...\n");
  hits truth(nq);
  t0 = now();
  for (std::size_t i = 0; i < nq; ++i)
    for (const auto& h : ei.search(std::span<const float>(queries).subspan(i * dim, dim), k, part0, nullptr, nlist))
      truth[i].push_back(h.slot);
  const double exact_qps = double(nq) / (now() - t0);

  std::vector<float> fd(nq * k);
  std::vector<faiss::Index::idx_t> fl(nq * k);
  std::vector<row> rows;
  const auto run_faiss = [&](std::size_t nprobe, const faiss::IDSelector* sel, hits& got) {
    faiss::SearchParametersIVF params;
    params.nprobe = nprobe;
    params.sel = const_cast<faiss::IDSelector*>(sel);
    const double s = now();
    fi.search(faiss::Index::idx_t(nq), queries.data(), k, fd.data(), fl.data(), &params);
    const double qps = double(nq) / (now() - s);
    got.assign(nq, {});
    for (std::size_t i = 0; i < nq; ++i)
      for (std::size_t j = 0; j < k; ++j)
        if (fl[i * k + j] >= 0) got[i].push_back(std::size_t(fl[i * k + j]));
    return qps;
  };
  const auto run_engram = [&](std::size_t nprobe, const engram::slot_bitmap* c, hits& got) {
    got.assign(nq, {});
    const double s = now();
    for (std::size_t i = 0; i < nq; ++i)
      for (const auto& h : ei.search(std::span<const float>(queries).subspan(i * dim, dim), k, part0, c, nprobe))
        got[i].push_back(h.slot);
    return double(nq) / (now() - s);
  };
  for (const std::size_t nprobe : {1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128}) {
    if (nprobe > nlist) break;
    std::fprintf(stderr, "nprobe %zu...\n", nprobe);
    hits gf, ge;
    const double qf = run_faiss(nprobe, nullptr, gf);
    const double qe = run_engram(nprobe, nullptr, ge);
    rows.push_back({"nprobe " + std::to_string(nprobe), recall(truth, gf), qf, recall(truth, ge), qe});
  }
  const std::size_t unfiltered = rows.size();

  // ---- 10% filter
  engram::slot_bitmap c(n);
  std::vector<std::uint8_t> bits((n + 7) / 8, 0);
  engram_bench::rng g{11};
  while (c.count() < n / 10) {
    const auto s = std::size_t(g.next() % n);
    c.set(engram::slot_id(s));
    bits[s / 8] |= std::uint8_t(1u << (s % 8));
  }
  faiss::IDSelectorBitmap sel(bits.size(), bits.data());
  hits ftruth(nq);
  for (std::size_t i = 0; i < nq; ++i)
    for (const auto& h : ei.search(std::span<const float>(queries).subspan(i * dim, dim), k, part0, &c, nlist))
      ftruth[i].push_back(h.slot);
  for (const std::size_t nprobe : {8, 16, 32, 64}) {
    std::fprintf(stderr, "10%% filter, nprobe %zu...\n", nprobe);
    hits gf, ge;
    const double qf = run_faiss(nprobe, &sel, gf);
    const double qe = run_engram(nprobe, &c, ge);
    rows.push_back({"10% filter, nprobe " + std::to_string(nprobe), recall(ftruth, gf), qf, recall(ftruth, ge), qe});
  }

  // ---- adds after training
  const std::size_t nadd = std::min<std::size_t>(20'000, n / 10);
  const auto extra = gen.block(n, nadd);
  t0 = now();
  fi.add(faiss::Index::idx_t(nadd), extra.data());
  const double faiss_add = double(nadd) / (now() - t0);
  t0 = now();
  for (std::size_t i = 0; i < nadd; ++i)
    ei.add(engram::slot_id(n + i), 0, std::span<const float>(extra).subspan(i * dim, dim));
  const double engram_add = double(nadd) / (now() - t0);

  print_training();
  std::printf("add after training, %zu vectors: FAISS %.0f/s (one batch), engram %.0f/s (one by one), ratio %.2f\n",
              nadd, faiss_add, engram_add, engram_add / faiss_add);
  std::printf("exact search (engram, every list scanned): %.1f QPS\n", exact_qps);
  print(rows, exact_qps);
  print_equal_recall(std::span<const row>(rows).first(unfiltered));
  return 0;
}
