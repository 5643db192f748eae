// refzarr-bench-hdf5 [--file PATH] [--latest] [--keep] [--info-calls N]
//
// Writes one uint16 dataset of 1600 x 2048 x 2048 in (1, 256, 256) chunks with shuffle + gzip
// (102,400 chunks; a few precompressed template chunks written with H5Dwrite_chunk, so the file is
// made in seconds), then times the HDF5 scanner indexing it into a counting sink, and the per-call
// cost of H5Dget_chunk_info (the library's only listing in HDF5 1.10, O(chunks) per call).
#include <hdf5.h>
#include <sys/resource.h>
#include <zlib.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "formats/hdf5/hdf5_scanner.h"
#include "formats/hdf5/hdf5_util.h"

namespace {

using refzarr::internal::H5Id;
using Clock = std::chrono::steady_clock;

constexpr hsize_t kDims[3] = {1600, 2048, 2048};
constexpr hsize_t kChunk[3] = {1, 256, 256};

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

long MaxRssKb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

// A chunk as the HDF5 pipeline [shuffle, deflate] stores it.
std::vector<unsigned char> TemplateChunk(int seed) {
  const size_t n = kChunk[1] * kChunk[2];
  std::vector<uint16_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint16_t>(1000 + seed * 37 + (i % 256) + (i / 256) / 4);
  std::vector<unsigned char> shuffled(n * 2);
  const auto* bytes = reinterpret_cast<const unsigned char*>(v.data());
  for (size_t i = 0; i < n; ++i) {
    shuffled[i] = bytes[2 * i];
    shuffled[n + i] = bytes[2 * i + 1];
  }
  uLongf len = compressBound(shuffled.size());
  std::vector<unsigned char> out(len);
  compress2(out.data(), &len, shuffled.data(), shuffled.size(), 6);
  out.resize(len);
  return out;
}

bool MakeFile(const std::filesystem::path& path, bool latest) {
  H5Id fapl(H5Pcreate(H5P_FILE_ACCESS));
  if (latest) H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
  H5Id f(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()));
  if (!f.valid()) return false;
  H5Id space(H5Screate_simple(3, kDims, nullptr));
  H5Id dcpl(H5Pcreate(H5P_DATASET_CREATE));
  H5Pset_chunk(dcpl.get(), 3, kChunk);
  H5Pset_shuffle(dcpl.get());
  H5Pset_deflate(dcpl.get(), 6);
  H5Id d(H5Dcreate2(f.get(), "data", H5T_STD_U16LE, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT));
  if (!d.valid()) return false;
  std::vector<std::vector<unsigned char>> templates;
  for (int i = 0; i < 4; ++i) templates.push_back(TemplateChunk(i));
  hsize_t off[3];
  uint64_t k = 0;
  for (hsize_t z = 0; z < kDims[0]; z += kChunk[0]) {
    for (hsize_t y = 0; y < kDims[1]; y += kChunk[1]) {
      for (hsize_t x = 0; x < kDims[2]; x += kChunk[2]) {
        off[0] = z;
        off[1] = y;
        off[2] = x;
        const auto& t = templates[k++ % templates.size()];
        if (H5Dwrite_chunk(d.get(), H5P_DEFAULT, 0, off, t.size(), t.data()) < 0) return false;
      }
    }
  }
  return true;
}

class CountingSink : public refzarr::ScanSink {
 public:
  refzarr::Result<uint32_t> AddSource(std::string_view) override { return 1u; }
  refzarr::Status AddGroup(std::string_view, const nlohmann::json&) override { return {}; }
  refzarr::Status AddImage(std::string_view, const refzarr::ImageDesc&) override { return {}; }
  refzarr::Result<refzarr::ArrayHandle> AddArray(std::string_view, const refzarr::ArrayDesc&) override {
    ++arrays;
    return 0u;
  }
  refzarr::Status AddChunk(refzarr::ArrayHandle, uint64_t, const refzarr::ChunkRef& ref) override {
    ++chunks;
    bytes += ref.length;
    return {};
  }
  refzarr::Status AddInlineChunk(refzarr::ArrayHandle, uint64_t, std::span<const std::byte>) override { return {}; }
  refzarr::Status AddFile(std::string_view, std::string) override { return {}; }
  void Warn(std::string m) override { std::cerr << "warning: " << m << "\n"; }
  refzarr::Status RefuseArray(std::string_view path, std::string reason) override {
    std::cerr << "refused: " << path << ": " << reason << "\n";
    return {};
  }
  uint64_t arrays = 0, chunks = 0, bytes = 0;
};

}  // namespace

int main(int argc, char** argv) {
  std::filesystem::path path = std::filesystem::temp_directory_path() / "refzarr-bench-hdf5.h5";
  bool latest = false, keep = false;
  int info_calls = 10;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--file" && i + 1 < argc) path = argv[++i];
    else if (a == "--latest") latest = true;
    else if (a == "--keep") keep = true;
    else if (a == "--info-calls" && i + 1 < argc) info_calls = std::stoi(argv[++i]);
    else {
      std::cerr << "usage: refzarr-bench-hdf5 [--file PATH] [--latest] [--keep] [--info-calls N]\n";
      return 2;
    }
  }
  refzarr::internal::Hdf5ErrorSilencer quiet;
  if (!std::filesystem::exists(path)) {
    auto t0 = Clock::now();
    if (!MakeFile(path, latest)) {
      std::cerr << "refzarr-bench-hdf5: cannot write " << path << "\n";
      return 1;
    }
    std::cout << "wrote " << path << " (" << std::filesystem::file_size(path) / 1e6 << " MB) in " << Seconds(t0)
              << " s\n";
  }
  const long rss_before = MaxRssKb();
  auto scanner = refzarr::MakeHdf5Scanner();
  CountingSink sink;
  auto t0 = Clock::now();
  auto source = refzarr::OpenLocalFile(path);
  if (!source.ok()) {
    std::cerr << source.status().message() << "\n";
    return 1;
  }
  refzarr::Status s = scanner->Scan(**source, refzarr::ScanContext{path}, sink);
  const double scan_s = Seconds(t0);
  if (!s.ok()) {
    std::cerr << "scan failed: " << s.message() << "\n";
    return 1;
  }
  std::cout << "scan: " << sink.chunks << " chunks (" << sink.bytes / 1e6 << " MB referenced) in " << scan_s
            << " s = " << scan_s / sink.chunks * 1e6 << " us/chunk; max RSS " << MaxRssKb() / 1024
            << " MiB (before scan " << rss_before / 1024 << " MiB)\n";

  if (info_calls > 0) {
    H5Id f(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    H5Id d(H5Dopen2(f.get(), "data", H5P_DEFAULT));
    H5Id space(H5Dget_space(d.get()));
    hsize_t n = 0;
    H5Dget_num_chunks(d.get(), space.get(), &n);
    auto t1 = Clock::now();
    for (int i = 0; i < info_calls; ++i) {
      hsize_t off[3];
      unsigned mask;
      haddr_t addr;
      hsize_t size;
      // Spread over the index: the cost grows with the position.
      H5Dget_chunk_info(d.get(), space.get(), n * (2 * i + 1) / (2 * info_calls), off, &mask, &addr, &size);
    }
    const double per_call = Seconds(t1) / info_calls;
    std::cout << "H5Dget_chunk_info: " << per_call * 1e3 << " ms per call (mean over " << info_calls
              << " calls spread over " << n << " chunks) -> listing all chunks this way ~ " << per_call * n
              << " s\n";
  }
  if (!keep) std::filesystem::remove(path);
  return 0;
}
