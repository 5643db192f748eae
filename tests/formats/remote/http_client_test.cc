// FromCurl and DescribeHttpStatus, without a server.
#include <curl/curl.h>
#include <gtest/gtest.h>

#include "formats/remote/http_client.h"

namespace refzarr {
namespace {

TEST(FromCurl, IsIoNamingTheSourceAndWhatCurlSays) {
  Status st = FromCurl(CURLE_COULDNT_CONNECT, "https://example.test/a.tif");
  EXPECT_EQ(st.code(), StatusCode::kIo);
  EXPECT_TRUE(st.message().starts_with("https://example.test/a.tif: ")) << st.message();
  EXPECT_NE(st.message().find(curl_easy_strerror(CURLE_COULDNT_CONNECT)), std::string::npos)
      << st.message();
}

TEST(FromCurl, AddsTheErrorBufferOnceAndOnlyWhenItSaysMore) {
  Status st = FromCurl(CURLE_OPERATION_TIMEDOUT, "s3://b/k",
                       "Operation timed out after 30001 milliseconds with 0 bytes received");
  EXPECT_NE(st.message().find("30001 milliseconds"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find(curl_easy_strerror(CURLE_OPERATION_TIMEDOUT)), std::string::npos);

  const char* same = curl_easy_strerror(CURLE_RECV_ERROR);
  Status dup = FromCurl(CURLE_RECV_ERROR, "http://h/x", same);
  const std::string m = dup.message();
  EXPECT_EQ(m.find(same), m.rfind(same)) << "said twice: " << m;

  Status empty = FromCurl(CURLE_SSL_CACERT_BADFILE, "https://h/x", "");
  EXPECT_EQ(empty.message(), std::string("https://h/x: ") + curl_easy_strerror(CURLE_SSL_CACERT_BADFILE));
  EXPECT_EQ(empty.message().find("()"), std::string::npos);
}

TEST(FromCurl, EveryCodeHasAMessage) {
  for (int code : {CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_CONNECT, CURLE_PARTIAL_FILE,
                   CURLE_HTTP_RETURNED_ERROR, CURLE_WRITE_ERROR, CURLE_OPERATION_TIMEDOUT,
                   CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_GOT_NOTHING,
                   CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_HTTP2, CURLE_HTTP2_STREAM}) {
    Status st = FromCurl(code, "http://h/x");
    EXPECT_EQ(st.code(), StatusCode::kIo);
    EXPECT_GT(st.message().size(), std::string("http://h/x: ").size() + 3) << code;
  }
}

HttpResponse Response(long status, std::string body = {}) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

TEST(DescribeHttpStatus, NamesTheStatus) {
  EXPECT_EQ(DescribeHttpStatus(Response(403)), "HTTP 403 Forbidden");
  EXPECT_EQ(DescribeHttpStatus(Response(404)), "HTTP 404 Not Found");
  EXPECT_EQ(DescribeHttpStatus(Response(412)), "HTTP 412 Precondition Failed");
  EXPECT_EQ(DescribeHttpStatus(Response(416)), "HTTP 416 Range Not Satisfiable");
  EXPECT_EQ(DescribeHttpStatus(Response(429)), "HTTP 429 Too Many Requests");
  EXPECT_EQ(DescribeHttpStatus(Response(503)), "HTTP 503 Service Unavailable");
  EXPECT_EQ(DescribeHttpStatus(Response(599)), "HTTP 599");  // no name: the number alone
  // An HTML or text body is not an S3 error: the status alone.
  EXPECT_EQ(DescribeHttpStatus(Response(500, "<html><body>Internal error</body></html>")),
            "HTTP 500 Internal Server Error");
}

TEST(DescribeHttpStatus, GivesTheS3ErrorCodeAndMessage) {
  const std::string body =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SignatureDoesNotMatch</Code>"
      "<Message>The request signature we calculated does not match the signature you provided."
      "</Message><AWSAccessKeyId>AKIAEXAMPLEKEY</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256"
      "</StringToSign><RequestId>1</RequestId></Error>";
  const std::string d = DescribeHttpStatus(Response(403, body));
  EXPECT_TRUE(d.starts_with("HTTP 403 Forbidden")) << d;
  EXPECT_NE(d.find("SignatureDoesNotMatch"), std::string::npos) << d;
  EXPECT_NE(d.find("The request signature we calculated"), std::string::npos) << d;
  // Nothing else of the body: the access key id and the string to sign stay out.
  EXPECT_EQ(d.find("AKIAEXAMPLEKEY"), std::string::npos) << d;
  EXPECT_EQ(d.find("AWS4-HMAC-SHA256"), std::string::npos) << d;

  const std::string k = DescribeHttpStatus(Response(404, "<Error><Code>NoSuchKey</Code></Error>"));
  EXPECT_TRUE(k.starts_with("HTTP 404 Not Found")) << k;
  EXPECT_NE(k.find("NoSuchKey"), std::string::npos) << k;
}

TEST(DescribeHttpStatus, DecodesXmlEntitiesAndBoundsTheMessage) {
  const std::string d = DescribeHttpStatus(Response(
      400, "<Error><Code>InvalidArgument</Code><Message>Argument &apos;max-keys&apos; &amp; "
           "&quot;prefix&quot; &lt;bad&gt;</Message></Error>"));
  EXPECT_NE(d.find("Argument 'max-keys' & \"prefix\" <bad>"), std::string::npos) << d;

  const std::string long_message(5000, 'x');
  const std::string l =
      DescribeHttpStatus(Response(500, "<Error><Code>InternalError</Code><Message>" + long_message +
                                           "</Message></Error>"));
  EXPECT_LT(l.size(), 400u) << l.size();
  // A body cut short (kept in part) still gives what it holds.
  const std::string cut = DescribeHttpStatus(Response(503, "<Error><Code>SlowDown</Code><Message>Redu"));
  EXPECT_NE(cut.find("SlowDown"), std::string::npos) << cut;
}

}  // namespace
}  // namespace refzarr
