// Crash-isolated scanning: hostile files cost their own scan, never the run or the index.
#include "indexer/scan_worker.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>

#include "indexer/indexer.h"
#include "formats/core/recording_sink.h"
#include "formats/registry/registry.h"
#include "store/ref_store.h"
#include "tests/indexer/hostile_scanners.h"
#include "tests/indexer/test_support.h"
#include "tests/support/view_keys.h"

namespace refzarr {
namespace {

namespace fs = std::filesystem;

void WriteFile(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

IsolationOptions TestIsolation() {
  IsolationOptions o;
  o.command = {REFZARR_TEST_SCAN_WORKER};
  o.workers = 2;
  o.memory_bytes = 1ull << 30;
  o.timeout_seconds = 3;
  return o;
}

TEST(ScanWorker, EveryHostileFileFailsAloneAndTheRunGoesOn) {
  testing::TempDir dir("hostile");
  const fs::path samples = dir.path() / "in";
  testing::WriteSamples(samples);
  const fs::path hostile = samples / "hostile";
  fs::create_directories(hostile);
  WriteFile(hostile / "crash.tif", "REFZARR-CRASH and then some bytes");
  WriteFile(hostile / "hang.tif", "REFZARR-HANG forever");
  WriteFile(hostile / "spin.tif", "REFZARR-SPIN forever");
  WriteFile(hostile / "hog.tif", "REFZARR-HOG all the memory");
  WriteFile(hostile / "abort.tif", "REFZARR-ABORT at once");

  const auto scanners = testing::ScannersWithHostileOnes();
  // The hog fills its address space page by page: with 512 MiB it reaches the limit well inside
  // the 6 s timeout even on a loaded machine (with 1 GiB a run at load 10 timed out instead).
  IsolationOptions isolation = TestIsolation();
  isolation.memory_bytes = 512ull << 20;
  isolation.timeout_seconds = 6;
  auto runner = MakeIsolatedScanRunner(isolation);
  ASSERT_TRUE(runner.ok()) << runner.status().message();
  IndexOptions options;
  options.scanners = &scanners;
  options.runner = runner->get();
  options.threads = 2;
  std::ostringstream log;
  const auto start = std::chrono::steady_clock::now();
  auto report = IndexPaths({samples}, dir.path() / "h.refs.db", options, log);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(report.ok()) << report.status().message();
  // Two timeouts of 6 s, plus the scans: far less than the 5 hostile files each timing out.
  EXPECT_LT(seconds, 30) << log.str();

  std::map<std::string, std::string> errors;
  for (const IndexedFile& f : report->files) {
    if (f.outcome == "failed") errors[f.group] = f.error;
  }
  EXPECT_NE(errors["hostile/crash.tif"].find("scan killed by SIGSEGV"), std::string::npos)
      << errors["hostile/crash.tif"];
  EXPECT_NE(errors["hostile/abort.tif"].find("scan killed by SIGABRT"), std::string::npos)
      << errors["hostile/abort.tif"];
  EXPECT_NE(errors["hostile/hang.tif"].find("scan timed out after 6 s"), std::string::npos)
      << errors["hostile/hang.tif"];
  EXPECT_NE(errors["hostile/spin.tif"].find("scan timed out after 6 s"), std::string::npos)
      << errors["hostile/spin.tif"];
  EXPECT_NE(errors["hostile/hog.tif"].find("out of memory"), std::string::npos)
      << errors["hostile/hog.tif"];
  for (const char* name : {"crash", "abort", "hang", "spin", "hog"}) {
    std::string path = (hostile / (std::string(name) + ".tif")).string();
    EXPECT_NE(log.str().find(path), std::string::npos) << "no message names " << path;
  }
  // The two deliberately damaged samples fail as they do in process; nothing else does.
  EXPECT_EQ(report->failed, 7u) << log.str();

  // The rest of the archive is indexed exactly as an in-process run indexes it.
  fs::remove_all(hostile);
  IndexOptions in_process;
  in_process.threads = 2;
  std::ostringstream log2;
  auto plain = IndexPaths({samples}, dir.path() / "p.refs.db", in_process, log2);
  ASSERT_TRUE(plain.ok()) << plain.status().message();
  EXPECT_EQ(report->indexed, plain->indexed);
  EXPECT_EQ(report->chunks, plain->chunks);
  auto store = OpenRefStore(dir.path() / "h.refs.db", OpenMode::kReadOnly);
  ASSERT_TRUE(store.ok());
  auto node = (*store)->GetNode("hostile/crash.tif");
  ASSERT_TRUE(node.ok());
  EXPECT_FALSE(node->has_value()) << "a scan that crashed must leave no nodes";
}

TEST(ScanWorker, IsolatedScansIndexExactlyLikeInProcessOnes) {
  testing::TempDir dir("isolated_same");
  const fs::path samples = dir.path() / "in";
  testing::WriteSamples(samples);
  auto runner = MakeIsolatedScanRunner(TestIsolation());
  ASSERT_TRUE(runner.ok()) << runner.status().message();
  IndexOptions isolated;
  isolated.runner = runner->get();
  // A small bound: references spill on the indexer's side as they stream in from the worker.
  isolated.refs_in_memory = 5;
  std::ostringstream log;
  ASSERT_TRUE(IndexPaths({samples}, dir.path() / "i.refs.db", isolated, log).ok());
  ASSERT_TRUE(IndexPaths({samples}, dir.path() / "p.refs.db", IndexOptions{}, log).ok());
  auto a = testing::ReadAllKeys(dir.path() / "i.refs.db");
  auto b = testing::ReadAllKeys(dir.path() / "p.refs.db");
  EXPECT_GT(a.size(), 500u);
  EXPECT_EQ(testing::FailedKeys(a), std::vector<std::string>{});
  EXPECT_TRUE(a == b) << a.size() << " keys against " << b.size();
}

// A batch goes to one worker at once; a file that kills it fails alone, and the files after it
// are scanned by a fresh worker.
TEST(ScanWorker, ABatchSurvivesTheFilesThatKillItsWorker) {
  testing::TempDir dir("batch");
  testing::WriteSamples(dir.path() / "in");
  const fs::path good = dir.path() / "in" / "tiled" / "u32_none.tif";
  WriteFile(dir.path() / "crash.tif", "REFZARR-CRASH");
  WriteFile(dir.path() / "hang.tif", "REFZARR-HANG");
  IsolationOptions o = TestIsolation();
  o.workers = 1;
  o.timeout_seconds = 2;
  auto runner = MakeIsolatedScanRunner(o);
  ASSERT_TRUE(runner.ok()) << runner.status().message();
  std::vector<RecordingSink> sinks(5);
  const std::vector<fs::path> paths = {good, dir.path() / "crash.tif", good,
                                       dir.path() / "hang.tif", good};
  const std::vector<std::string_view> scanners = {"tiff", "CRASH", "tiff", "HANG", "tiff"};
  std::vector<ScanRequest> requests;
  for (size_t i = 0; i < paths.size(); ++i) requests.push_back({scanners[i], FileUri(paths[i]), &sinks[i]});
  std::vector<Status> statuses = (*runner)->ScanAll(requests);
  ASSERT_EQ(statuses.size(), 5u);
  // What the good file gives when scanned in this process.
  auto local_scanners = DefaultScanners();
  auto decoders = DefaultDecoders();
  std::vector<const ChunkDecoder*> decoder_ptrs;
  for (const auto& d : decoders) decoder_ptrs.push_back(d.get());
  RecordingSink expected;
  ASSERT_TRUE(MakeInProcessScanRunner(local_scanners, decoder_ptrs)->Scan("tiff", FileUri(good), expected).ok());
  ASSERT_TRUE(expected.Finish().ok());
  ASSERT_GT(expected.result().ChunkCount(), 0u);
  for (size_t i : {0u, 2u, 4u}) {
    EXPECT_TRUE(statuses[i].ok()) << i << ": " << statuses[i].message();
    ASSERT_TRUE(sinks[i].Finish().ok());
    EXPECT_EQ(sinks[i].result().ChunkCount(), expected.result().ChunkCount()) << i;
  }
  EXPECT_NE(statuses[1].message().find("scan killed by SIGSEGV"), std::string::npos)
      << statuses[1].message();
  EXPECT_NE(statuses[3].message().find("scan timed out after 2 s"), std::string::npos)
      << statuses[3].message();
}

// Everything a scan describes, as JSON, to compare two recordings of it.
nlohmann::json Describe(const ScannedFile& f) {
  nlohmann::json j;
  for (const auto& g : f.groups) {
    j["groups"].push_back({g.path, g.attributes, g.image ? g.image->ToJson() : nullptr});
  }
  for (const auto& a : f.arrays) {
    nlohmann::json inl;
    for (const auto& [i, bytes] : a.inline_chunks) inl.push_back({i, bytes.size()});
    j["arrays"].push_back({a.path, a.desc.ToJson(), a.StoredCount(), inl});
  }
  for (const auto& r : f.refused) j["refused"].push_back({r.path, r.reason});
  j["companions"] = f.companions;
  std::vector<uint32_t> sources;
  for (const auto& a : f.arrays) {
    for (const auto& [i, ref] : a.chunks) sources.push_back(ref.source);
  }
  j["chunk_sources"] = sources;
  return j;
}

TEST(ScanWorker, DescriptionsCrossTheProcessBoundaryWhole) {
  testing::TempDir dir("full");
  const fs::path file = dir.path() / "full.bin";
  WriteFile(file, "REFZARR-FULL");
  auto runner = MakeIsolatedScanRunner(TestIsolation());
  ASSERT_TRUE(runner.ok()) << runner.status().message();
  RecordingSink isolated, local;
  ASSERT_TRUE((*runner)->Scan("FULL", FileUri(file), isolated).ok());
  const auto scanners = testing::ScannersWithHostileOnes();
  auto decoders = DefaultDecoders();
  std::vector<const ChunkDecoder*> decoder_ptrs;
  for (const auto& d : decoders) decoder_ptrs.push_back(d.get());
  ASSERT_TRUE(MakeInProcessScanRunner(scanners, decoder_ptrs)->Scan("FULL", FileUri(file), local).ok());
  ASSERT_TRUE(isolated.Finish().ok());
  ASSERT_TRUE(local.Finish().ok());
  const nlohmann::json a = Describe(isolated.result()), b = Describe(local.result());
  EXPECT_EQ(a["arrays"].size(), 2u) << b.dump(1);
  EXPECT_EQ(a, b) << a.dump(1) << "\n" << b.dump(1);
  EXPECT_EQ(isolated.result().companions,
            (std::vector<std::string>{FileUri(dir.path() / "full companion \u00e9.raw"),
                                      "mem://bucket/full.raw"}));
}

TEST(ScanWorker, ACommandThatIsNotAWorkerIsAnErrorAtOnce) {
  IsolationOptions o = TestIsolation();
  o.command = {"/bin/true"};
  auto runner = MakeIsolatedScanRunner(o);
  ASSERT_FALSE(runner.ok());
  EXPECT_NE(runner.status().message().find("cannot start the scan worker '/bin/true'"),
            std::string::npos)
      << runner.status().message();
}

}  // namespace
}  // namespace refzarr
