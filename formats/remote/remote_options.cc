// RemoteOptionsFromEnvironment: apart from the client, so that the refzarr binary reads the
// options without linking libcurl (it loads the remote module when a remote URI is opened).
#include <cstdlib>
#include <sstream>
#include <string>

#include "formats/remote/remote.h"

namespace refzarr {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

bool Truthy(const std::string& v) { return !v.empty() && v != "0" && v != "false" && v != "no"; }

}  // namespace

RemoteOptions RemoteOptionsFromEnvironment() {
  RemoteOptions o;
  std::istringstream headers(Env("REFZARR_HTTP_HEADERS"));
  for (std::string line; std::getline(headers, line);) {
    if (!line.empty()) o.headers.push_back(line);
  }
  o.http.ca_file = Env("CURL_CA_BUNDLE");
  o.s3.access_key = Env("AWS_ACCESS_KEY_ID");
  o.s3.secret_key = Env("AWS_SECRET_ACCESS_KEY");
  o.s3.session_token = Env("AWS_SESSION_TOKEN");
  for (const char* name : {"AWS_REGION", "AWS_DEFAULT_REGION"}) {
    if (!Env(name).empty()) {
      o.s3.region = Env(name);
      break;
    }
  }
  for (const char* name : {"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"}) {
    if (!Env(name).empty()) {
      o.s3.endpoint = Env(name);
      break;
    }
  }
  o.s3.no_sign = Truthy(Env("AWS_NO_SIGN_REQUEST"));
  if (!Env("REFZARR_REMOTE_CACHE_MB").empty()) {
    o.cache_bytes = std::strtoull(Env("REFZARR_REMOTE_CACHE_MB").c_str(), nullptr, 10) << 20;
  }
  // The block size, in KiB: a power of two from 1 to 4096 (others keep the default).
  if (const uint64_t kb = std::strtoull(Env("REFZARR_REMOTE_BLOCK_KB").c_str(), nullptr, 10);
      kb >= 1 && kb <= 4096 && (kb & (kb - 1)) == 0) {
    o.block_bytes = kb << 10;
  }
  return o;
}

}  // namespace refzarr
