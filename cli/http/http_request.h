// Pure request helpers of the HTTP front end: URL path -> view key, Range header parsing, directory
// listing HTML, Status -> HTTP status. No libmicrohttpd here, so they are unit-tested directly.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "formats/core/status.h"
#include "store/zarr_view.h"

namespace refzarr::internal {

/// A request path turned into a key of the view.
struct RequestKey {
  std::string key;            ///< No leading or trailing '/'; "" is the root.
  bool trailing_slash = false;  ///< The path named a directory ("a/b/" or "/").
};

/// Percent-decodes the path of a request URL (the part before '?', starting with '/') and makes a
/// view key of it. Repeated slashes are merged (as nginx does). kInvalidArgument when the path does
/// not start with '/', has a bad %-escape, a NUL byte, or a "." / ".." segment: such a path can never
/// name a key, and refusing it keeps every request inside the view.
Result<RequestKey> KeyFromUrlPath(std::string_view path);

/// What a Range header asks of a value of `size` bytes.
struct RangeRequest {
  enum Kind {
    kWhole,          ///< No Range header, or one we ignore (malformed, multi-range): 200, all bytes.
    kPartial,        ///< One satisfiable range: 206 with `offset` and `length`.
    kUnsatisfiable,  ///< A well-formed range outside the value: 416.
  };
  Kind kind = kWhole;
  uint64_t offset = 0;  ///< First byte (kPartial).
  uint64_t length = 0;  ///< Bytes (kPartial), at least 1.
};

/// Parses an RFC 9110 Range header value ("bytes=0-99", "bytes=100-", "bytes=-100") against a value
/// of `size` bytes. Malformed headers and multi-range requests are ignored (served whole), as the RFC
/// allows; an absurd end ("bytes=0-99999999999999999999") is clamped to the value.
RangeRequest ParseRange(std::string_view header, uint64_t size);

/// An HTML page listing `entries` of the directory `key` with relative links (directories end in
/// '/'), and a link to the parent unless `key` is the root. Names are escaped. The concatenation
/// of RenderListingHead, RenderListingEntries (of each page, in order) and RenderListingTail.
std::string RenderDirectoryListing(std::string_view key, const std::vector<DirEntry>& entries);

/// The start of a listing page, up to the first entry (so a long listing can be streamed).
std::string RenderListingHead(std::string_view key);
/// The lines of `entries` in a listing page.
std::string RenderListingEntries(const std::vector<DirEntry>& entries);
/// The end of a listing page.
std::string RenderListingTail();

/// The first path segment of the browser pages' files (`/__refzarr__/main.js`). Zarr v3 reserves
/// node names starting with "__", so no Zarr client asks for a key under it (docs/frontends.md).
inline constexpr std::string_view kBrowserPrefix = "__refzarr__";

/// Whether an Accept header names text/html (with a q above 0), as browsers do when they open a
/// page; fetch(), curl, fsspec, GDAL and zarr clients send "*/*" or nothing, which is not.
bool AcceptsHtml(std::string_view accept);

/// The HTML page a browser gets for the directory `key`: it loads the bundled script and style
/// from kBrowserPrefix, which draw the folder's page or the image's viewer. `zarr_format` (2 or 3)
/// tells the script which metadata keys to read.
std::string RenderBrowserPage(std::string_view key, int zarr_format);

/// Percent-encodes a key segment for use in a URL path ('/' kept).
std::string EscapeUrlPath(std::string_view path);

/// The HTTP status for a failed view call: 400 for kInvalidArgument, 404 for kNotFound, 500 for
/// everything else, kStale included (a changed source stays broken until it is re-indexed, so a
/// retryable 503 would only make clients retry in vain).
unsigned HttpStatusFor(const Status& status);

}  // namespace refzarr::internal
