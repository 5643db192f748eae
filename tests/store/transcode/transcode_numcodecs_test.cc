// numcodecs (Debian's python3-numcodecs) as the oracle: it decodes the blosc chunks refzarr serves,
// and refzarr decodes the chunks numcodecs encodes with every codec DecodeNative claims. Python's
// gzip module decodes the zlib streams refzarr re-frames as gzip for Zarr v3.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <cstring>
#include <sstream>

#include "store/transcode/transcode.h"

namespace refzarr {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<std::byte>;

constexpr const char* kPython = "/usr/bin/python3";

void WriteFile(const fs::path& p, const void* data, size_t n) {
  std::ofstream(p, std::ios::binary).write(static_cast<const char*>(data), n);
}

Bytes ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), {});
  Bytes b(s.size());
  std::memcpy(b.data(), s.data(), s.size());
  return b;
}

int RunPython(const fs::path& script, const fs::path& dir) {
  std::string cmd = std::string(kPython) + " " + script.string() + " " + dir.string() + " 2>&1";
  return std::system(cmd.c_str());
}

fs::path WorkDir(const std::string& name) {
  fs::path dir = fs::path(::testing::TempDir()) / ("refzarr_numcodecs_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

TEST(TranscodeNumcodecs, NumcodecsDecodesServedBlosc) {
  ASSERT_TRUE(fs::exists(kPython)) << "no " << kPython << " (make test installs it)";
  fs::path dir = WorkDir("served");
  const std::vector<std::string> dtypes = {"|u1", "<u2", ">u2", "<f4", "<i8", "<c16"};
  std::mt19937 rng(3);
  for (size_t k = 0; k < dtypes.size(); ++k) {
    Result<DType> d = DType::FromTypestr(dtypes[k]);
    ASSERT_TRUE(d.ok());
    Bytes raw(d->size * 5000);
    for (size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<std::byte>((i / 3) % 17 + rng() % 3);
    Result<std::string> served = EncodeBlosc(raw, d->size);
    ASSERT_TRUE(served.ok());
    WriteFile(dir / (std::to_string(k) + ".raw"), raw.data(), raw.size());
    WriteFile(dir / (std::to_string(k) + ".blosc"), served->data(), served->size());
    std::ofstream(dir / (std::to_string(k) + ".dtype")) << dtypes[k];
  }
  std::ofstream(dir / "config.json") << TranscodeCodecV2().dump();
  fs::path script = dir / "check.py";
  std::ofstream(script) << R"PY(
import json, pathlib, sys
import numpy as np
import numcodecs
d = pathlib.Path(sys.argv[1])
codec = numcodecs.get_codec(json.loads((d / "config.json").read_text()))
assert isinstance(codec, numcodecs.Blosc), codec
n = 0
for raw in sorted(d.glob("*.raw")):
    dtype = np.dtype((d / (raw.stem + ".dtype")).read_text())
    want = np.frombuffer(raw.read_bytes(), dtype=dtype)
    got = np.frombuffer(codec.decode((d / (raw.stem + ".blosc")).read_bytes()), dtype=dtype)
    assert got.tobytes() == want.tobytes(), raw
    n += 1
assert n == 6, n
print("numcodecs decoded", n, "served chunks")
)PY";
  EXPECT_EQ(RunPython(script, dir), 0);
  fs::remove_all(dir);
}

TEST(TranscodeNumcodecs, DecodeNativeReadsWhatNumcodecsEncodes) {
  ASSERT_TRUE(fs::exists(kPython)) << "no " << kPython << " (make test installs it)";
  fs::path dir = WorkDir("native");
  fs::path script = dir / "encode.py";
  std::ofstream(script) << R"PY(
import json, pathlib, sys
import numpy as np
import numcodecs
d = pathlib.Path(sys.argv[1])
rng = np.random.default_rng(5)
data = (np.arange(40 * 30, dtype="<u4").reshape(40, 30) // 7 + rng.integers(0, 3, (40, 30))).astype("<u4")
(d / "raw").write_bytes(data.tobytes())
cases = [
    ([], numcodecs.Zlib(level=4)),
    ([], numcodecs.GZip(level=6)),
    ([], numcodecs.Zstd(level=2)),
    ([], numcodecs.Blosc(cname="zstd", clevel=3, shuffle=numcodecs.Blosc.BITSHUFFLE)),
    ([], numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE)),
    ([], numcodecs.Blosc(cname="zlib", clevel=1, shuffle=numcodecs.Blosc.NOSHUFFLE)),
    ([numcodecs.Shuffle(elementsize=4)], numcodecs.Zlib(level=1)),
    ([numcodecs.Shuffle(elementsize=4)], None),
    ([], numcodecs.LZMA()),
]
index = []
for i, (filters, comp) in enumerate(cases):
    buf = data.tobytes()
    for f in filters:
        buf = bytes(f.encode(np.frombuffer(buf, dtype="<u4")))
    if comp is not None:
        buf = bytes(comp.encode(buf))
    (d / f"{i}.bin").write_bytes(buf)
    index.append({"filters": [f.get_config() for f in filters] or None,
                  "compressor": comp.get_config() if comp is not None else None})
(d / "index.json").write_text(json.dumps(index))
)PY";
  ASSERT_EQ(RunPython(script, dir), 0);
  Bytes raw = ReadFile(dir / "raw");
  std::ifstream index_file(dir / "index.json");
  nlohmann::json index = nlohmann::json::parse(index_file);
  ASSERT_EQ(index.size(), 9u);
  for (size_t i = 0; i < index.size(); ++i) {
    SCOPED_TRACE(index[i].dump());
    ArrayDesc a;
    a.shape = a.chunks = {40, 30};
    a.dtype = DType::Make('u', 4);
    a.encoding.filters = index[i]["filters"];
    a.encoding.compressor = index[i]["compressor"];
    Bytes stored = ReadFile(dir / (std::to_string(i) + ".bin"));
    Bytes out(a.ChunkBytes());
    const std::vector<uint64_t> at = {0, 0};
    Status s = DecodeNative(a, at, ChunkRef{}, stored, out);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_TRUE(out == raw);
  }
  fs::remove_all(dir);
}

// Python writes zlib streams (levels, window sizes, trailing bytes as TIFF writers leave them);
// refzarr re-frames each as gzip; gzip.decompress and numcodecs GZip give back zlib.decompress of
// the stored stream, and the member's payload is the stored deflate stream byte for byte.
TEST(TranscodeNumcodecs, PythonGunzipsReframedZlibStreams) {
  ASSERT_TRUE(fs::exists(kPython)) << "no " << kPython << " (make test installs it)";
  fs::path dir = WorkDir("reframe");
  fs::path encode = dir / "encode.py";
  std::ofstream(encode) << R"PY(
import json, pathlib, sys, zlib
import numpy as np
d = pathlib.Path(sys.argv[1])
rng = np.random.default_rng(7)
data = (np.arange(300000, dtype="<u2") // 5 + rng.integers(0, 9, 300000)).astype("<u2").tobytes()
cases = [(1, 15, b""), (6, 15, b""), (9, 15, b""), (6, 9, b""), (0, 15, b""), (6, 15, b"\0\0junk")]
index = []
for i, (level, wbits, tail) in enumerate(cases):
    c = zlib.compressobj(level, zlib.DEFLATED, wbits)
    stored = c.compress(data) + c.flush() + tail
    (d / f"{i}.zlib").write_bytes(stored)
    index.append(len(data))
(d / "index.json").write_text(json.dumps(index))
)PY";
  ASSERT_EQ(RunPython(encode, dir), 0);
  std::ifstream index_file(dir / "index.json");
  nlohmann::json index = nlohmann::json::parse(index_file);
  for (size_t i = 0; i < index.size(); ++i) {
    Bytes stored = ReadFile(dir / (std::to_string(i) + ".zlib"));
    Result<std::string> gz = ReframeZlibAsGzip(stored, index[i].get<uint64_t>());
    ASSERT_TRUE(gz.ok()) << i << ": " << gz.status().ToString();
    WriteFile(dir / (std::to_string(i) + ".gz"), gz->data(), gz->size());
  }
  fs::path check = dir / "check.py";
  std::ofstream(check) << R"PY(
import gzip, json, pathlib, sys, zlib
import numcodecs
d = pathlib.Path(sys.argv[1])
n = 0
for i, size in enumerate(json.loads((d / "index.json").read_text())):
    stored = (d / f"{i}.zlib").read_bytes()
    served = (d / f"{i}.gz").read_bytes()
    z = zlib.decompressobj()
    want = z.decompress(stored)
    assert len(want) == size, (i, len(want))
    deflate = stored[2:len(stored) - len(z.unused_data) - 4]
    assert served[10:-8] == deflate, f"{i}: the payload is not the stored deflate stream"
    assert gzip.decompress(served) == want, i
    assert bytes(numcodecs.GZip().decode(served)) == want, i
    n += 1
print("gzip and numcodecs decoded", n, "re-framed streams")
)PY";
  EXPECT_EQ(RunPython(check, dir), 0);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace refzarr
