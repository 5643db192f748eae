#include "cli/http/http_request.h"

#include <algorithm>
#include <cctype>

#include "formats/core/source.h"

namespace refzarr::internal {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string EscapeHtml(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// Parses a run of decimal digits; false on anything else. Values beyond uint64 saturate, which turns
// an absurd range end into "up to the end" and an absurd start into "unsatisfiable".
bool ParseDecimal(std::string_view text, uint64_t& out) {
  if (text.empty()) return false;
  out = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    uint64_t digit = static_cast<uint64_t>(c - '0');
    if (out > (UINT64_MAX - digit) / 10) {
      out = UINT64_MAX;
    } else {
      out = out * 10 + digit;
    }
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

Result<RequestKey> KeyFromUrlPath(std::string_view path) {
  if (path.empty() || path.front() != '/') {
    return InvalidArgumentError("request path must start with '/'");
  }
  std::string decoded;
  decoded.reserve(path.size());
  for (size_t i = 0; i < path.size(); ++i) {
    char c = path[i];
    if (c == '%') {
      if (i + 2 >= path.size()) return InvalidArgumentError("bad %-escape in request path");
      int hi = HexValue(path[i + 1]);
      int lo = HexValue(path[i + 2]);
      if (hi < 0 || lo < 0) return InvalidArgumentError("bad %-escape in request path");
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (c == '\0') return InvalidArgumentError("NUL byte in request path");
    decoded += c;
  }
  RequestKey result;
  result.trailing_slash = decoded.back() == '/';
  std::string_view rest = decoded;
  while (!rest.empty()) {
    size_t slash = rest.find('/');
    std::string_view segment = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    if (segment.empty()) continue;
    if (segment == "." || segment == "..") {
      return InvalidArgumentError("'.' and '..' are not allowed in request paths");
    }
    if (!result.key.empty()) result.key += '/';
    result.key += segment;
  }
  if (result.key.empty()) result.trailing_slash = true;
  return result;
}

RangeRequest ParseRange(std::string_view header, uint64_t size) {
  RangeRequest whole;
  header = Trim(header);
  constexpr std::string_view kPrefix = "bytes=";
  if (header.size() < kPrefix.size()) return whole;
  for (size_t i = 0; i < kPrefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(header[i])) != kPrefix[i]) return whole;
  }
  std::string_view spec = Trim(header.substr(kPrefix.size()));
  if (spec.find(',') != std::string_view::npos) return whole;  // Multi-range: serve it all.
  size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return whole;
  std::string_view first = Trim(spec.substr(0, dash));
  std::string_view last = Trim(spec.substr(dash + 1));
  RangeRequest r;
  if (first.empty()) {  // Suffix range: the last N bytes.
    uint64_t suffix = 0;
    if (!ParseDecimal(last, suffix)) return whole;
    if (suffix == 0 || size == 0) {
      r.kind = RangeRequest::kUnsatisfiable;
      return r;
    }
    r.kind = RangeRequest::kPartial;
    r.length = std::min(suffix, size);
    r.offset = size - r.length;
    return r;
  }
  uint64_t start = 0;
  if (!ParseDecimal(first, start)) return whole;
  uint64_t end = UINT64_MAX;
  if (!last.empty()) {
    if (!ParseDecimal(last, end)) return whole;
    if (end < start) return whole;  // Syntactically invalid: ignored per RFC 9110 14.1.1.
  }
  if (start >= size) {
    r.kind = RangeRequest::kUnsatisfiable;
    return r;
  }
  r.kind = RangeRequest::kPartial;
  r.offset = start;
  r.length = std::min(end, size - 1) - start + 1;
  return r;
}

bool AcceptsHtml(std::string_view accept) {
  while (!accept.empty()) {
    size_t comma = accept.find(',');
    std::string_view range = accept.substr(0, comma);
    accept = comma == std::string_view::npos ? std::string_view() : accept.substr(comma + 1);
    size_t semicolon = range.find(';');
    std::string_view type = Trim(range.substr(0, semicolon));
    constexpr std::string_view kHtml = "text/html";
    if (type.size() != kHtml.size() ||
        !std::equal(type.begin(), type.end(), kHtml.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == b;
        })) {
      continue;
    }
    // "q=0" (or 0.0, 0.000) refuses the type; any other weight accepts it.
    bool refused = false;
    std::string_view params =
        semicolon == std::string_view::npos ? "" : range.substr(semicolon + 1);
    while (!params.empty()) {
      size_t next = params.find(';');
      std::string_view param = Trim(params.substr(0, next));
      params = next == std::string_view::npos ? std::string_view() : params.substr(next + 1);
      if (param.size() >= 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=') {
        std::string_view q = param.substr(2);
        refused = !q.empty() && q.find_first_not_of("0.") == std::string_view::npos;
      }
    }
    if (!refused) return true;
  }
  return false;
}

std::string RenderBrowserPage(std::string_view key, int zarr_format) {
  std::string prefix = "/" + std::string(kBrowserPrefix) + "/";
  std::string title = "refzarr: /" + EscapeHtml(key);
  // The empty icon keeps the browser from asking for /favicon.ico (a 404 in its console).
  return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
         "<meta name=\"refzarr-zarr-format\" content=\"" +
         std::to_string(zarr_format) + "\">\n<title>" + title +
         "</title>\n<link rel=\"icon\" href=\"data:,\">\n<link rel=\"stylesheet\" href=\"" +
         prefix + "style.css\">\n<script type=\"module\" src=\"" + prefix +
         "main.js\"></script>\n</head><body><noscript>This page needs JavaScript. Zarr "
         "clients read this folder's keys at the same URL; its listing is what they get "
         "without <code>Accept: text/html</code>.</noscript></body></html>\n";
}

std::string EscapeUrlPath(std::string_view path) { return PercentEncodePath(path); }

std::string RenderListingHead(std::string_view key) {
  std::string title = "Index of /" + EscapeHtml(key) + (key.empty() ? "" : "/");
  std::string html = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + title +
                     "</title></head>\n<body><h1>" + title + "</h1>\n<ul>\n";
  if (!key.empty()) html += "<li><a href=\"../\">../</a></li>\n";
  return html;
}

std::string RenderListingEntries(const std::vector<DirEntry>& entries) {
  std::string html;
  for (const DirEntry& entry : entries) {
    std::string name = entry.name + (entry.is_directory ? "/" : "");
    // "./" keeps names such as "a:b" from reading as a URL scheme.
    html += "<li><a href=\"./" + EscapeHtml(EscapeUrlPath(name)) + "\">" + EscapeHtml(name) + "</a>";
    if (entry.size) html += " " + std::to_string(*entry.size) + " bytes";
    html += "</li>\n";
  }
  return html;
}

std::string RenderListingTail() { return "</ul>\n</body></html>\n"; }

std::string RenderDirectoryListing(std::string_view key, const std::vector<DirEntry>& entries) {
  return RenderListingHead(key) + RenderListingEntries(entries) + RenderListingTail();
}

unsigned HttpStatusFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kNotFound: return 404;
    default: return 500;
  }
}

}  // namespace refzarr::internal
