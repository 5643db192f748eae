// Fuzz target: the HTTP front end's request parsing (cli/http/http_request.h): the URL path made
// into a view key, the Range header, the Accept header, and the listing and browser pages built
// from what the path gave. Input: u8 selector, then the text. Selector bit 0: path; bit 1: Range
// (against a value of 0, 1, 1000 and 2^40 bytes); bit 2: Accept. Seeds: tests/fuzz/http_request/.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cli/http/http_request.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace refzarr;
  using namespace refzarr::internal;
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  if (mode & 1) {
    Result<RequestKey> key = KeyFromUrlPath(text);
    if (key.ok()) {
      // What a key may be: never a "." or ".." segment, no NUL, no leading or trailing '/'.
      const std::string& k = key->key;
      FUZZ_CHECK(k.empty() || (k.front() != '/' && k.back() != '/'), "no leading or trailing '/'");
      FUZZ_CHECK(k.find('\0') == std::string::npos, "no NUL in a key");
      const std::string padded = "/" + k + "/";
      FUZZ_CHECK(padded.find("/../") == std::string::npos && padded.find("/./") == std::string::npos,
                 "no '.' or '..' segment in a key");
      FUZZ_CHECK(padded.find("//") == std::string::npos || k.empty(), "no empty segment in a key");
      (void)EscapeUrlPath(k);
      (void)RenderListingHead(k);
      (void)RenderBrowserPage(k, 2);
    }
  }
  if (mode & 2) {
    for (uint64_t value_size : {uint64_t{0}, uint64_t{1}, uint64_t{1000}, uint64_t{1} << 40}) {
      const RangeRequest r = ParseRange(text, value_size);
      if (r.kind == RangeRequest::kPartial) {
        // A partial answer is at least one byte and inside the value.
        FUZZ_CHECK(r.length > 0 && r.offset < value_size && r.length <= value_size - r.offset,
                   "a partial answer is at least one byte, inside the value");
      }
    }
  }
  if (mode & 4) (void)AcceptsHtml(text);
  return 0;
}
