// The `refzarr` commands. Each cli/<name>_command.cc registers one CLI11 subcommand whose callback
// calls a library function writing to std::ostream, so tests call the functions, not the binary.
#pragma once

#include <CLI/CLI.hpp>

#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "formats/core/status.h"
#include "store/zarr_view.h"

namespace refzarr {

/// Streams and outcome shared by the commands of one run.
struct CommandContext {
  std::ostream& out;
  std::ostream& err;
  int exit_code = 0;
  /// argv that starts a crash-isolated scan worker (`refzarr scan-worker`); `index` runs each
  /// scan in one unless given --in-process. main() sets {"/proc/self/exe", "scan-worker"}.
  std::vector<std::string> scan_worker;
};

void AddIndexCommand(CLI::App& app, CommandContext& ctx);
/// The hidden `scan-worker` command: a crash-isolated scanner for `index` (indexer/scan_worker.h).
void AddScanWorkerCommand(CLI::App& app, CommandContext& ctx);
void AddLsCommand(CLI::App& app, CommandContext& ctx);
void AddCatCommand(CLI::App& app, CommandContext& ctx);
void AddInfoCommand(CLI::App& app, CommandContext& ctx);
void AddRefsCommand(CLI::App& app, CommandContext& ctx);
void AddExportCommand(CLI::App& app, CommandContext& ctx);
void AddImportCommand(CLI::App& app, CommandContext& ctx);
void AddMergeCommand(CLI::App& app, CommandContext& ctx);
void AddServeCommand(CLI::App& app, CommandContext& ctx);
void AddMountCommand(CLI::App& app, CommandContext& ctx);

/// The remote-source options of the commands that read sources (index, cat, serve, mount, export,
/// info): --header, --s3-endpoint, --no-sign-request, --ca-file. Each sets, as it is parsed, the
/// environment variable RemoteOptionsFromEnvironment() reads (REFZARR_HTTP_HEADERS,
/// AWS_ENDPOINT_URL, AWS_NO_SIGN_REQUEST, CURL_CA_BUNDLE), so the openers of this process and of
/// its scan workers see them; nothing of them reaches the index or a message.
void AddRemoteFlags(CLI::App* cmd);

/// Options every view-reading command takes: --zarr-format, --codecs and --shards; serving ones also
/// --revalidate.
struct ViewFlags {
  int zarr_format = 2;
  std::string codecs = "compat";
  std::string shards = "none";    ///< ViewOptions::shards: none, auto or a shape (ParseShardingSpec)
  double revalidate_seconds = 0;  ///< ViewOptions::revalidate_seconds
  /// Adds --zarr-format, --codecs and --shards to `cmd`.
  void AddTo(CLI::App* cmd);
  /// Adds --revalidate (for a long-running server; a mount has its own, which it passes on).
  void AddRevalidateTo(CLI::App* cmd);
  /// ViewOptions with the default decoders (owned by the process, never freed).
  Result<ViewOptions> ToOptions() const;
};

/// Lists the view below `prefix` (one key per line; directories end in '/'), recursively if asked.
/// With `long_format`, each line starts with the entry's kind (image, group, array, dir, metadata,
/// chunk, file) and its size in bytes ("-" for directories).
Status ListKeys(ZarrView& view, std::string_view prefix, bool recursive, std::ostream& out,
                bool long_format = false);

/// Writes the bytes of `key` to `out`; kNotFound when the view has no such key.
Status CatKey(ZarrView& view, std::string_view key, std::ostream& out);

/// What `info` prints.
struct InfoOptions {
  std::string path;        ///< Tree path: describe the images at or under it, without the summary.
  bool json = false;       ///< JSON instead of text (the same facts).
  bool verify = false;     ///< Also compare content fingerprints (reads up to 128 KiB a source).
  size_t image_limit = 20; ///< Most images described, depth first in name order; 0: all.
};

/// Prints the index summary (sources, series, arrays, references, bytes; stale sources: size or
/// mtime changed, and with `verify` also a changed content fingerprint), unless a path is given,
/// then each image (at most `image_limit`, with a note when there are more): name, axes with
/// sizes, scales and units, dtype, chunks, stored and served codec, channels (label, colour,
/// display window and where it came from), levels, source, scanner and state. Everything is
/// rendered by store/metadata.h as the view serves it. kNotFound for a path the index lacks.
Status PrintInfo(const std::filesystem::path& index, const InfoOptions& options, std::ostream& out);

void AddThumbnailCommand(CLI::App& app, CommandContext& ctx);
/// Draws the image at `image` of `view` (a Zarr v2 compat view) at most `size` pixels on its
/// longer side (RenderThumbnail) and writes it to `png` (replaced whole, or left alone on an
/// error); prints the level, plane and windows used to `out`.
Status WriteThumbnail(ZarrView& view, std::string_view image, const std::filesystem::path& png,
                      uint32_t size, std::ostream& out);

/// Prints "key<TAB>uri<TAB>offset<TAB>length" for every stored chunk of `array`.
Status PrintRefs(const std::filesystem::path& index, std::string_view array, std::ostream& out);

void AddSignCommand(CLI::App& app, CommandContext& ctx);
/// Seconds in a duration such as "90s", "30m", "2h", "7d" or "1h30m" (a bare number: seconds).
/// kInvalidArgument when malformed, zero, or over ten years.
Result<int64_t> ParseDuration(std::string_view text);
/// Prints `base_url` + the signed path (cli/access/url_signer.h) that reads `prefix` (a tree path;
/// it must exist in the index) and everything under it until `now` + `expires_in`, creating the
/// index's signing key (INDEX.serve-key, mode 0600) on first use; the expiry goes to `err`.
Status SignUrl(const std::filesystem::path& index, std::string_view prefix,
               std::string_view expires_in, std::string_view base_url, int64_t now,
               std::ostream& out, std::ostream& err);

void AddRmCommand(CLI::App& app, CommandContext& ctx);
/// Removes the files whose group is each of `paths` (tree paths) or lies under it, one
/// transaction per path, printing what each removed; a path that names no file or folder is
/// reported on `err` and the others are still removed (the result is then an error).
Status RemoveTreePaths(const std::filesystem::path& index, const std::vector<std::string>& paths,
                       std::ostream& out, std::ostream& err);

void AddRelocateCommand(CLI::App& app, CommandContext& ctx);
/// Rewrites the URI of every source at or under `old_prefix` (a local path or a URI; whole path
/// components) to lie under `new_prefix`, each after ProbeSource at the new URI gives the indexed
/// size and fingerprint; its generation becomes the new one. A source failing the check stays at
/// its old URI, named on `err` with the reason (the result is then an error). Pages and commits
/// in batches.
Status RelocateSources(const std::filesystem::path& index, std::string_view old_prefix,
                       std::string_view new_prefix, std::ostream& out, std::ostream& err,
                       const SourceOpeners& openers);

}  // namespace refzarr
