// `refzarr sign INDEX PREFIX --expires 2h`: a URL that reads everything under PREFIX from
// `refzarr serve --signed-urls` until it expires, for viewers that cannot send headers.
#include <CLI/CLI.hpp>
#include <charconv>
#include <ctime>
#include <string>

#include "cli/access/access_policy.h"
#include "cli/access/tokens.h"
#include "cli/access/url_signer.h"
#include "cli/commands.h"
#include "store/zarr_view.h"

namespace refzarr {

Result<int64_t> ParseDuration(std::string_view text) {
  if (text.empty()) return InvalidArgumentError("empty duration");
  int64_t total = 0;
  std::string_view rest = text;
  while (!rest.empty()) {
    int64_t n = 0;
    auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), n);
    if (ec != std::errc() || n < 0) {
      return InvalidArgumentError("duration '" + std::string(text) +
                                  "': expected e.g. 90s, 30m, 2h, 7d or 1h30m");
    }
    rest.remove_prefix(static_cast<size_t>(end - rest.data()));
    int64_t unit = 1;
    if (!rest.empty()) {
      switch (rest.front()) {
        case 's': unit = 1; break;
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        default:
          return InvalidArgumentError("duration '" + std::string(text) + "': unknown unit '" +
                                      std::string(1, rest.front()) + "' (s, m, h, d)");
      }
      rest.remove_prefix(1);
    } else if (total != 0) {
      return InvalidArgumentError("duration '" + std::string(text) + "': a number without unit");
    }
    // Ten years is far beyond any sensible link, and far from overflowing.
    if (n > 10 * 366 * 86400 / unit || total + n * unit > 10 * 366 * 86400) {
      return InvalidArgumentError("duration '" + std::string(text) + "' is over ten years");
    }
    total += n * unit;
  }
  if (total == 0) return InvalidArgumentError("duration '" + std::string(text) + "' is zero");
  return total;
}

Status SignUrl(const std::filesystem::path& index, std::string_view prefix,
               std::string_view expires_in, std::string_view base_url, int64_t now,
               std::ostream& out, std::ostream& err) {
  ASSIGN_OR_RETURN(int64_t seconds, ParseDuration(expires_in));
  ASSIGN_OR_RETURN(std::string key, NormalizePrefix(prefix));
  // Only what exists is signed: a typo gives an error now, not a link that answers 404.
  ASSIGN_OR_RETURN(std::unique_ptr<ZarrView> view, OpenZarrView(index, ViewOptions{}));
  Result<std::pair<EntryKind, uint64_t>> stat = view->Stat(key);
  if (!stat.ok() && stat.status().code() != StatusCode::kNotFound) return stat.status();
  if (!stat.ok() || stat->first == EntryKind::kMissing) {
    return NotFoundError("no group or key '" + key + "' in " + index.string());
  }
  ASSIGN_OR_RETURN(UrlSigner signer, UrlSigner::ForIndex(index.string(), /*create=*/true));
  const int64_t expires = now + seconds;
  std::string base(base_url);
  while (!base.empty() && base.back() == '/') base.pop_back();
  out << base << signer.SignedPath(key, expires)
      << (stat->first == EntryKind::kDirectory ? "/" : "") << "\n";
  std::time_t t = static_cast<std::time_t>(expires);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  err << "refzarr sign: readable until " << when << " by `refzarr serve " << index.string()
      << " --signed-urls` (key " << SigningKeyPath(index.string()) << ")\n";
  return OkStatus();
}

void AddSignCommand(CLI::App& app, CommandContext& ctx) {
  struct Args {
    std::string index;
    std::string prefix;
    std::string expires = "1h";
    std::string base_url = "http://127.0.0.1:8000";
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "sign", "Print a signed URL that reads a group (or key) and everything under it until it "
              "expires, from `refzarr serve --signed-urls` (for viewers that cannot send a token)");
  cmd->add_option("INDEX", args->index, "Index file (.refs.db); its key is INDEX.serve-key")
      ->required();
  cmd->add_option("PREFIX", args->prefix, "Tree path to share (a group such as dir/a.tif; / all)")
      ->required();
  cmd->add_option("--expires", args->expires, "Lifetime: 90s, 30m, 2h, 7d, 1h30m")
      ->capture_default_str();
  cmd->add_option("--base-url", args->base_url, "The server's URL as viewers reach it")
      ->capture_default_str();
  cmd->callback([args, &ctx] {
    Status status = SignUrl(args->index, args->prefix, args->expires, args->base_url,
                            SystemUnixTime(), ctx.out, ctx.err);
    if (!status.ok()) {
      ctx.err << "refzarr sign: " << status.message() << '\n';
      ctx.exit_code = 1;
    }
  });
}

}  // namespace refzarr
