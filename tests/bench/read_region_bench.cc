// refzarr-bench-read-region INDEX ARRAY RANGE... [--threads N]... [--repeat R]
//
// Reads the box RANGE... (half-open "BEGIN:END", one per dimension) of ARRAY through the typed
// read API (store/array_reader.h) R times for each thread count and prints, per count, the best
// wall time, the decoded throughput, the least CPU time (all threads) and the sum of the values (to
// compare with the baseline's). docs/performance.md ("Reading a region through the C++ API") has
// the figures and the command.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <iostream>
#include <string>
#include <vector>

#include "formats/registry/registry.h"
#include "store/array_reader.h"
#include "store/zarr_view.h"

namespace {

// CPU seconds of the whole process (every thread), as Python's time.process_time().
double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"read a box of an array through the C++ read API, timed"};
  std::string index, array;
  std::vector<std::string> ranges;
  std::vector<unsigned> threads = {1};
  int repeat = 5;
  app.add_option("INDEX", index, "index")->required();
  app.add_option("ARRAY", array, "array path in the view, e.g. 0/0")->required();
  app.add_option("RANGES", ranges, "one BEGIN:END per dimension")->required();
  app.add_option("--threads", threads, "thread counts to run, e.g. --threads 1 2")
      ->capture_default_str();
  app.add_option("--repeat", repeat, "runs per thread count (the best is printed)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  auto decoders = refzarr::DefaultDecoders();
  refzarr::ViewOptions options;
  for (const auto& d : decoders) options.decoders.push_back(d.get());
  auto view = refzarr::OpenZarrView(index, options);
  if (!view.ok()) {
    std::cerr << view.status().message() << "\n";
    return 1;
  }
  auto box = refzarr::ParseBox(ranges);
  if (!box.ok()) {
    std::cerr << box.status().message() << "\n";
    return 2;
  }
  for (unsigned t : threads) {
    auto reader = refzarr::OpenArrayReader(**view, array, {t});
    if (!reader.ok()) {
      std::cerr << reader.status().message() << "\n";
      return 1;
    }
    const refzarr::DType& dtype = (*reader)->array().dtype;
    if (dtype.kind != 'u' || dtype.size != 2) {
      std::cerr << array << ": the benchmark reads uint16 arrays\n";
      return 1;
    }
    std::vector<uint16_t> out(*refzarr::BoxElements(*box));
    double best = 1e300, best_cpu = 1e300;
    uint64_t sum = 0;
    for (int r = 0; r < repeat; ++r) {
      const double cpu0 = CpuSeconds();
      const auto t0 = std::chrono::steady_clock::now();
      refzarr::Status s = (*reader)->Read(*box, std::span(out));
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double cpu = CpuSeconds() - cpu0;
      if (!s.ok()) {
        std::cerr << s.message() << "\n";
        return 1;
      }
      best = std::min(best, secs);
      best_cpu = std::min(best_cpu, cpu);
      sum = 0;
      for (uint16_t v : out) sum += v;
    }
    const double mb = out.size() * 2 / 1e6;
    std::cout << "refzarr threads=" << t << " best_s=" << best << " MB_per_s=" << mb / best
              << " cpu_s=" << best_cpu << " sum=" << sum << "\n";
  }
  return 0;
}
