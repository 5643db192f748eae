// Fuzz target: the kerchunk importer (store/kerchunk_import.h), the parser of reference files
// other tools wrote, and the gate that keeps their references under the allowed roots. Input: the
// reference JSON. Promise checked on every input it accepts: each source it registered lies under
// the root (file:///fuzz/root/...) or the allowed URL prefix, so an imported file can never make
// the server read elsewhere. Seeds: kerchunk files refzarr export and tifffile write, and the
// hostile documents of e2e.kerchunk_import (tests/fuzz/kerchunk_import/).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "formats/core/recording_sink.h"
#include "store/kerchunk_import.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace refzarr;
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  ImportPolicy policy;
  policy.roots = {"/fuzz/root"};
  policy.url_prefixes = {"https://example.org/data/"};
  policy.base = "/fuzz/root";
  const SourceSizer size_of = [](const std::string&) -> Result<uint64_t> { return 1u << 20; };
  RecordingSink sink(1u << 16);
  if (!ParseKerchunk(json, policy, size_of, sink).ok()) return 0;
  if (!sink.Finish().ok()) return 0;
  for (const std::string& uri : sink.result().companions) {
    const bool local = uri.starts_with("file:///fuzz/root/");
    const bool remote = uri.starts_with("https://example.org/data/");
    FUZZ_CHECK(local || remote, "every imported source lies under the root or the prefix");
    FUZZ_CHECK(uri.find("/../") == std::string::npos && !uri.ends_with("/.."),
               "no dot segment in an imported source");
  }
  return 0;
}
