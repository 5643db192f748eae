#include "formats/remote/remote.h"

#include <xxhash.h>

#include <pugixml.hpp>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "formats/core/chunk_cache.h"

namespace refzarr {
namespace {

// What every source of one opener shares: the client (its connections) and the block cache.
struct Shared {
  std::unique_ptr<HttpClient> client;
  std::unique_ptr<ChunkCache> cache;
  RemoteOptions options;
};

// How one kind of remote URI becomes requests.
class Endpoint {
 public:
  virtual ~Endpoint() = default;
  /// A request for the object `uri` (method, URL, headers, signing); kInvalidArgument for a URI
  /// of the scheme that names no object.
  virtual Result<HttpRequest> Request(std::string_view uri) const = 0;
  /// What to add to messages about a refused request (403): where credentials come from.
  virtual std::string AccessHint() const = 0;
};

// Checks what every remote URI must not hold: credentials (they would be stored in the index).
Status CheckNoUserInfo(std::string_view uri) {
  const size_t start = uri.find("://");
  if (start == std::string_view::npos) return OkStatus();
  const std::string_view authority = uri.substr(start + 3, uri.find('/', start + 3) - (start + 3));
  if (authority.find('@') != std::string_view::npos) {
    return InvalidArgumentError(
        std::string(uri.substr(0, start + 3)) + "...: a URI must not hold credentials (they would "
        "be stored in the index); give them with --header, ~/.netrc or the AWS_* environment");
  }
  return OkStatus();
}

class HttpEndpoint final : public Endpoint {
 public:
  explicit HttpEndpoint(std::vector<std::string> headers) : headers_(std::move(headers)) {}
  Result<HttpRequest> Request(std::string_view uri) const override {
    RETURN_IF_ERROR(CheckNoUserInfo(uri));
    HttpRequest r;
    r.url = std::string(uri);
    r.display = std::string(uri);
    r.headers = headers_;
    r.netrc = true;
    return r;
  }
  std::string AccessHint() const override {
    return "give credentials with --header 'Authorization: ...' or in ~/.netrc";
  }

 private:
  std::vector<std::string> headers_;
};

struct S3Location {
  std::string bucket, key;  // key decoded
};

Result<S3Location> ParseS3(std::string_view uri) {
  constexpr std::string_view kPrefix = "s3://";
  if (!uri.starts_with(kPrefix)) return InvalidArgumentError(std::string(uri) + ": not an s3:// URI");
  RETURN_IF_ERROR(CheckNoUserInfo(uri));
  std::string_view rest = uri.substr(kPrefix.size());
  const size_t slash = rest.find('/');
  S3Location loc;
  loc.bucket = std::string(rest.substr(0, slash));
  if (loc.bucket.empty()) return InvalidArgumentError(std::string(uri) + ": no bucket");
  if (slash != std::string_view::npos) loc.key = PercentDecode(rest.substr(slash + 1));
  return loc;
}

// A query value as SigV4 canonicalises it: every byte but the unreserved ones as %XX.
std::string QueryEncode(std::string_view s) {
  std::string out = PercentEncodePath(s);
  std::string enc;
  for (char c : out) {
    if (c == '/') {
      enc += "%2F";
    } else {
      enc += c;
    }
  }
  return enc;
}

class S3Endpoint final : public Endpoint {
 public:
  explicit S3Endpoint(S3Options options) : o_(std::move(options)) {
    while (o_.endpoint.ends_with('/')) o_.endpoint.pop_back();
  }

  Result<HttpRequest> Request(std::string_view uri) const override {
    ASSIGN_OR_RETURN(S3Location loc, ParseS3(uri));
    if (loc.key.empty() || loc.key.ends_with('/')) {
      return InvalidArgumentError(std::string(uri) + ": names a prefix, not an object");
    }
    return Signed(loc.bucket, "/" + PercentEncodePath(loc.key), "", std::string(uri));
  }

  // A ListObjectsV2 request of one page; `query` in canonical order (sorted, encoded).
  HttpRequest ListRequest(const std::string& bucket, const std::string& query,
                          const std::string& display) const {
    return Signed(bucket, "/", query, display);
  }

  int list_page_keys() const { return o_.list_page_keys; }

  std::string AccessHint() const override {
    return o_.no_sign ? "the bucket is not public: give credentials (AWS_ACCESS_KEY_ID, "
                        "AWS_SECRET_ACCESS_KEY) instead of --no-sign-request"
                      : "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), "
                        "or use --no-sign-request for a public bucket";
  }

 private:
  HttpRequest Signed(const std::string& bucket, const std::string& path, const std::string& query,
                     std::string display) const {
    HttpRequest r;
    if (o_.endpoint.empty()) {
      // AWS itself: virtual-hosted style.
      r.url = "https://" + bucket + ".s3." + o_.region + ".amazonaws.com" + path;
    } else {
      r.url = o_.endpoint + "/" + bucket + (path == "/" ? std::string() : path);
    }
    if (!query.empty()) r.url += "?" + query;
    r.display = std::move(display);
    if (!o_.no_sign) {
      r.aws_sigv4 = "aws:amz:" + o_.region + ":s3";
      r.userpwd = o_.access_key + ":" + o_.secret_key;
      r.headers.push_back("x-amz-content-sha256: UNSIGNED-PAYLOAD");
      if (!o_.session_token.empty()) r.headers.push_back("x-amz-security-token: " + o_.session_token);
    }
    return r;
  }

  S3Options o_;
};

// The version of an object an answer describes: its ETag, else its Last-Modified.
struct Version {
  std::string etag, last_modified;
  Generation generation() const {
    if (!etag.empty()) return {"etag " + etag};
    if (!last_modified.empty()) return {"last-modified " + last_modified};
    return {};
  }
};

Version VersionOf(const HttpResponse& r) { return {r.Header("etag"), r.Header("last-modified")}; }

// Why `response` to a request of `uri` is not the expected answer.
Status Unexpected(const HttpResponse& response, std::string_view uri, const Endpoint& endpoint) {
  const std::string what = DescribeHttpStatus(response);
  const std::string u(uri);
  if (response.status == 404 || response.status == 410) return NotFoundError(u + ": not found (" + what + ")");
  if (response.status == 401 || response.status == 403) {
    return IoError(u + ": access denied (" + what + "); " + endpoint.AccessHint());
  }
  return IoError(u + ": " + what);
}

// The size and version of `uri` now, from a request of its first byte (which servers that refuse
// HEAD, presigned URLs among them, answer too).
struct Probe {
  SourceStat stat;
  Version version;
};

Result<Probe> ProbeObject(std::string_view uri, const Endpoint& endpoint, HttpClient& client) {
  ASSIGN_OR_RETURN(HttpRequest r, endpoint.Request(uri));
  std::byte first[1];
  r.range = ByteRange{0, 1};
  r.into = first;
  ASSIGN_OR_RETURN(HttpResponse resp, client.Perform(r));
  Probe p;
  p.version = VersionOf(resp);
  if (resp.status == 206) {
    const std::string cr = resp.Header("content-range");
    const size_t slash = cr.rfind('/');
    if (slash == std::string::npos || cr.substr(slash + 1) == "*") {
      return IoError(std::string(uri) + ": the server does not say the size (Content-Range '" + cr + "')");
    }
    p.stat.size = std::strtoull(cr.c_str() + slash + 1, nullptr, 10);
  } else if (resp.status == 200) {
    const std::string cl = resp.Header("content-length");
    if (cl.empty()) return IoError(std::string(uri) + ": the server does not say the size");
    if (resp.Header("accept-ranges") == "none") {
      return UnsupportedError(std::string(uri) + ": the server does not serve byte ranges");
    }
    p.stat.size = std::strtoull(cl.c_str(), nullptr, 10);
  } else if (resp.status == 416) {
    p.stat.size = 0;  // an empty object has no first byte
  } else {
    return Unexpected(resp, uri, endpoint);
  }
  p.stat.generation = p.version.generation();
  return p;
}

uint64_t SourceKey(std::string_view uri, const Generation& g) {
  XXH3_state_t* s = XXH3_createState();
  XXH3_64bits_reset(s);
  XXH3_64bits_update(s, uri.data(), uri.size());
  XXH3_64bits_update(s, "\0", 1);
  XXH3_64bits_update(s, g.value.data(), g.value.size());
  const uint64_t h = XXH3_64bits_digest(s);
  XXH3_freeState(s);
  return h;
}

// The bytes of one remote object as it was when opened: every read asks for that version
// (If-Match on its ETag, else If-Unmodified-Since) and checks the answer's, so bytes of a
// replaced object are never returned. Reads go through the shared block cache: whole aligned
// blocks, the missing ones of a read fetched in one request.
class RemoteSource final : public ByteSource {
 public:
  RemoteSource(std::string uri, Probe probe, std::shared_ptr<Shared> shared,
               std::shared_ptr<const Endpoint> endpoint)
      : uri_(std::move(uri)), probe_(std::move(probe)), shared_(std::move(shared)),
        endpoint_(std::move(endpoint)), key_(SourceKey(uri_, probe_.stat.generation)) {}

  Result<SourceStat> Stat() override { return probe_.stat; }
  bool ValidatesReads() const override {
    return !probe_.version.etag.empty() || !probe_.version.last_modified.empty();
  }
  std::string Describe() const override { return uri_; }

  Status ReadInto(ByteRange range, std::span<std::byte> out) override {
    const uint64_t size = probe_.stat.size;
    if (range.offset > size || range.length > size - range.offset) {
      return CorruptError(uri_ + ": truncated: wanted " + std::to_string(range.length) +
                          " bytes at " + std::to_string(range.offset) + ", the object has " +
                          std::to_string(size));
    }
    if (range.length == 0) return OkStatus();
    const uint64_t block = shared_->options.block_bytes;
    const uint64_t first = range.offset / block, last = (range.offset + range.length - 1) / block;
    for (uint64_t b = first; b <= last; ++b) {
      ChunkCache::Value value = shared_->cache->Lookup(Key(b));
      if (!value) {
        ASSIGN_OR_RETURN(value, shared_->cache->GetOrLoad(Key(b), [&]() -> Result<std::string> {
          return FetchRun(b, std::max(last, std::min(b + Ahead(b), LastBlock())));
        }));
      }
      const uint64_t block_start = b * block;
      const uint64_t from = std::max(range.offset, block_start);
      const uint64_t to = std::min(range.offset + range.length, block_start + value->size());
      if (to <= from || from - block_start > value->size()) {
        return InternalError(uri_ + ": block cache holds a short block " + std::to_string(b));
      }
      std::memcpy(out.data() + (from - range.offset), value->data() + (from - block_start), to - from);
    }
    return OkStatus();
  }

  // The missing blocks of `ranges`, in runs of adjacent blocks (up to 4 MiB each), fetched
  // concurrently on the client's connections, at most a quarter of the cache in one call.
  // Failed runs are left for the reads that want them.
  void Prefetch(std::span<const ByteRange> ranges) override {
    const uint64_t block = shared_->options.block_bytes;
    const uint64_t size = probe_.stat.size;
    const uint64_t budget = std::max<uint64_t>(1, shared_->options.cache_bytes / 4 / block);
    std::vector<uint64_t> blocks;
    for (const ByteRange& r : ranges) {
      if (r.length == 0 || r.offset >= size) continue;
      const uint64_t last = (std::min(size, r.offset + r.length) - 1) / block;
      for (uint64_t b = r.offset / block; b <= last && blocks.size() < budget; ++b) {
        if (!shared_->cache->Lookup(Key(b))) blocks.push_back(b);
      }
    }
    std::sort(blocks.begin(), blocks.end());
    blocks.erase(std::unique(blocks.begin(), blocks.end()), blocks.end());
    if (blocks.empty()) return;
    struct Run {
      uint64_t first = 0;
      std::string bytes;
    };
    const uint64_t run_blocks = std::max<uint64_t>(1, (4ull << 20) / block);
    std::vector<Run> runs;
    for (size_t i = 0; i < blocks.size();) {
      size_t j = i + 1;
      while (j < blocks.size() && blocks[j] == blocks[j - 1] + 1 && j - i < run_blocks) ++j;
      const uint64_t offset = blocks[i] * block;
      runs.push_back({blocks[i], std::string(std::min(size, (blocks[j - 1] + 1) * block) - offset, '\0')});
      i = j;
    }
    std::vector<HttpRequest> requests;
    std::vector<ByteRange> asked;
    for (Run& run : runs) {
      const ByteRange range{run.first * block, run.bytes.size()};
      auto r = RangeRequest(range, std::as_writable_bytes(std::span(run.bytes)));
      if (!r.ok()) return;
      requests.push_back(std::move(*r));
      asked.push_back(range);
    }
    std::vector<Result<HttpResponse>> answers = shared_->client->PerformAll(requests);
    for (size_t k = 0; k < runs.size() && k < answers.size(); ++k) {
      if (!answers[k].ok()) continue;
      if (!CheckAnswer(*answers[k], asked[k], std::as_writable_bytes(std::span(runs[k].bytes))).ok()) {
        continue;
      }
      Keep(runs[k].first, runs[k].bytes);
    }
  }

 private:
  ChunkCacheKey Key(uint64_t block) const { return {key_, block, shared_->options.block_bytes}; }
  uint64_t LastBlock() const {
    return probe_.stat.size == 0 ? 0 : (probe_.stat.size - 1) / shared_->options.block_bytes;
  }

  // The blocks to fetch after a missing block `b`, beyond what the read needs: none for a miss
  // away from the previous fetch (a random read: a tile, an IFD between megabytes of tiles, a
  // B-tree node); after a miss right where the previous fetch ended (reading on through headers,
  // IFDs written together, adjacent chunks), readahead_bytes, doubling with each such miss up to
  // 16 times that. The file's first block starts a sequence.
  uint64_t Ahead(uint64_t b) {
    const uint64_t block = shared_->options.block_bytes;
    const uint64_t initial = shared_->options.readahead_bytes / block;
    std::lock_guard lock(ahead_mu_);
    if (b != next_block_) {
      ahead_blocks_ = 0;
      return 0;
    }
    ahead_blocks_ = ahead_blocks_ == 0 ? initial : std::min(ahead_blocks_ * 2, initial * 16);
    return ahead_blocks_;
  }

  // Fetches blocks [b, until] (stopping before the first one already cached after b) in one
  // request, caches all but `b`, and returns `b`.
  Result<std::string> FetchRun(uint64_t b, uint64_t until) {
    const uint64_t block = shared_->options.block_bytes;
    uint64_t end = b;
    while (end < until && !shared_->cache->Lookup(Key(end + 1))) ++end;
    const uint64_t offset = b * block;
    const uint64_t length = std::min(probe_.stat.size, (end + 1) * block) - offset;
    std::string bytes(length, '\0');
    const ByteRange range{offset, length};
    const auto into = std::as_writable_bytes(std::span(bytes));
    ASSIGN_OR_RETURN(HttpRequest r, RangeRequest(range, into));
    ASSIGN_OR_RETURN(HttpResponse resp, shared_->client->Perform(r));
    RETURN_IF_ERROR(CheckAnswer(resp, range, into));
    {
      std::lock_guard lock(ahead_mu_);
      next_block_ = end + 1;
    }
    Keep(b + 1, std::string_view(bytes).substr(std::min<uint64_t>(block, length)));
    bytes.resize(std::min<uint64_t>(block, length));
    return bytes;
  }

  // Caches `bytes`, the blocks from `first` on (the last one may be short: the object's end).
  void Keep(uint64_t first, std::string_view bytes) {
    const uint64_t block = shared_->options.block_bytes;
    for (uint64_t at = 0, k = first; at < bytes.size(); at += block, ++k) {
      std::string part(bytes.substr(at, block));
      (void)shared_->cache->GetOrLoad(Key(k), [&]() -> Result<std::string> { return std::move(part); });
    }
  }

  // A request for `range` of the version opened, its body into `out`.
  Result<HttpRequest> RangeRequest(ByteRange range, std::span<std::byte> out) const {
    ASSIGN_OR_RETURN(HttpRequest r, endpoint_->Request(uri_));
    r.range = range;
    r.into = out;
    const Version& v = probe_.version;
    if (!v.etag.empty() && !v.etag.starts_with("W/")) {
      r.headers.push_back("If-Match: " + v.etag);
    } else if (!v.last_modified.empty()) {
      r.headers.push_back("If-Unmodified-Since: " + v.last_modified);
    }
    return r;
  }

  // Whether `resp` brought `range` of the version opened (into `out`).
  Status CheckAnswer(const HttpResponse& resp, ByteRange range, std::span<std::byte> out) const {
    const Version& v = probe_.version;
    if (resp.status == 412) {
      return StaleError(uri_ + ": changed since it was opened (HTTP 412: its version is no longer " +
                        v.generation().value + ")");
    }
    if (resp.status == 404 || resp.status == 410) {
      return StaleError(uri_ + ": gone since it was opened (" + DescribeHttpStatus(resp) + ")");
    }
    if (resp.status != 206 && resp.status != 200) return Unexpected(resp, uri_, *endpoint_);
    if (resp.body_bytes < out.size()) {
      return StaleError(uri_ + ": changed since it was opened (it ends before byte " +
                        std::to_string(range.offset + range.length) + ")");
    }
    // A server that ignores the precondition still says which version it sent.
    const Version now = VersionOf(resp);
    if ((!v.etag.empty() && !now.etag.empty() && now.etag != v.etag) ||
        (v.etag.empty() && !v.last_modified.empty() && !now.last_modified.empty() &&
         now.last_modified != v.last_modified)) {
      return StaleError(uri_ + ": changed since it was opened (now " + now.generation().value +
                        ", was " + v.generation().value + ")");
    }
    return OkStatus();
  }

  std::string uri_;
  Probe probe_;
  std::shared_ptr<Shared> shared_;
  std::shared_ptr<const Endpoint> endpoint_;
  uint64_t key_;
  std::mutex ahead_mu_;
  uint64_t next_block_ = 0;    // the block after the last fetch: a miss there reads on
  uint64_t ahead_blocks_ = 0;  // the readahead of the current sequence, in blocks
};

class RemoteOpener : public SourceOpener {
 public:
  RemoteOpener(std::string scheme, std::shared_ptr<Shared> shared,
               std::shared_ptr<const Endpoint> endpoint)
      : scheme_(std::move(scheme)), shared_(std::move(shared)), endpoint_(std::move(endpoint)) {}

  std::string_view Scheme() const override { return scheme_; }
  bool ValidatesReads() const override { return true; }

  Result<SourceStat> Stat(std::string_view uri) const override {
    ASSIGN_OR_RETURN(Probe p, ProbeObject(uri, *endpoint_, *shared_->client));
    return p.stat;
  }

  Result<std::unique_ptr<ByteSource>> Open(std::string_view uri) const override {
    ASSIGN_OR_RETURN(Probe p, ProbeObject(uri, *endpoint_, *shared_->client));
    return std::unique_ptr<ByteSource>(
        std::make_unique<RemoteSource>(std::string(uri), std::move(p), shared_, endpoint_));
  }

 protected:
  std::string scheme_;
  std::shared_ptr<Shared> shared_;
  std::shared_ptr<const Endpoint> endpoint_;
};

class S3Opener final : public RemoteOpener {
 public:
  S3Opener(std::shared_ptr<Shared> shared, std::shared_ptr<const S3Endpoint> endpoint)
      : RemoteOpener("s3", std::move(shared), endpoint), s3_(std::move(endpoint)) {}

  // ListObjectsV2, a page (up to 1,000 keys) at a time. Keys ending in '/' (folder markers) are
  // not objects.
  Status List(std::string_view prefix,
              const std::function<Status(const ListedSource&)>& each) const override {
    ASSIGN_OR_RETURN(S3Location loc, ParseS3(prefix));
    std::string token;
    while (true) {
      // In SigV4's canonical order: parameters sorted by name, values encoded.
      std::string query;
      if (!token.empty()) query += "continuation-token=" + QueryEncode(token) + "&";
      query += "list-type=2&max-keys=" + std::to_string(s3_->list_page_keys()) +
               "&prefix=" + QueryEncode(loc.key);
      HttpRequest r = s3_->ListRequest(loc.bucket, query, std::string(prefix));
      ASSIGN_OR_RETURN(HttpResponse resp, shared_->client->Perform(r));
      if (resp.status != 200) {
        if (resp.status == 404) {
          return NotFoundError(std::string(prefix) + ": no such bucket (" + DescribeHttpStatus(resp) + ")");
        }
        return Unexpected(resp, prefix, *s3_);
      }
      pugi::xml_document doc;
      if (!doc.load_buffer(resp.body.data(), resp.body.size())) {
        return IoError(std::string(prefix) + ": the listing is not XML");
      }
      const pugi::xml_node result = doc.child("ListBucketResult");
      if (!result) return IoError(std::string(prefix) + ": the listing has no ListBucketResult");
      for (pugi::xml_node c = result.child("Contents"); c; c = c.next_sibling("Contents")) {
        const std::string key = c.child_value("Key");
        if (key.empty() || key.ends_with('/')) continue;
        ListedSource s;
        s.uri = "s3://" + loc.bucket + "/" + PercentEncodePath(key);
        s.stat.size = std::strtoull(c.child_value("Size"), nullptr, 10);
        const std::string etag = c.child_value("ETag");
        if (!etag.empty()) s.stat.generation = {"etag " + etag};
        RETURN_IF_ERROR(each(s));
      }
      if (std::string(result.child_value("IsTruncated")) != "true") return OkStatus();
      token = result.child_value("NextContinuationToken");
      if (token.empty()) {
        return IoError(std::string(prefix) + ": the listing is truncated but gives no continuation token");
      }
    }
  }

 private:
  std::shared_ptr<const S3Endpoint> s3_;
};

}  // namespace

std::vector<std::unique_ptr<SourceOpener>> MakeRemoteOpeners(const RemoteOptions& options) {
  auto shared = std::make_shared<Shared>();
  shared->options = options;
  shared->options.block_bytes = std::max<uint64_t>(options.block_bytes, 4096);
  shared->client = MakeHttpClient(options.http);
  shared->cache = MakeChunkCache(options.cache_bytes);
  auto http = std::make_shared<const HttpEndpoint>(options.headers);
  std::vector<std::unique_ptr<SourceOpener>> out;
  out.push_back(std::make_unique<RemoteOpener>("http", shared, http));
  out.push_back(std::make_unique<RemoteOpener>("https", shared, http));
  out.push_back(std::make_unique<S3Opener>(shared, std::make_shared<const S3Endpoint>(options.s3)));
  return out;
}

}  // namespace refzarr
