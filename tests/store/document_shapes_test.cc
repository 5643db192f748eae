// Every document refzarr writes for the TIFF and HDF5 samples (the generated ones and
// ../shared/realdata), in both Zarr formats and both codec policies, and the kerchunk export, has
// the shape its specification gives (tests/store/document_shapes.h). Compat views name only what
// every client decodes: Zarr v3 arrays only codecs every v3 client has, and the first chunk of
// every compat array decodes with the codecs its metadata names to exactly one chunk.
#include "tests/store/document_shapes.h"

#include <blosc.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "formats/registry/registry.h"
#include "store/kerchunk_export.h"
#include "store/ref_store.h"
#include "store/transcode/transcode.h"
#include "store/zarr_view.h"

namespace refzarr {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::Problems;
using testing::V3Codecs;

// Builds one index of the samples for the whole suite.
class DocumentShapes : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() / ("refzarr_shapes_" + std::to_string(getpid())));
    fs::remove_all(*dir_);
    fs::create_directories(*dir_);
    std::string inputs;
    auto run = [](const std::string& cmd) {
      return std::system((cmd + " > /dev/null 2>&1").c_str());
    };
    if (run(std::string(REFZARR_SAMPLES_BIN) + " " + (*dir_ / "tiff").string()) == 0) {
      inputs += " " + (*dir_ / "tiff").string();
    }
#ifdef REFZARR_HDF5_SAMPLES_BIN
    if (run(std::string(REFZARR_HDF5_SAMPLES_BIN) + " " + (*dir_ / "hdf5").string()) == 0) {
      inputs += " " + (*dir_ / "hdf5").string();
    }
#endif
    for (const char* sub : {"tiff", "hdf5"}) {
      fs::path real = fs::path(REFZARR_SHARED_DIR) / "realdata" / sub;
      if (fs::exists(real)) inputs += " " + real.string();
    }
    index_ = new std::string((*dir_ / "samples.refs.db").string());
    // Exit status 1 is expected: some samples are broken on purpose.
    run(std::string(REFZARR_BIN) + " index -o " + *index_ + inputs);
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
    delete index_;
  }

  static fs::path* dir_;
  static std::string* index_;
};
fs::path* DocumentShapes::dir_ = nullptr;
std::string* DocumentShapes::index_ = nullptr;

std::string Join(const std::string& dir, const std::string& name) {
  return dir.empty() ? name : dir + "/" + name;
}

// Decodes a served chunk with the codecs the metadata names (compressors only: the filters compat
// views name are checked by the e2e tests' clients) and returns the decoded size, or an error.
Result<size_t> DecodedSize(const std::string& name, const json& conf, const std::string& bytes,
                           size_t expected) {
  std::string out(expected + 64, '\0');
  if (name == "gzip" || name == "zlib") {
    z_stream z{};
    inflateInit2(&z, name == "gzip" ? 16 + 15 : 15);
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
    z.avail_in = static_cast<uInt>(bytes.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    int rc = inflate(&z, Z_FINISH);
    size_t n = z.total_out, used = z.total_in;
    inflateEnd(&z);
    if (rc != Z_STREAM_END) return CorruptError(name + ": inflate returned " + std::to_string(rc));
    if (name == "gzip" && used != bytes.size()) return CorruptError("gzip: bytes after the member");
    return n;
  }
  if (name == "blosc") {
    int n = blosc_decompress_ctx(bytes.data(), out.data(), out.size(), 1);
    if (n < 0) return CorruptError("blosc: " + std::to_string(n));
    return static_cast<size_t>(n);
  }
  if (name == "zstd") {
    if (ZSTD_getFrameContentSize(bytes.data(), bytes.size()) == ZSTD_CONTENTSIZE_UNKNOWN) {
      return CorruptError("zstd: a frame without a content size (older numcodecs refuse it)");
    }
    size_t n = ZSTD_decompress(out.data(), out.size(), bytes.data(), bytes.size());
    if (ZSTD_isError(n)) return CorruptError(std::string("zstd: ") + ZSTD_getErrorName(n));
    return n;
  }
  if (name.empty() || name == "bytes") return bytes.size();
  return UnsupportedError("no decoder here for " + name + " " + conf.dump());
}

struct Walk {
  ZarrView& view;
  const ViewOptions& options;
  Problems problems;
  std::map<std::string, uint64_t> arrays_by_codec;  // served compressor -> arrays
  uint64_t arrays = 0, chunks_checked = 0;

  RefStore& store;
  uint64_t refused = 0;  // arrays whose chunks fail, as CheckServable says at index time

  Walk(ZarrView& v, const ViewOptions& o, RefStore& s) : view(v), options(o), store(s) {}

  // A chunk that fails to be served is only acceptable for an array the indexer refuses.
  Status ExpectRefused(const std::string& path, const Status& failure) {
    ASSIGN_OR_RETURN(auto node, store.GetNode(path));
    if (!node) return failure;
    ASSIGN_OR_RETURN(ArrayDesc desc, ArrayDesc::FromJson(node->meta.at("array")));
    if (CheckServable(desc, options.decoders).ok()) {
      return InternalError("CheckServable accepts " + path +
                           " but its first chunk fails: " + failure.ToString());
    }
    ++refused;
    return OkStatus();
  }

  // Checks that the array's first chunk (all coordinates 0; not listed: a sparse array's grid may
  // have billions of entries) decodes with what its metadata names.
  Status CheckFirstChunk(const std::string& path, const json& meta) {
    const bool v3 = options.zarr_format == 3;
    std::string codec;
    json conf;
    uint64_t elements = 1;
    json chunk_shape = v3 ? meta["chunk_grid"]["configuration"]["chunk_shape"] : meta["chunks"];
    for (const json& c : chunk_shape) elements *= c.get<uint64_t>();
    size_t element_size = 0;
    if (v3) {
      for (const json& c : meta["codecs"]) {
        std::string n = c["name"];
        if (n == "vlen-utf8") return OkStatus();  // strings: no fixed chunk size
        if (n != "bytes" && n != "crc32c") {
          codec = n;
          conf = c.value("configuration", json());
        }
      }
      static const std::map<std::string, size_t> kSizes = {
          {"bool", 1},    {"int8", 1},    {"uint8", 1},     {"int16", 2},      {"uint16", 2},
          {"float16", 2}, {"int32", 4},   {"uint32", 4},    {"float32", 4},    {"int64", 8},
          {"uint64", 8},  {"float64", 8}, {"complex64", 8}, {"complex128", 16}};
      std::string t = meta["data_type"];
      element_size = kSizes.count(t) ? kSizes.at(t) : std::stoul(t.substr(1)) / 8;
    } else {
      if (meta["dtype"] == "|O") return OkStatus();
      if (meta["compressor"].is_object()) {
        codec = meta["compressor"]["id"];
        conf = meta["compressor"];
      }
      if (!meta["filters"].is_null()) return OkStatus();  // numcodecs filters: for the e2e clients
      if (!meta["dtype"].is_string()) return OkStatus();
      std::string t = meta["dtype"];
      element_size = std::stoul(t.substr(2));
    }
    ++arrays_by_codec[codec.empty() ? "(none)" : codec];
    const uint64_t expected = elements * element_size;
    if (expected > (256u << 20)) return OkStatus();
    std::string key = v3 ? Join(path, "c") : path;
    for (size_t i = 0; i < chunk_shape.size(); ++i) key += "/0";
    if (chunk_shape.empty() && !v3) key += "/0";
    auto value = view.Get(key);
    if (!value.ok()) return ExpectRefused(path, value.status());
    if (!*value) return OkStatus();  // no first chunk: the fill value
    ASSIGN_OR_RETURN(std::string bytes, view.Materialize(**value));
    auto size = DecodedSize(codec, conf, bytes, expected);
    if (size.status().code() == StatusCode::kUnsupported) return OkStatus();  // lzma etc. (v2)
    if (!size.ok()) return size.status().WithContext(key);
    // A short last TIFF strip is served short only as stored, never by a compat view.
    if (*size != expected) {
      return CorruptError(key + ": decodes to " + std::to_string(*size) + " bytes, a chunk is " +
                          std::to_string(expected));
    }
    ++chunks_checked;
    return OkStatus();
  }

  // Checks the document `name` of `dir` when the view has it; returns it (null when absent).
  json CheckDocument(const std::string& dir, const std::string& name) {
    const std::string key = Join(dir, name);
    auto value = view.Get(key);
    if (!value.ok()) {
      problems.push_back(key + ": " + value.status().ToString());
      return nullptr;
    }
    if (!*value) return nullptr;
    json doc = json::parse((*value)->bytes, nullptr, false);
    if (doc.is_discarded()) {
      problems.push_back(key + ": not JSON");
      return nullptr;
    }
    V3Codecs allowed = options.codecs == CodecPolicy::kCompat ? V3Codecs::kCompat : V3Codecs::kAny;
    for (std::string& p : testing::DocumentProblems(name, doc, allowed, key)) {
      problems.push_back(std::move(p));
    }
    return doc;
  }

  // An array's keys below it are chunks only, and not listed here: a sparse array's grid may
  // have billions of entries.
  void Visit(const std::string& dir) {
    json array;
    if (options.zarr_format == 3) {
      json doc = CheckDocument(dir, "zarr.json");
      if (doc.is_object() && doc.value("node_type", "") == "array") array = doc;
    } else {
      array = CheckDocument(dir, ".zarray");
      if (!array.is_null()) {
        CheckDocument(dir, ".zattrs");
      } else {
        for (const char* name : {".zgroup", ".zattrs", ".zmetadata"}) CheckDocument(dir, name);
      }
    }
    if (!array.is_null()) {
      ++arrays;
      if (options.codecs == CodecPolicy::kCompat) {
        Status s = CheckFirstChunk(dir, array);
        if (!s.ok()) problems.push_back(s.ToString());
      }
      return;
    }
    auto entries = view.List(dir);
    if (!entries.ok() || !*entries) {
      problems.push_back(dir + ": cannot list: " + entries.status().ToString());
      return;
    }
    for (const DirEntry& e : **entries) {
      if (e.is_directory) Visit(Join(dir, e.name));
    }
  }
};

TEST_F(DocumentShapes, EveryViewDocumentHasItsSpecShape) {
  auto decoders = DefaultDecoders();
  uint64_t arrays_seen = 0;
  for (int format : {2, 3}) {
    for (CodecPolicy policy : {CodecPolicy::kCompat, CodecPolicy::kPassthrough}) {
      const std::string label = "v" + std::to_string(format) +
                                (policy == CodecPolicy::kCompat ? " compat" : " passthrough");
      SCOPED_TRACE(label);
      ViewOptions options;
      options.zarr_format = format;
      options.codecs = policy;
      for (const auto& d : decoders) options.decoders.push_back(d.get());
      auto view = OpenZarrView(*index_, options);
      ASSERT_TRUE(view.ok()) << view.status().ToString();
      auto store = OpenRefStore(*index_, OpenMode::kReadOnly);
      ASSERT_TRUE(store.ok()) << store.status().ToString();
      Walk walk(**view, options, **store);
      walk.Visit("");
      EXPECT_EQ(walk.problems, Problems{});
      EXPECT_GT(walk.arrays, 200u);
      if (arrays_seen == 0) arrays_seen = walk.arrays;
      EXPECT_EQ(walk.arrays, arrays_seen) << "every view lists the same arrays";
      if (policy == CodecPolicy::kCompat) {
        std::string codecs;
        for (auto& [codec, n] : walk.arrays_by_codec)
          codecs += " " + codec + ":" + std::to_string(n);
        std::cout << label << ": " << walk.arrays << " arrays, first chunks decoded for "
                  << walk.chunks_checked << ", refused by CheckServable " << walk.refused << ";"
                  << codecs << "\n";
        EXPECT_GT(walk.chunks_checked, 150u);
        if (format == 3) {
          EXPECT_GT(walk.arrays_by_codec["gzip"], 10u) << "zlib arrays re-framed";
        }
      }
    }
  }
}

TEST_F(DocumentShapes, TheKerchunkExportHasItsSpecShape) {
  std::ostringstream out;
  auto report = ExportKerchunk(*index_, out);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  json refs = json::parse(out.str(), nullptr, false);
  ASSERT_FALSE(refs.is_discarded());
  EXPECT_EQ(testing::KerchunkProblems(refs), Problems{});
  EXPECT_GT(report->chunk_refs, 1000u);
}

// No export names a codec id that numcodecs lacks without the report naming the array, the codec
// and who implements it: read back from the written `.zarray` documents, not from the index.
TEST_F(DocumentShapes, TheExportReportNamesEveryCodecNumcodecsLacks) {
  std::ostringstream out;
  auto report = ExportKerchunk(*index_, out);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  json refs = json::parse(out.str())["refs"];
  std::set<std::pair<std::string, std::string>> written, reported;
  for (auto it = refs.begin(); it != refs.end(); ++it) {
    const std::string& key = it.key();
    if (!key.ends_with("/.zarray")) continue;
    std::string array = key.substr(0, key.size() - 8);
    json zarray = json::parse(it.value().get<std::string>());
    std::vector<json> codecs;
    if (zarray["filters"].is_array())
      codecs.assign(zarray["filters"].begin(), zarray["filters"].end());
    if (zarray["compressor"].is_object()) codecs.push_back(zarray["compressor"]);
    for (const json& c : codecs) {
      std::string id = c["id"];
      if (!ForeignCodecLibrary(id).empty()) written.insert({array, id});
    }
  }
  std::map<std::string, std::string> library_of;
  for (const ForeignCodec& f : report->foreign_codecs) {
    reported.insert({f.array, f.codec});
    library_of[f.codec] = f.library;
    EXPECT_TRUE(f.library == "imagecodecs" || f.library == "none" ||
                f.library.starts_with("numcodecs"))
        << f.codec << ": " << f.library;
  }
  EXPECT_EQ(reported, written);
  EXPECT_EQ(library_of["refzarr_transpose"], "none") << "interleaved RGB samples";
  EXPECT_EQ(library_of["imagecodecs_lzw"], "imagecodecs");
  EXPECT_EQ(ForeignCodecLibrary("hdf5_filter_32013"), "none");
  EXPECT_EQ(ForeignCodecLibrary("imagecodecs_tiff_compression_34712"), "none");
  EXPECT_EQ(ForeignCodecLibrary("zlib"), "");
  // TIFF zstd tiles name the numcodecs id "zstd": the report says why numcodecs fails them.
  bool zstd_note = false;
  for (const std::string& n : report->notes)
    zstd_note |= n.find("zstd frames") != std::string::npos;
  EXPECT_TRUE(zstd_note);
  // `refzarr export` prints one "note: <array>: codec <id> ... (library: <library>)" line each.
  const fs::path err = *dir_ / "export.err";
  const std::string cmd = std::string(REFZARR_BIN) + " export " + *index_ + " -o " +
                          (*dir_ / "refs.json").string() + " 2> " + err.string();
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::ifstream in(err);
  const std::string text((std::istreambuf_iterator<char>(in)), {});
  for (const ForeignCodec& f : report->foreign_codecs) {
    const std::string line = "note: " + f.array + ": codec " + f.codec + " ";
    const size_t at = text.find(line);
    ASSERT_NE(at, std::string::npos) << line;
    EXPECT_NE(text.substr(at, text.find('\n', at) - at).find("(library: " + f.library + ")"),
              std::string::npos)
        << line;
  }
}

}  // namespace
}  // namespace refzarr
