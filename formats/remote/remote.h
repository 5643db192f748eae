// Remote sources: http://, https:// and s3:// URIs read with ranged requests through libcurl
// (http_client.h), behind one bounded block cache, every read conditional on the generation the
// source had when it was opened, so a replaced object is never served.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "formats/core/source.h"
#include "formats/remote/http_client.h"

namespace refzarr {

/// How s3:// URIs are reached.
struct S3Options {
  /// Where requests go: "https://s3.REGION.amazonaws.com" when empty (virtual-hosted style,
  /// https://BUCKET.s3.REGION.amazonaws.com/KEY); any other endpoint (MinIO, Ceph, a local test
  /// store) is addressed path-style: ENDPOINT/BUCKET/KEY.
  std::string endpoint;
  std::string region = "us-east-1";
  std::string access_key, secret_key, session_token;
  /// Send requests unsigned (public buckets).
  bool no_sign = false;
  /// Keys asked for per ListObjectsV2 page (max-keys; S3 gives at most 1,000).
  int list_page_keys = 1000;
};

struct RemoteOptions {
  HttpClientOptions http;
  /// Extra header lines ("Name: value") sent to http(s):// servers (not to S3).
  std::vector<std::string> headers;
  S3Options s3;
  /// Bytes of remote data kept in memory, over every remote source (aligned blocks).
  uint64_t cache_bytes = 256ull << 20;
  /// Bytes of one cached block: the unit of reads from the origin.
  uint64_t block_bytes = 64 << 10;
  /// A miss right where the source's previous fetch ended (reading on: headers, IFDs written
  /// together, adjacent chunks) also fetches this many bytes after it in the same request,
  /// doubling with each such miss up to 16 times this; a miss elsewhere fetches only its blocks.
  uint64_t readahead_bytes = 256 << 10;
};

/// The options the environment gives, as the AWS tools and curl read it:
/// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION / AWS_DEFAULT_REGION,
/// AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, AWS_NO_SIGN_REQUEST (any value but "" or "false"),
/// CURL_CA_BUNDLE; and refzarr's own REFZARR_HTTP_HEADERS (header lines, one per line) and
/// REFZARR_REMOTE_CACHE_MB and REFZARR_REMOTE_BLOCK_KB (a power of two, 1-4096). The refzarr command's --header, --s3-endpoint and --no-sign-request
/// set these, so that its scan workers see them too.
RemoteOptions RemoteOptionsFromEnvironment();

/// The openers of http://, https:// and s3:// (in this order), sharing one client and one cache.
std::vector<std::unique_ptr<SourceOpener>> MakeRemoteOpeners(const RemoteOptions& options);


}  // namespace refzarr
