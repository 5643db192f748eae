// The refzarr binary's cold start: reading an index (cat of a pass-through chunk, ls, info, refs)
// maps none of the heavy libraries (libtiff, libhdf5, libfuse3, libmicrohttpd, the compression
// libraries: they come with modules loaded on first use; SQLite is linked in), a transcoded chunk
// loads the formats and codecs modules and decodes as libtiff does, and a binary without its
// modules says which module is missing.
//
// What the dynamic loader mapped is read from its own trace (LD_DEBUG=files), and the bytes are
// compared with what libtiff reads from the file.
#include <blosc.h>
#include <gtest/gtest.h>
#include <tiffio.h>

#include <cstdlib>
#include <filesystem>
#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/indexer/test_support.h"

namespace refzarr {
namespace {

namespace fs = std::filesystem;

struct BinaryRun {
  int exit_code = -1;
  std::string out, err;
};

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Runs `binary args...` in a shell with `env` in front, for at most 60 s, capturing stdout and
// stderr in files.
BinaryRun RunBinary(const fs::path& dir, const std::string& env, const fs::path& binary,
                    const std::vector<std::string>& args) {
  // Bounded: a binary that serves instead of failing must not hang the test.
  std::string cmd = env + " timeout 60 '" + binary.string() + "'";
  for (const std::string& a : args) cmd += " '" + a + "'";
  cmd += " >'" + (dir / "out").string() + "' 2>'" + (dir / "err").string() + "'";
  BinaryRun r;
  int status = std::system(cmd.c_str());
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = ReadAll(dir / "out");
  r.err = ReadAll(dir / "err");
  return r;
}

// The shared objects the dynamic loader opened, from its LD_DEBUG=files trace ("file=NAME [0];
// needed by ..." or "... dynamically loaded by ..."), one name per line.
std::string LoadedFiles(const std::string& trace) {
  std::string files;
  size_t at = 0;
  while ((at = trace.find("file=", at)) != std::string::npos) {
    at += 5;
    size_t end = trace.find_first_of(" \t\n", at);
    files += trace.substr(at, end - at) + "\n";
  }
  return files;
}

constexpr const char* kHeavy[] = {"libtiff",   "libhdf5",  "libfuse3",  "libmicrohttpd",
                                  "libjpeg",   "libcurl",  "libblosc",  "libzstd",
                                  "liblzma",   "libpng",   "libdeflate", "libz.so",
                                  "libsqlite3", "refzarr_formats.so", "refzarr_codecs.so"};

constexpr uint32_t kSide = 64, kTile = 32;

// A 64 x 64 8-bit grey image in 32 x 32 tiles with `compression`; returns false on a libtiff error.
bool WriteTiff(const fs::path& path, uint16_t compression) {
  TIFF* tif = TIFFOpen(path.c_str(), "w");
  if (tif == nullptr) return false;
  TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, kSide);
  TIFFSetField(tif, TIFFTAG_IMAGELENGTH, kSide);
  TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, 8);
  TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 1);
  TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
  TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
  TIFFSetField(tif, TIFFTAG_TILEWIDTH, kTile);
  TIFFSetField(tif, TIFFTAG_TILELENGTH, kTile);
  TIFFSetField(tif, TIFFTAG_COMPRESSION, compression);
  std::vector<uint8_t> tile(kTile * kTile);
  bool ok = true;
  for (uint32_t t = 0; t < 4; ++t) {
    for (uint32_t i = 0; i < tile.size(); ++i) tile[i] = static_cast<uint8_t>(i * 7 + t * 50);
    ok = ok && TIFFWriteEncodedTile(tif, t, tile.data(), tile.size()) >= 0;
  }
  TIFFClose(tif);
  return ok;
}

// Tile 0 of `path` as stored (raw) or as libtiff decodes it.
std::string ReadTile0(const fs::path& path, bool raw) {
  TIFF* tif = TIFFOpen(path.c_str(), "r");
  if (tif == nullptr) return "";
  std::string bytes(kTile * kTile * 4, '\0');
  tmsize_t n = raw ? TIFFReadRawTile(tif, 0, bytes.data(), bytes.size())
                   : TIFFReadEncodedTile(tif, 0, bytes.data(), bytes.size());
  TIFFClose(tif);
  bytes.resize(n > 0 ? n : 0);
  return bytes;
}

class ColdStart : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(WriteTiff(data_ / "deflate.tif", COMPRESSION_ADOBE_DEFLATE));
    ASSERT_TRUE(WriteTiff(data_ / "jpeg.tif", COMPRESSION_JPEG));
    BinaryRun r =
        RunBinary(dir_.path(), "", REFZARR_BIN, {"index", "-o", index_.string(), data_.string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  testing::TempDir dir_{"cold_start"};
  fs::path data_ = [this] {
    fs::create_directories(dir_.path() / "data");
    return dir_.path() / "data";
  }();
  fs::path index_ = dir_.path() / "x.refs.db";
  // Chunk (0, 0) of each file's only image, in the view's TCZYX layout.
  const std::string deflate_key_ = "deflate.tif/0/0/0/0/0/0/0";
  const std::string jpeg_key_ = "jpeg.tif/0/0/0/0/0/0/0";
};

TEST_F(ColdStart, ReadingAnIndexMapsNoHeavyLibrary) {
  const std::vector<std::vector<std::string>> commands = {
      {"cat", index_.string(), deflate_key_},
      {"ls", "-r", index_.string()},
      {"info", index_.string()},
      {"refs", index_.string(), "deflate.tif/0/0"},
  };
  for (const auto& args : commands) {
    BinaryRun r = RunBinary(dir_.path(), "LD_DEBUG=files", REFZARR_BIN, args);
    ASSERT_EQ(r.exit_code, 0) << args[0] << ": " << r.err;
    std::string loaded = LoadedFiles(r.err);
    ASSERT_NE(loaded.find("libc.so"), std::string::npos) << "no loader trace:\n" << r.err;
    for (const char* heavy : kHeavy) {
      EXPECT_EQ(loaded.find(heavy), std::string::npos)
          << "refzarr " << args[0] << " mapped " << heavy << "; it mapped:\n"
          << loaded;
    }
    if (args[0] == "cat") {
      // Pass-through: the stored bytes of the tile (a zlib stream), as libtiff reads them raw.
      EXPECT_EQ(r.out, ReadTile0(data_ / "deflate.tif", /*raw=*/true));
    }
  }
}

// main builds only the options of the command that runs: every command `refzarr --help` lists
// must still answer its own --help with its own usage, and a wrong command or none is an error.
TEST_F(ColdStart, EveryListedCommandIsBuiltWhenNamed) {
  BinaryRun overview = RunBinary(dir_.path(), "", REFZARR_BIN, {"--help"});
  ASSERT_EQ(overview.exit_code, 0) << overview.err;
  const size_t list = overview.out.find("Subcommands:");
  ASSERT_NE(list, std::string::npos) << overview.out;
  std::vector<std::string> names;
  std::istringstream lines(overview.out.substr(list));
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("  ") && line[2] != ' ') names.push_back(line.substr(2, line.find(' ', 2) - 2));
  }
  for (const char* expected : {"index", "ls", "cat", "info", "export", "merge", "serve", "mount"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), expected), names.end()) << overview.out;
  }
  for (const std::string& name : names) {
    BinaryRun help = RunBinary(dir_.path(), "", REFZARR_BIN, {name, "--help"});
    EXPECT_EQ(help.exit_code, 0) << name << ": " << help.err;
    EXPECT_NE(help.out.find("refzarr " + name + " [OPTIONS]"), std::string::npos)
        << name << ":\n" << help.out;
  }
  BinaryRun wrong = RunBinary(dir_.path(), "", REFZARR_BIN, {"catt", index_.string()});
  EXPECT_EQ(wrong.exit_code, 2) << wrong.err;
  BinaryRun none = RunBinary(dir_.path(), "", REFZARR_BIN, {});
  EXPECT_EQ(none.exit_code, 2) << none.err;
  BinaryRun missing = RunBinary(dir_.path(), "", REFZARR_BIN, {"cat", index_.string()});
  EXPECT_EQ(missing.exit_code, 2) << missing.err;
  EXPECT_NE(missing.err.find("key is required"), std::string::npos) << missing.err;
}

TEST_F(ColdStart, ATranscodedChunkLoadsTheFormatsModule) {
  BinaryRun r =
      RunBinary(dir_.path(), "LD_DEBUG=files", REFZARR_BIN, {"cat", index_.string(), jpeg_key_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string loaded = LoadedFiles(r.err);
  EXPECT_NE(loaded.find("refzarr_formats.so"), std::string::npos) << loaded;
  EXPECT_NE(loaded.find("libtiff"), std::string::npos) << loaded;
  EXPECT_NE(loaded.find("refzarr_codecs.so"), std::string::npos) << loaded;  // blosc encodes
  // The compat view re-encodes the decoded tile with blosc: decoded, it is libtiff's tile.
  const std::string want = ReadTile0(data_ / "jpeg.tif", /*raw=*/false);
  ASSERT_EQ(want.size(), kTile * kTile);
  std::string got(want.size(), '\0');
  ASSERT_EQ(blosc_decompress_ctx(r.out.data(), got.data(), got.size(), 1),
            static_cast<int>(got.size()));
  EXPECT_EQ(got, want);
}

TEST_F(ColdStart, ABinaryWithoutItsModulesNamesTheMissingOne) {
  // The same binary in a folder with no lib/refzarr next to it (a hard link keeps
  // /proc/self/exe in that folder).
  fs::path lonely = dir_.path() / "bin" / "refzarr";
  fs::create_directories(lonely.parent_path());
  std::error_code ec;
  fs::create_hard_link(REFZARR_BIN, lonely, ec);
  if (ec) fs::copy_file(REFZARR_BIN, lonely);

  BinaryRun pass = RunBinary(dir_.path(), "", lonely, {"cat", index_.string(), deflate_key_});
  EXPECT_EQ(pass.exit_code, 0) << pass.err;  // the read path needs no module

  BinaryRun r = RunBinary(dir_.path(), "", lonely, {"cat", index_.string(), jpeg_key_});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("refzarr_formats.so"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("cannot open shared object file"), std::string::npos) << r.err;

  BinaryRun serve = RunBinary(dir_.path(), "", lonely, {"serve", "--port", "0", index_.string()});
  EXPECT_EQ(serve.exit_code, 1);
  EXPECT_NE(serve.err.find("refzarr_http.so"), std::string::npos) << serve.err;
}

}  // namespace
}  // namespace refzarr
