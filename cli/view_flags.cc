#include <cstdlib>
#include <memory>

#include "cli/commands.h"
#include "formats/registry/registry.h"

namespace refzarr {

void ViewFlags::AddTo(CLI::App* cmd) {
  cmd->add_option("--zarr-format", zarr_format, "2: OME-NGFF 0.4 on Zarr v2; 3: OME-NGFF 0.5 on Zarr v3")
      ->check(CLI::IsMember({2, 3}))
      ->capture_default_str();
  cmd->add_option("--codecs", codecs,
                  "compat: transcode what standard Zarr codecs cannot read; passthrough: stored bytes")
      ->check(CLI::IsMember({"compat", "passthrough"}))
      ->capture_default_str();
  cmd->add_option("--shards", shards,
                  "Zarr v3 only: none (one object per chunk), auto (shards of up to 1,024 chunks "
                  "shaped to the grid) or chunks per shard along the last dimensions (e.g. 16,16); "
                  "shards are computed from the chunk references, never stored")
      ->check([](const std::string& text) {
        auto spec = ParseShardingSpec(text);
        return spec.ok() ? std::string() : spec.status().message();
      })
      ->capture_default_str();
}

void ViewFlags::AddRevalidateTo(CLI::App* cmd) {
  cmd->add_option("--revalidate", revalidate_seconds,
                  "Seconds a source checked against the index may be read again without checking "
                  "it (a stat); 0 checks before every read. Above 0, a file rewritten in place can "
                  "be served for up to that long after the change")
      ->check(CLI::Range(0.0, 86400.0))
      ->capture_default_str();
}

void AddRemoteFlags(CLI::App* cmd) {
  cmd->add_option("--header", "Add a header line ('Name: value') to every request to http(s):// "
                              "sources (repeatable; e.g. an Authorization token)")
      ->each([](const std::string& line) {
        if (line.find(':') == std::string::npos || line.starts_with(':')) {
          throw CLI::ValidationError("--header", "expected 'Name: value'");
        }
        const char* before = std::getenv("REFZARR_HTTP_HEADERS");
        const std::string all = before && *before ? std::string(before) + "\n" + line : line;
        setenv("REFZARR_HTTP_HEADERS", all.c_str(), 1);
      });
  cmd->add_option("--s3-endpoint", "Where s3:// requests go (an S3-compatible store: MinIO, Ceph; "
                                   "path-style); default AWS_ENDPOINT_URL, else AWS itself")
      ->each([](const std::string& url) { setenv("AWS_ENDPOINT_URL", url.c_str(), 1); });
  cmd->add_flag_callback("--no-sign-request", [] { setenv("AWS_NO_SIGN_REQUEST", "true", 1); },
                         "Send s3:// requests unsigned (public buckets)");
  cmd->add_option("--ca-file", "Certificates to trust for https:// instead of the system's")
      ->each([](const std::string& path) { setenv("CURL_CA_BUNDLE", path.c_str(), 1); });
}

Result<ViewOptions> ViewFlags::ToOptions() const {
  // The decoders live as long as the process: views may outlive any one command's scope.
  static const auto* decoders = new std::vector<std::unique_ptr<ChunkDecoder>>(DefaultDecoders());
  ViewOptions o;
  o.zarr_format = zarr_format;
  o.revalidate_seconds = revalidate_seconds;
  o.openers = &DefaultSourceOpeners();
  ASSIGN_OR_RETURN(o.codecs, ParseCodecPolicy(codecs));
  ASSIGN_OR_RETURN(o.shards, ParseShardingSpec(shards));
  if (o.shards.mode != ShardingSpec::Mode::kNone && zarr_format != 3) {
    return InvalidArgumentError("--shards " + shards + " needs --zarr-format 3 (Zarr v2 has no "
                                "sharding)");
  }
  for (const auto& d : *decoders) o.decoders.push_back(d.get());
  return o;
}

}  // namespace refzarr
