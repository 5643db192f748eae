// The HTTP front end against an in-memory view, through real HTTP requests (libcurl) on loopback.
#include <arpa/inet.h>
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/access/access_log.h"
#include "cli/access/access_policy.h"
#include "cli/access/rate_limiter.h"
#include "cli/http/http_request.h"
#include "cli/http/http_server.h"
#include "fake_zarr_view.h"

namespace refzarr {
namespace {

using internal::AcceptsHtml;
using internal::KeyFromUrlPath;
using internal::ParseRange;
using internal::RangeRequest;
using testing::FakeZarrView;

// ---------------------------------------------------------------------------------------------
// Pure helpers.

TEST(HttpRequest, KeyFromUrlPathDecodesAndMergesSlashes) {
  auto key = KeyFromUrlPath("/a%20b//c/%2Ezarray");
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(key->key, "a b/c/.zarray");
  EXPECT_FALSE(key->trailing_slash);
  auto root = KeyFromUrlPath("/");
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->key, "");
  EXPECT_TRUE(root->trailing_slash);
  auto dir = KeyFromUrlPath("/img/0/");
  ASSERT_TRUE(dir.ok());
  EXPECT_EQ(dir->key, "img/0");
  EXPECT_TRUE(dir->trailing_slash);
}

TEST(HttpRequest, KeyFromUrlPathRefusesTraversalNulAndBadEscapes) {
  for (const char* path : {"/../etc/passwd", "/a/../../b", "/a/%2e%2e/b", "/a/%2E%2E", "/./a",
                           "/a%00b", "/a%0", "/a%zz", "relative", ""}) {
    EXPECT_FALSE(KeyFromUrlPath(path).ok()) << path;
  }
  EXPECT_TRUE(KeyFromUrlPath("/a/..b/c..").ok()) << "dots inside a name are fine";
}

TEST(HttpRequest, ParseRangeHandlesClosedOpenAndSuffixRanges) {
  RangeRequest r = ParseRange("bytes=10-19", 100);
  EXPECT_EQ(r.kind, RangeRequest::kPartial);
  EXPECT_EQ(r.offset, 10u);
  EXPECT_EQ(r.length, 10u);
  r = ParseRange("bytes=90-", 100);
  EXPECT_EQ(r.kind, RangeRequest::kPartial);
  EXPECT_EQ(r.offset, 90u);
  EXPECT_EQ(r.length, 10u);
  r = ParseRange("bytes=-30", 100);
  EXPECT_EQ(r.kind, RangeRequest::kPartial);
  EXPECT_EQ(r.offset, 70u);
  EXPECT_EQ(r.length, 30u);
  r = ParseRange("bytes=-300", 100);  // Longer suffix than the value: all of it.
  EXPECT_EQ(r.kind, RangeRequest::kPartial);
  EXPECT_EQ(r.offset, 0u);
  EXPECT_EQ(r.length, 100u);
  r = ParseRange("bytes=50-99999999999999999999999", 100);  // Absurd end is clamped.
  EXPECT_EQ(r.kind, RangeRequest::kPartial);
  EXPECT_EQ(r.length, 50u);
}

TEST(HttpRequest, ParseRangeRejectsUnsatisfiableAndIgnoresMalformed) {
  EXPECT_EQ(ParseRange("bytes=100-", 100).kind, RangeRequest::kUnsatisfiable);
  EXPECT_EQ(ParseRange("bytes=99999999999999999999999-", 100).kind, RangeRequest::kUnsatisfiable);
  EXPECT_EQ(ParseRange("bytes=-0", 100).kind, RangeRequest::kUnsatisfiable);
  EXPECT_EQ(ParseRange("bytes=0-", 0).kind, RangeRequest::kUnsatisfiable);
  for (const char* h : {"bytes=5-2", "items=0-1", "bytes=a-b", "bytes=1-2,4-5", "bytes=", "bytes"}) {
    EXPECT_EQ(ParseRange(h, 100).kind, RangeRequest::kWhole) << h;
  }
}

TEST(HttpRequest, DirectoryListingEscapesNames) {
  std::string html = internal::RenderDirectoryListing(
      "a", {{"<b>", false}, {"sub dir", true}, {".zattrs", false}});
  EXPECT_NE(html.find("href=\"./%3Cb%3E\""), std::string::npos) << html;
  EXPECT_NE(html.find("&lt;b&gt;"), std::string::npos);
  EXPECT_EQ(html.find("<b>"), std::string::npos);
  EXPECT_NE(html.find("href=\"./sub%20dir/\""), std::string::npos);
  EXPECT_NE(html.find("href=\"../\""), std::string::npos);
}

TEST(HttpRequest, DirectoryListingShowsKnownSizes) {
  std::string html = internal::RenderDirectoryListing(
      "a", {{"0", false, 131072}, {".zarray", false, std::nullopt}, {"1", true, std::nullopt}});
  EXPECT_NE(html.find("\">0</a> 131072 bytes</li>"), std::string::npos) << html;
  EXPECT_NE(html.find("\">.zarray</a></li>"), std::string::npos) << html;
  EXPECT_NE(html.find("\">1/</a></li>"), std::string::npos) << html;
}

TEST(HttpRequest, AcceptsHtmlOnlyWhenAHeaderNamesTextHtml) {
  // Chromium's and Firefox's navigation headers.
  EXPECT_TRUE(
      AcceptsHtml("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
                  "image/webp,image/apng,*/*;q=0.8"));
  EXPECT_TRUE(AcceptsHtml("TEXT/HTML;q=0.5"));
  EXPECT_TRUE(AcceptsHtml("application/json, text/html ; level=1"));
  // fetch(), curl, fsspec/aiohttp, requests, GDAL: no page.
  EXPECT_FALSE(AcceptsHtml("*/*"));
  EXPECT_FALSE(AcceptsHtml(""));
  EXPECT_FALSE(AcceptsHtml("text/*"));
  EXPECT_FALSE(AcceptsHtml("text/html;q=0"));
  EXPECT_FALSE(AcceptsHtml("text/html; q=0.000, */*"));
  EXPECT_FALSE(AcceptsHtml("text/htmlx, application/json"));
}

TEST(HttpRequest, BrowserPageLoadsTheBundledFilesAndNamesTheZarrFormat) {
  std::string page = internal::RenderBrowserPage("a<b>/0", 3);
  EXPECT_NE(page.find("<meta name=\"refzarr-zarr-format\" content=\"3\">"), std::string::npos);
  EXPECT_NE(page.find("src=\"/__refzarr__/main.js\""), std::string::npos) << page;
  EXPECT_NE(page.find("href=\"/__refzarr__/style.css\""), std::string::npos) << page;
  EXPECT_NE(page.find("refzarr: /a&lt;b&gt;/0"), std::string::npos) << page;
  EXPECT_EQ(page.find("a<b>"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// A real server on an ephemeral loopback port.

struct HttpReply {
  long status = 0;
  std::map<std::string, std::string> headers;  // Lower-case names.
  std::string body;
  long new_connections = -1;
};

size_t AppendBody(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

size_t AppendHeader(char* data, size_t size, size_t n, void* out) {
  std::string line(data, size * n);
  size_t colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    value.erase(value.find_last_not_of("\r\n ") + 1);
    (*static_cast<std::map<std::string, std::string>*>(out))[name] = value;
  }
  return size * n;
}

class Client {
 public:
  explicit Client(uint16_t port) : port_(port), curl_(curl_easy_init()) {}
  ~Client() { curl_easy_cleanup(curl_); }

  HttpReply Request(const std::string& method, const std::string& path,
                    const std::vector<std::string>& headers = {}) {
    HttpReply reply;
    std::string url = "http://127.0.0.1:" + std::to_string(port_) + path;
    curl_easy_reset(curl_);
    curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl_, CURLOPT_PATH_AS_IS, 1L);  // Send "..", as an attacker would.
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, &AppendBody);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &reply.body);
    curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, &AppendHeader);
    curl_easy_setopt(curl_, CURLOPT_HEADERDATA, &reply.headers);
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT, 10L);
    if (!source_address_.empty()) curl_easy_setopt(curl_, CURLOPT_INTERFACE, source_address_.c_str());
    if (getenv("CURLV")) curl_easy_setopt(curl_, CURLOPT_VERBOSE, 1L);
    if (method == "HEAD") {
      curl_easy_setopt(curl_, CURLOPT_NOBODY, 1L);
    } else if (method != "GET") {
      curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, method.c_str());
    }
    curl_slist* list = nullptr;
    for (const std::string& h : headers) list = curl_slist_append(list, h.c_str());
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, list);
    CURLcode rc = curl_easy_perform(curl_);
    curl_slist_free_all(list);
    EXPECT_EQ(rc, CURLE_OK) << curl_easy_strerror(rc) << " for " << method << " " << path;
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &reply.status);
    curl_easy_getinfo(curl_, CURLINFO_NUM_CONNECTS, &reply.new_connections);
    return reply;
  }

 /// Requests go out from this loopback address (127.0.0.2...), as another client's would.
  void set_source_address(std::string address) { source_address_ = "host!" + address; }

 private:
  uint16_t port_;
  CURL* curl_;
  std::string source_address_;
};

std::string RandomBytes(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(gen() & 0xff);
  return out;
}

// The bytes of `path` at [offset, offset + length), read independently of the server.
std::string FileBytes(const std::filesystem::path& path, uint64_t offset, uint64_t length) {
  std::ifstream in(path, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(offset));
  std::string out(length, '\0');
  in.read(out.data(), static_cast<std::streamsize>(length));
  return out;
}

constexpr uint64_t kSliceOffset = 12345;
constexpr uint64_t kSliceLength = 65536;
const char kZarray[] = R"({"zarr_format":2,"shape":[256,512],"chunks":[128,256],"dtype":"|u1"})";

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("refzarr_http_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    source_ = dir_ / "source.tif";
    std::ofstream(source_, std::ios::binary) << RandomBytes(200000, 7);
    memory_chunk_ = RandomBytes(1000, 11);

    view_.AddBytes(".zgroup", R"({"zarr_format":2})", /*is_metadata=*/true);
    view_.AddBytes("img/.zattrs", R"({"multiscales":[]})", true);
    view_.AddBytes("img/0/.zarray", kZarray, true);
    view_.AddBytes("img/0/0.0", memory_chunk_);
    view_.AddSlice("img/0/0.1", FakeZarrView::LocalSlice(source_, kSliceOffset, kSliceLength));
    view_.AddError("img/0/1.0",
                   StaleError("source " + source_.string() + " changed since it was indexed"), 77);
    view_.AddBytes("img/0/empty", "");
    view_.AddBytes("odd name/a b+c", "x");
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  uint16_t Start(ServeOptions options = {}) {
    options.port = 0;
    options.threads = 2;
    auto server = StartHttpServer(view_, options);
    EXPECT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    return server_->Port();
  }

  std::filesystem::path dir_;
  std::filesystem::path source_;
  std::string memory_chunk_;
  FakeZarrView view_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, MetadataIsJsonWithExactLength) {
  Client client(Start());
  HttpReply r = client.Request("GET", "/img/0/.zarray");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, kZarray);
  EXPECT_EQ(r.headers["content-type"], "application/json");
  EXPECT_EQ(r.headers["content-length"], std::to_string(std::strlen(kZarray)));
  EXPECT_EQ(r.headers.count("content-encoding"), 0u);
}

TEST_F(HttpServerTest, InMemoryChunkIsOctetStream) {
  Client client(Start());
  HttpReply r = client.Request("GET", "/img/0/0.0");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, memory_chunk_);
  EXPECT_EQ(r.headers["content-type"], "application/octet-stream");
  EXPECT_EQ(r.headers["content-length"], "1000");
  EXPECT_EQ(r.headers["accept-ranges"], "bytes");
  EXPECT_EQ(r.headers.count("content-encoding"), 0u);
}

TEST_F(HttpServerTest, SliceIsServedFromTheSourceFileWithoutMaterializing) {
  Client client(Start());
  HttpReply r = client.Request("GET", "/img/0/0.1");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-length"], std::to_string(kSliceLength));
  EXPECT_TRUE(r.body == FileBytes(source_, kSliceOffset, kSliceLength)) << "bytes differ";
  // The server sent the file region itself (sendfile), never asking the view for the bytes.
  EXPECT_EQ(view_.materialize_calls(), 0);
}

TEST_F(HttpServerTest, EmptyValueHasZeroLength) {
  Client client(Start());
  HttpReply r = client.Request("GET", "/img/0/empty");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-length"], "0");
  EXPECT_TRUE(r.body.empty());
}

TEST_F(HttpServerTest, HeadGivesTheLengthWithoutABody) {
  Client client(Start());
  for (const char* path : {"/img/0/0.1", "/img/0/0.0", "/img/0/.zarray"}) {
    HttpReply head = client.Request("HEAD", path);
    HttpReply get = client.Request("GET", path);
    EXPECT_EQ(head.status, 200) << path;
    EXPECT_TRUE(head.body.empty()) << path;
    EXPECT_EQ(head.headers["content-length"], std::to_string(get.body.size())) << path;
    EXPECT_EQ(head.headers["content-type"], get.headers["content-type"]) << path;
  }
}

TEST_F(HttpServerTest, ByteRangeOfASliceIs206WithContentRange) {
  Client client(Start());
  HttpReply r = client.Request("GET", "/img/0/0.1", {"Range: bytes=100-1099"});
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.headers["content-range"], "bytes 100-1099/65536");
  EXPECT_EQ(r.headers["content-length"], "1000");
  EXPECT_TRUE(r.body == FileBytes(source_, kSliceOffset + 100, 1000));
}

TEST_F(HttpServerTest, SuffixAndOpenRangesAreServed) {
  Client client(Start());
  HttpReply suffix = client.Request("GET", "/img/0/0.1", {"Range: bytes=-100"});
  EXPECT_EQ(suffix.status, 206);
  EXPECT_EQ(suffix.headers["content-range"], "bytes 65436-65535/65536");
  EXPECT_TRUE(suffix.body == FileBytes(source_, kSliceOffset + kSliceLength - 100, 100));

  HttpReply open = client.Request("GET", "/img/0/0.0", {"Range: bytes=990-"});
  EXPECT_EQ(open.status, 206);
  EXPECT_EQ(open.headers["content-range"], "bytes 990-999/1000");
  EXPECT_EQ(open.body, memory_chunk_.substr(990));

  HttpReply head = client.Request("HEAD", "/img/0/0.0", {"Range: bytes=-10"});
  EXPECT_EQ(head.status, 206);
  EXPECT_EQ(head.headers["content-length"], "10");
}

TEST_F(HttpServerTest, UnsatisfiableRangeIs416) {
  Client client(Start());
  HttpReply r = client.Request("GET", "/img/0/0.1", {"Range: bytes=65536-"});
  EXPECT_EQ(r.status, 416);
  EXPECT_EQ(r.headers["content-range"], "bytes */65536");
  EXPECT_EQ(r.headers["access-control-allow-origin"], "*");
  HttpReply absurd = client.Request("GET", "/img/0/0.0", {"Range: bytes=99999999999999999999999-"});
  EXPECT_EQ(absurd.status, 416);
  // A malformed Range is ignored: the whole value.
  HttpReply malformed = client.Request("GET", "/img/0/0.0", {"Range: bytes=9-2"});
  EXPECT_EQ(malformed.status, 200);
  EXPECT_EQ(malformed.body, memory_chunk_);
}

TEST_F(HttpServerTest, MissingKeyIs404NotForbidden) {
  Client client(Start());
  EXPECT_EQ(client.Request("GET", "/img/0/9.9").status, 404);
  EXPECT_EQ(client.Request("HEAD", "/img/0/9.9").status, 404);
  EXPECT_EQ(client.Request("GET", "/nothing/here/").status, 404);
  EXPECT_EQ(client.Request("GET", "/img/0/.zarray/").status, 404);
}

TEST_F(HttpServerTest, EveryResponseCarriesCors) {
  Client client(Start());
  for (const char* path : {"/img/0/0.1", "/img/0/0.0", "/img/0/.zarray", "/missing", "/", "/img/0/1.0"}) {
    HttpReply r = client.Request("GET", path);
    EXPECT_EQ(r.headers["access-control-allow-origin"], "*") << path;
    EXPECT_NE(r.headers["access-control-expose-headers"].find("Content-Range"), std::string::npos)
        << path;
    EXPECT_NE(r.headers["access-control-expose-headers"].find("Content-Length"), std::string::npos)
        << path;
  }
}

TEST_F(HttpServerTest, OptionsPreflightAllowsRange) {
  Client client(Start());
  HttpReply r = client.Request("OPTIONS", "/img/0/0.1",
                               {"Origin: http://viewer.example", "Access-Control-Request-Method: GET",
                                "Access-Control-Request-Headers: range"});
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(r.headers["access-control-allow-origin"], "*");
  EXPECT_NE(r.headers["access-control-allow-headers"].find("Range"), std::string::npos);
  EXPECT_NE(r.headers["access-control-allow-methods"].find("GET"), std::string::npos);
  EXPECT_NE(r.headers["access-control-allow-methods"].find("HEAD"), std::string::npos);
}

TEST_F(HttpServerTest, ModifyingMethodsAre405) {
  Client client(Start());
  for (const char* method : {"POST", "PUT", "DELETE", "PATCH"}) {
    HttpReply r = client.Request(method, "/img/0/0.0");
    EXPECT_EQ(r.status, 405) << method;
    EXPECT_EQ(r.headers["allow"], "GET, HEAD, OPTIONS") << method;
  }
  EXPECT_EQ(client.Request("GET", "/img/0/0.0").body, memory_chunk_) << "nothing changed";
}

TEST_F(HttpServerTest, TraversalAttemptsNeverReachTheView) {
  Client client(Start());
  for (const char* path : {"/../etc/passwd", "/img/../../etc/passwd", "/img/%2e%2e/%2e%2e/etc/passwd",
                           "/img/0/0.0%00.png", "/./img/0/0.0", "/img/0/%zz"}) {
    HttpReply r = client.Request("GET", path);
    EXPECT_EQ(r.status, 400) << path;
    EXPECT_EQ(r.body.find("root:"), std::string::npos) << path;
  }
  for (const std::string& key : view_.keys_asked()) {
    EXPECT_EQ(key.find(".."), std::string::npos) << key;
    EXPECT_EQ(key.find('\0'), std::string::npos);
  }
}

TEST_F(HttpServerTest, StaleSourceIs500NamingTheSource) {
  Client client(Start());
  HttpReply r = client.Request("GET", "/img/0/1.0");
  EXPECT_EQ(r.status, 500);
  EXPECT_NE(r.body.find(source_.string()), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("changed since it was indexed"), std::string::npos) << r.body;
}

// A slice of a source with no local descriptor (a remote one, later) is sent from its bytes.
TEST_F(HttpServerTest, SliceWithoutALocalDescriptorIsSentFromItsBytes) {
  std::vector<std::byte> bytes(100);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::byte>('a' + i % 26);
  view_.AddSlice("img/0/9.0", FileSlice{std::shared_ptr<ByteSource>(MakeMemorySource(bytes, "m")),
                                        30, 10});
  Client client(Start());
  HttpReply r = client.Request("GET", "/img/0/9.0");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "efghijklmn");
  HttpReply part = client.Request("GET", "/img/0/9.0", {"Range: bytes=2-4"});
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.body, "ghi");
}

TEST_F(HttpServerTest, DirectoriesAreListedWithLinks) {
  Client client(Start());
  HttpReply root = client.Request("GET", "/");
  EXPECT_EQ(root.status, 200);
  EXPECT_EQ(root.headers["content-type"], "text/html; charset=utf-8");
  EXPECT_NE(root.body.find("href=\"./.zgroup\""), std::string::npos) << root.body;
  EXPECT_NE(root.body.find("href=\"./img/\""), std::string::npos) << root.body;
  EXPECT_NE(root.body.find("href=\"./odd%20name/\""), std::string::npos) << root.body;

  HttpReply level = client.Request("GET", "/img/0/");
  EXPECT_EQ(level.status, 200);
  EXPECT_NE(level.body.find("href=\"./0.1\""), std::string::npos) << level.body;
  EXPECT_NE(level.body.find("href=\"./.zarray\""), std::string::npos);

  HttpReply no_slash = client.Request("GET", "/img");
  EXPECT_EQ(no_slash.status, 301);
  EXPECT_EQ(no_slash.headers["location"], "/img/");
}

constexpr char kBrowser[] =
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
const WebAsset kFakeAssets[] = {{"main.js", "text/javascript; charset=utf-8", "console.log(1);"},
                                {"style.css", "text/css; charset=utf-8", "body{}"}};

TEST_F(HttpServerTest, BrowsersGetThePageAtDirectoriesAndZarrClientsTheListing) {
  ServeOptions options;
  options.web_assets = kFakeAssets;
  Client client(Start(options));
  for (const char* path : {"/", "/img/", "/img/0/", "/odd%20name/"}) {
    HttpReply page = client.Request("GET", path, {kBrowser});
    EXPECT_EQ(page.status, 200) << path;
    EXPECT_EQ(page.headers["content-type"], "text/html; charset=utf-8") << path;
    EXPECT_EQ(page.headers["vary"], "Accept") << path;
    EXPECT_NE(page.headers["content-security-policy"].find("default-src 'self'"),
              std::string::npos);
    EXPECT_NE(page.body.find("/__refzarr__/main.js"), std::string::npos) << path << page.body;
    EXPECT_EQ(page.body.find("href=\"./"), std::string::npos) << path << ": not the listing";
  }
  // Zarr clients and fetch() send */* or nothing: the listing, marked as varying with Accept.
  for (const std::vector<std::string>& headers :
       {std::vector<std::string>{}, std::vector<std::string>{"Accept: */*"}}) {
    HttpReply listing = client.Request("GET", "/img/", headers);
    EXPECT_EQ(listing.status, 200);
    EXPECT_NE(listing.body.find("href=\"./0/\""), std::string::npos) << listing.body;
    EXPECT_EQ(listing.headers["vary"], "Accept");
  }
  // Keys are keys, whatever the Accept header; a directory that is not there stays a 404.
  HttpReply zarray = client.Request("GET", "/img/0/.zarray", {kBrowser});
  EXPECT_EQ(zarray.status, 200);
  EXPECT_EQ(zarray.body, kZarray);
  EXPECT_EQ(client.Request("GET", "/nothing/", {kBrowser}).status, 404);
  EXPECT_EQ(client.Request("GET", "/img", {kBrowser}).status, 301);
}

TEST_F(HttpServerTest, BrowserPageFilesAreServedUnderTheReservedPrefix) {
  ServeOptions options;
  options.web_assets = kFakeAssets;
  Client client(Start(options));
  HttpReply js = client.Request("GET", "/__refzarr__/main.js");
  EXPECT_EQ(js.status, 200);
  EXPECT_EQ(js.body, "console.log(1);");
  EXPECT_EQ(js.headers["content-type"], "text/javascript; charset=utf-8");
  EXPECT_EQ(js.headers["content-length"], "15");
  EXPECT_EQ(js.headers["x-content-type-options"], "nosniff");
  HttpReply head = client.Request("HEAD", "/__refzarr__/style.css");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.headers["content-length"], "6");
  EXPECT_EQ(head.body, "");
  EXPECT_EQ(client.Request("GET", "/__refzarr__/other.js").status, 404);
  EXPECT_EQ(client.Request("GET", "/__refzarr__/").status, 404);
  EXPECT_EQ(client.Request("GET", "/__refzarr__/../img/0/.zarray").status, 400);
}

TEST_F(HttpServerTest, WithoutBrowserPagesBrowsersGetTheListing) {
  Client client(Start());
  HttpReply root = client.Request("GET", "/", {kBrowser});
  EXPECT_EQ(root.status, 200);
  EXPECT_NE(root.body.find("href=\"./img/\""), std::string::npos) << root.body;
  EXPECT_EQ(root.headers.count("vary"), 0u);
  EXPECT_EQ(client.Request("GET", "/__refzarr__/main.js").status, 404);
}

TEST_F(HttpServerTest, EscapedNamesReachTheirKeys) {
  Client client(Start());
  HttpReply r = client.Request("GET", "/odd%20name/a%20b%2Bc");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "x");
}

TEST_F(HttpServerTest, KeepAliveReusesTheConnection) {
  Client client(Start());
  EXPECT_EQ(client.Request("GET", "/img/0/0.1").new_connections, 1);
  EXPECT_EQ(client.Request("GET", "/img/0/0.0").new_connections, 0);
  EXPECT_EQ(client.Request("GET", "/missing").new_connections, 0);
  EXPECT_EQ(client.Request("HEAD", "/img/0/0.1").new_connections, 0);
}

TEST_F(HttpServerTest, ConcurrentClientsGetCorrectBytes) {
  uint16_t port = Start();
  const std::string slice = FileBytes(source_, kSliceOffset, kSliceLength);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      Client client(port);
      for (int i = 0; i < 40; ++i) {
        bool use_slice = (i + t) % 2 == 0;
        HttpReply r = client.Request("GET", use_slice ? "/img/0/0.1" : "/img/0/0.0");
        if (r.status != 200 || r.body != (use_slice ? slice : memory_chunk_)) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(HttpServerTest, AccessLogHasOneLinePerRequest) {
  std::ostringstream log;
  auto access_log = MakeStreamAccessLog(log);
  ServeOptions options;
  options.access_log = access_log.get();
  Client client(Start(options));
  client.Request("GET", "/img/0/0.0");
  client.Request("HEAD", "/missing");
  client.Request("GET", "/img/0/0.1", {"Range: bytes=0-9"});
  server_->Stop();
  std::string text = log.str();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 3) << text;
  EXPECT_NE(text.find("127.0.0.1 - - ["), std::string::npos) << text;
  EXPECT_NE(text.find("\"GET /img/0/0.0 HTTP/1.1\" 200 1000"), std::string::npos) << text;
  EXPECT_NE(text.find("\"HEAD /missing HTTP/1.1\" 404 0"), std::string::npos) << text;
  EXPECT_NE(text.find("\"GET /img/0/0.1 HTTP/1.1\" 206 10"), std::string::npos) << text;
}

// The access log reaches its file as each request is answered, not when the server stops: a
// `tail -f` or a crash sees every request.
TEST_F(HttpServerTest, AccessLogIsWrittenLineByLine) {
  const std::filesystem::path path = dir_ / "access.log";
  std::ofstream log(path);
  auto access_log = MakeStreamAccessLog(log);
  ServeOptions options;
  options.access_log = access_log.get();
  Client client(Start(options));
  client.Request("GET", "/img/0/0.0");
  std::string text;
  for (int i = 0; i < 200 && text.find("GET /img/0/0.0") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    text = FileBytes(path, 0, std::filesystem::file_size(path));
  }
  EXPECT_NE(text.find("\"GET /img/0/0.0 HTTP/1.1\" 200 1000 0."), std::string::npos) << text;
  server_->Stop();  // Before `log` goes.
}

// zarr-python turns a failed chunk into fill values and tells no one, so the server must: every
// 5xx goes to the error log with its key and reason; a 404 is a normal outcome and does not.
TEST_F(HttpServerTest, EveryServerErrorIsLoggedWithItsKeyAndReason) {
  std::ostringstream errors;
  ServeOptions options;
  options.error_log = &errors;
  view_.AddListError("odd name", IoError("disk on fire"));
  Client client(Start(options));
  EXPECT_EQ(client.Request("GET", "/img/0/1.0").status, 500);
  EXPECT_EQ(client.Request("GET", "/odd%20name/").status, 500);
  EXPECT_EQ(client.Request("GET", "/missing").status, 404);
  server_->Stop();
  const std::string text = errors.str();
  EXPECT_NE(text.find("refzarr serve: GET /img/0/1.0: 500: source " + source_.string() +
                      " changed since it was indexed\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("GET /odd%20name/: 500: disk on fire"), std::string::npos) << text;
  EXPECT_EQ(text.find("missing"), std::string::npos) << text;
}

// A listing is sent as the view pages it: the status and first entries go out before the rest is
// read, and the server holds one page at a time.
TEST_F(HttpServerTest, LongListingsAreStreamedPageByPage) {
  for (int i = 0; i < 2500; ++i) view_.AddBytes("big/" + std::to_string(100000 + i), "c");
  Client client(Start());
  HttpReply r = client.Request("GET", "/big/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["transfer-encoding"], "chunked");
  size_t links = 0;
  for (size_t at = r.body.find("href=\"./1"); at != std::string::npos;
       at = r.body.find("href=\"./1", at + 1)) {
    ++links;
  }
  EXPECT_EQ(links, 2500u);
  EXPECT_NE(r.body.find("href=\"./102499\""), std::string::npos);
  EXPECT_NE(r.body.find("</html>"), std::string::npos);
  EXPECT_GE(view_.list_pages(), 3) << "2 500 entries come in pages";
}

// libmicrohttpd sends a chunked response's last-chunk line even to HEAD; on a kept-alive
// connection the next client request would read it as its response (GDAL: "Received HTTP/0.9").
TEST_F(HttpServerTest, HeadOfAListingLeavesTheConnectionUsable) {
  Client client(Start());
  HttpReply head = client.Request("HEAD", "/img/");
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
  HttpReply next = client.Request("GET", "/img/0/.zarray");
  EXPECT_EQ(next.status, 200);
  EXPECT_EQ(next.body, kZarray);
}

// Once the status line is out, a listing that fails is cut short (the client sees an incomplete
// body, never a complete-looking short listing) and the error is logged.
TEST_F(HttpServerTest, AListingThatFailsMidwayIsCutShortAndLogged) {
  for (int i = 0; i < 2500; ++i) view_.AddBytes("big/" + std::to_string(100000 + i), "c");
  view_.AddListError("big", StaleError("source /x.tif changed"), /*first_page_ok=*/true);
  std::ostringstream errors;
  ServeOptions options;
  options.error_log = &errors;
  uint16_t port = Start(options);
  CURL* curl = curl_easy_init();
  std::string body;
  std::string url = "http://127.0.0.1:" + std::to_string(port) + "/big/";
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &AppendBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
  CURLcode rc = curl_easy_perform(curl);
  curl_easy_cleanup(curl);
  EXPECT_NE(rc, CURLE_OK) << "the body must not look complete";
  EXPECT_EQ(body.find("</html>"), std::string::npos);
  server_->Stop();
  EXPECT_NE(errors.str().find("GET /big/: listing cut short after 1000 entries: source /x.tif "
                              "changed"),
            std::string::npos)
      << errors.str();
}

int ConnectLoopback(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

TEST_F(HttpServerTest, SlowClientIsTimedOut) {
  ServeOptions options;
  options.connection_timeout_seconds = 1;
  uint16_t port = Start(options);
  int fd = ConnectLoopback(port);
  ASSERT_GE(fd, 0);
  const char partial[] = "GET /img/0/0.0 HTTP/1.1\r\nHost: x\r\n";  // Never finished.
  ASSERT_GT(::send(fd, partial, sizeof partial - 1, 0), 0);
  pollfd p{fd, POLLIN, 0};
  auto start = std::chrono::steady_clock::now();
  int ready = ::poll(&p, 1, 5000);
  char buf[256];
  ssize_t n = ready > 0 ? ::recv(fd, buf, sizeof buf, 0) : -2;
  double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ::close(fd);
  EXPECT_EQ(n, 0) << "the server should close the idle connection";
  EXPECT_LT(waited, 4.0);
}

TEST_F(HttpServerTest, MalformedRequestGetsAnErrorNotACrash) {
  uint16_t port = Start();
  int fd = ConnectLoopback(port);
  ASSERT_GE(fd, 0);
  std::string junk = "GARBAGE\x01\x02 /\r\n" + std::string(100000, 'A') + "\r\n\r\n";
  ::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL);
  char buf[512];
  ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  ::close(fd);
  if (n > 0) {
    EXPECT_EQ(std::string(buf, 9), "HTTP/1.1 ") << std::string(buf, n);
  }
  // Still serving.
  Client client(port);
  EXPECT_EQ(client.Request("GET", "/img/0/0.0").status, 200);
}

TEST_F(HttpServerTest, HugeHeaderIsRefusedWithinTheMemoryLimit) {
  ServeOptions options;
  options.connection_memory_limit_bytes = 16 * 1024;
  Client client(Start(options));
  HttpReply r = client.Request("GET", "/img/0/0.0", {"X-Big: " + std::string(64 * 1024, 'b')});
  EXPECT_GE(r.status, 400);
  EXPECT_EQ(client.Request("GET", "/img/0/0.0").status, 200);
}

// The default per-connection limit (32 KiB, no larger because libmicrohttpd zeroes half of it
// after every request; 16 KiB refuses this header, 431) still takes the headers of real clients:
// nginx's largest default header line is 8 KiB.
TEST_F(HttpServerTest, AnEightKiBHeaderIsServedWithTheDefaultMemoryLimit) {
  Client client(Start());
  HttpReply r = client.Request("GET", "/img/0/0.0", {"Cookie: " + std::string(8 * 1024, 'c')});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(client.Request("GET", "/img/0/0.0").status, 200);
}

TEST_F(HttpServerTest, StoppedServerRefusesConnections) {
  uint16_t port = Start();
  server_->Stop();
  server_->Stop();  // Idempotent.
  int fd = ConnectLoopback(port);
  if (fd >= 0) ::close(fd);
  EXPECT_LT(fd, 0);
}

TEST_F(HttpServerTest, ServeBlocksUntilShutdownIsAsked) {
  std::ostringstream log;
  ServeOptions options;
  options.port = 0;
  std::atomic<bool> waited{false};
  options.wait_for_shutdown = [&] { waited = true; };
  Status status = Serve(view_, options, log);
  EXPECT_TRUE(status.ok()) << status.ToString();
  EXPECT_TRUE(waited);
  EXPECT_NE(log.str().find("serving Zarr v2 on http://127.0.0.1:"), std::string::npos) << log.str();
  EXPECT_NE(log.str().find("shutting down"), std::string::npos);
  options.wait_for_shutdown = nullptr;
  EXPECT_FALSE(Serve(view_, options, log).ok());
}

TEST_F(HttpServerTest, PortInUseIsAClearError) {
  uint16_t port = Start();
  ServeOptions options;
  options.port = port;
  auto second = StartHttpServer(view_, options);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("cannot serve on 127.0.0.1:" + std::to_string(port)),
            std::string::npos)
      << second.status().message();
}

TEST_F(HttpServerTest, UnknownHostIsInvalidArgument) {
  ServeOptions options;
  options.host = "no-such-host.invalid";
  options.port = 0;
  auto server = StartHttpServer(view_, options);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// Serving beyond loopback: the access policy, limits, the access log's secrets.

constexpr char kImgToken[] = "img-token-0123456789abcdef";
constexpr char kOddToken[] = "odd-token-0123456789abcdef";

std::unique_ptr<AccessPolicy> TestPolicy(int64_t* now, std::optional<UrlSigner> signer) {
  std::optional<TokenTable> tokens;
  if (!signer) {
    tokens = *TokenTable::Parse(std::string(kImgToken) + " /img\n" + kOddToken + " /odd%20name\n", "t");
  }
  return MakeAccessPolicy(std::move(tokens), std::move(signer), [now] { return *now; });
}

TEST_F(HttpServerTest, TokensGiveReadAccessUnderTheirPrefixesOnly) {
  int64_t now = 1000;
  auto policy = TestPolicy(&now, std::nullopt);
  std::ostringstream log;
  auto access_log = MakeStreamAccessLog(log);
  ServeOptions options;
  options.access_policy = policy.get();
  options.access_log = access_log.get();
  Client client(Start(options));
  const std::string img = std::string("Authorization: Bearer ") + kImgToken;
  HttpReply none = client.Request("GET", "/img/0/0.0");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.headers["www-authenticate"], "Bearer realm=\"refzarr\"");
  EXPECT_EQ(none.headers["access-control-allow-origin"], "*") << "a 401 must reach fetch()";
  EXPECT_EQ(client.Request("GET", "/img/0/0.0", {"Authorization: Bearer not-a-known-token-xyz"}).status,
            401);
  EXPECT_EQ(client.Request("GET", "/img/0/0.0", {"Authorization: Basic " + std::string(kImgToken)})
                .status,
            401);
  HttpReply ok = client.Request("GET", "/img/0/0.0", {img});
  EXPECT_EQ(ok.status, 200);
  EXPECT_TRUE(ok.body == memory_chunk_);
  EXPECT_EQ(client.Request("GET", "/img/0/", {img}).status, 200);
  EXPECT_EQ(client.Request("GET", "/img/0/0.1", {"authorization: bearer " + std::string(kImgToken)})
                .status,
            200);
  // Outside the prefix: exactly what a missing key gets, whether the key exists or not.
  HttpReply hidden = client.Request("GET", "/odd%20name/a%20b+c", {img});
  HttpReply missing = client.Request("GET", "/odd%20name/nothing", {img});
  EXPECT_EQ(hidden.status, 404);
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(hidden.body, "refzarr: no key 'odd name/a b+c'\n");
  EXPECT_EQ(client.Request("GET", "/", {img}).status, 404) << "the root lists every group";
  EXPECT_EQ(client.Request("GET", "/.zgroup", {img}).status, 404);
  EXPECT_EQ(client.Request("GET", "/imgx", {img}).status, 404);
  const std::string odd = std::string("Authorization: Bearer ") + kOddToken;
  EXPECT_EQ(client.Request("GET", "/odd%20name/a%20b+c", {odd}).body, "x");
  EXPECT_EQ(client.Request("GET", "/img/0/0.0", {odd}).status, 404);
  // A preflight carries no credentials and is answered, allowing the header.
  HttpReply preflight = client.Request("OPTIONS", "/img/0/0.0");
  EXPECT_EQ(preflight.status, 204);
  EXPECT_NE(preflight.headers["access-control-allow-headers"].find("Authorization"),
            std::string::npos);
  server_->Stop();
  const std::string text = log.str();
  EXPECT_EQ(text.find("token-0123"), std::string::npos) << "a token reached the log: " << text;
  EXPECT_NE(text.find(" - token@1 ["), std::string::npos) << text;
  EXPECT_NE(text.find(" - token@2 ["), std::string::npos) << text;
  EXPECT_NE(text.find("\"GET /img/0/0.0 HTTP/1.1\" 401 "), std::string::npos) << text;
}

TEST_F(HttpServerTest, SignedUrlsReadUnderTheirPrefixUntilTheyExpire) {
  int64_t now = 1000;
  std::array<unsigned char, 32> key{};
  key.fill(3);
  UrlSigner signer(key);
  auto policy = TestPolicy(&now, signer);
  std::ostringstream log;
  auto access_log = MakeStreamAccessLog(log);
  ServeOptions options;
  options.access_policy = policy.get();
  options.access_log = access_log.get();
  Client client(Start(options));
  const std::string base = signer.SignedPath("img", 2000);
  HttpReply chunk = client.Request("GET", base + "/0/0.1");
  EXPECT_EQ(chunk.status, 200);
  EXPECT_TRUE(chunk.body == FileBytes(source_, kSliceOffset, kSliceLength));
  EXPECT_EQ(chunk.headers["access-control-allow-origin"], "*");
  HttpReply listing = client.Request("GET", base + "/0/");
  EXPECT_EQ(listing.status, 200);
  EXPECT_NE(listing.body.find("href=\"./.zarray\""), std::string::npos) << "relative links";
  EXPECT_EQ(client.Request("GET", base + "/.zattrs").status, 200);
  EXPECT_EQ(client.Request("GET", "/img/0/0.0").status, 401) << "no policy for plain paths";
  // The signature covers "img" only.
  std::string other = base;
  other.replace(other.rfind("/img"), 4, "/odd%20name");
  EXPECT_EQ(client.Request("GET", other + "/a%20b+c").status, 403);
  std::string tampered = base;
  tampered[tampered.find("/2000/") + 6] ^= 1;
  EXPECT_EQ(client.Request("GET", tampered + "/0/0.0").status, 403);
  const std::string later = signer.SignedPath("img", 3000);
  std::string moved = later;
  moved.replace(moved.find("/3000/"), 6, "/2000/");
  EXPECT_EQ(client.Request("GET", moved + "/0/0.0").status, 403) << "expiry moved";
  EXPECT_EQ(client.Request("GET", "/__signed__/x/y/img/0/0.0").status, 403);
  now = 2000;
  HttpReply expired = client.Request("GET", base + "/0/0.0");
  EXPECT_EQ(expired.status, 403);
  EXPECT_NE(expired.body.find("expired"), std::string::npos) << expired.body;
  server_->Stop();
  const std::string text = log.str();
  EXPECT_EQ(text.find(signer.Signature("img", 2000)), std::string::npos)
      << "a signature reached the log: " << text;
  EXPECT_NE(text.find("\"GET /__signed__/2000/-/img/0/0.1 HTTP/1.1\" 200 65536 "),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(" - signed ["), std::string::npos) << text;
}

TEST_F(HttpServerTest, ANonLoopbackAddressNeedsAPolicyOrPublic) {
  for (const char* host : {"0.0.0.0", "::"}) {
    ServeOptions options;
    options.host = host;
    options.port = 0;
    auto refused = StartHttpServer(view_, options);
    ASSERT_FALSE(refused.ok()) << host;
    EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(refused.status().message().find("refusing to serve on " + std::string(host)),
              std::string::npos)
        << refused.status().message();
    options.public_archive = true;
    auto open = StartHttpServer(view_, options);
    EXPECT_TRUE(open.ok()) << host << ": " << open.status().message();
  }
  int64_t now = 0;
  auto policy = TestPolicy(&now, std::nullopt);
  ServeOptions options;
  options.host = "0.0.0.0";
  options.port = 0;
  options.access_policy = policy.get();
  auto guarded = StartHttpServer(view_, options);
  ASSERT_TRUE(guarded.ok()) << guarded.status().message();
  Client client((*guarded)->Port());
  EXPECT_EQ(client.Request("GET", "/img/0/0.0").status, 401);
  // All of 127.0.0.0/8 is loopback.
  options.host = "127.0.0.2";
  options.access_policy = nullptr;
  EXPECT_TRUE(StartHttpServer(view_, options).ok());
}

TEST_F(HttpServerTest, ALongPathIs414) {
  ServeOptions options;
  options.max_url_bytes = 100;
  Client client(Start(options));
  EXPECT_EQ(client.Request("GET", "/img/" + std::string(200, 'a')).status, 414);
  EXPECT_EQ(client.Request("GET", "/img/0/0.0").status, 200);
}

TEST_F(HttpServerTest, TheRateLimitIsPerClientAddress) {
  double now = 0;
  auto limiter = MakeRateLimiter(1, 3, [&] { return now; });
  ServeOptions options;
  options.rate_limiter = limiter.get();
  uint16_t port = Start(options);
  Client first(port);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(first.Request("GET", "/img/0/0.0").status, 200) << i;
  HttpReply refused = first.Request("GET", "/img/0/0.0");
  EXPECT_EQ(refused.status, 429);
  EXPECT_EQ(refused.headers["retry-after"], "1");
  Client second(port);
  second.set_source_address("127.0.0.2");
  EXPECT_EQ(second.Request("GET", "/img/0/0.0").status, 200);
  now = 1;
  EXPECT_EQ(first.Request("GET", "/img/0/0.0").status, 200);
}

// Connects from `source` (a loopback address) to the server.
int ConnectFrom(const char* source, uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in from{};
  from.sin_family = AF_INET;
  inet_pton(AF_INET, source, &from.sin_addr);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Whether the server closes `fd` at once (it refused the connection) rather than waiting for a
// request.
bool ClosedByServer(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 1000) <= 0) return false;
  char c;
  return ::recv(fd, &c, 1, 0) <= 0;
}

TEST_F(HttpServerTest, OneAddressCannotTakeEveryConnection) {
  ServeOptions options;
  options.max_connections_per_client = 3;
  uint16_t port = Start(options);
  std::vector<int> slow;
  for (int i = 0; i < 3; ++i) slow.push_back(ConnectFrom("127.0.0.3", port));
  for (int fd : slow) ASSERT_GE(fd, 0);
  // Give the server time to accept them, then a fourth from the same address is closed.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  int fourth = ConnectFrom("127.0.0.3", port);
  ASSERT_GE(fourth, 0);
  EXPECT_TRUE(ClosedByServer(fourth));
  ::close(fourth);
  EXPECT_FALSE(ClosedByServer(slow[0])) << "the first three stay open";
  Client other(port);  // 127.0.0.1
  EXPECT_EQ(other.Request("GET", "/img/0/0.0").status, 200);
  for (int fd : slow) ::close(fd);
}

}  // namespace
}  // namespace refzarr

int main(int argc, char** argv) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  ::testing::InitGoogleTest(&argc, argv);
  int rc = RUN_ALL_TESTS();
  curl_global_cleanup();
  return rc;
}
