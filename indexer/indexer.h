// The indexer: walks files and folders, scans every recognised file in parallel, and commits each
// file's references to the store in one transaction.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "formats/core/scanner.h"
#include "formats/core/source.h"
#include "formats/core/status.h"
#include "indexer/file_sequence.h"
#include "indexer/labels.h"
#include "indexer/progress.h"
#include "indexer/scan_runner.h"

namespace refzarr {

/// One task's part of a sharded run (`refzarr index --shard K/N`): `count` tasks index the same
/// inputs, each only the files of its shard, into its own index; `refzarr merge` combines them.
struct ShardSpec {
  uint32_t index = 0;  ///< This task's shard, 0-based (the CLI's K is 1-based: index = K - 1).
  uint32_t count = 0;  ///< Shards in the run; 0: not sharded (every file is indexed).
  bool operator==(const ShardSpec&) const = default;
};

/// The shard (0-based, below `count` > 0) of the file placed at `tree_path` (its group path in
/// the virtual tree, relative to the index's root, as IndexedFile::group): XXH3-64 (seed 0) of
/// the path's bytes, modulo `count`. Stable across runs, machines and versions of refzarr (the
/// docs promise it: tasks agree without talking), and independent of the order of inputs.
uint32_t ShardOf(std::string_view tree_path, uint32_t count);

/// "K/N" (1-based K, as in the CLI and docs/cluster.md) of `shard`.
std::string ShardName(const ShardSpec& shard);

struct IndexOptions {
  unsigned threads = 0;       ///< Scanner threads; 0: one per core.
  bool force = false;         ///< Re-scan files whose size and mtime did not change.
  /// Verified mode (docs/verified.md): after each file's scan, read every chunk it references
  /// once, in file order, and record its CRC-32C with the reference; every read through a view
  /// then checks it. Files found unchanged keep what they were indexed with (`force` re-reads
  /// them).
  bool checksums = false;
  /// Receives the run's progress after every file (and Done at the end); not owned. Given one,
  /// the run also counts the files it will look at, with a second walk of local inputs beside
  /// its own (listing folders only; a list through `files_from_again`), so IndexProgress has a
  /// total; remote folders are not listed twice (no total then). Null: no progress, no second
  /// walk.
  ProgressSink* progress = nullptr;
  /// Set (by a signal handler, say) to stop the run at a file boundary: every file committed
  /// so far stays in the index, the files being scanned are dropped, nothing is pruned, and the
  /// report says IndexReport::stopped. Re-running the same command goes on from there (the
  /// committed files are found unchanged). Not owned; null: the run is not stopped.
  const std::atomic<bool>* stop = nullptr;
  /// Chunk references a file being scanned may hold in memory (32 bytes each); beyond this they
  /// are sorted into a temporary file and merged back when the file is committed, so a file of
  /// billions of chunks indexes in bounded memory.
  uint64_t refs_in_memory = 1u << 20;
  /// Keep an IndexedFile per file in IndexReport::files and every warning in ::warnings (the JSON
  /// report); false keeps counts only (failures and warnings still go to `log`), so a run over
  /// millions of files holds no per-file state.
  bool file_list = true;
  /// More inputs, read from this stream as the walk reaches them (never held in memory, so a
  /// list of millions of paths costs no more than one): one path a line (a trailing '\r' is
  /// stripped, empty lines are ignored), or NUL-separated with `files_from_null`. Listed paths are
  /// inputs like the given ones (files, or folders walked recursively), relative to the working
  /// directory, read after them, and placed like them under the root (`root`, which a new index
  /// given only a list must name). Unlike a
  /// given path, a listed one that does not exist fails alone instead of stopping the run, and
  /// files gone from a listed folder are not removed from the index. Not owned; null: no list.
  std::istream* files_from = nullptr;
  bool files_from_null = false;  ///< The `files_from` list is NUL-separated (find -print0).
  /// The same list once more, from its start, for the progress total only (a list in a file can
  /// be read twice, standard input cannot): the counting walk reads it beside the run. Not
  /// owned; null: a run with a list has no total.
  std::istream* files_from_again = nullptr;
  /// Files and folders not indexed, as fnmatch(3) globs: a glob with a '/' is matched against the
  /// path relative to its input (FNM_PATHNAME: '*' stops at '/'), one without against the base
  /// name, inputs' own included. An excluded folder is not read; an excluded file is counted as
  /// skipped.
  std::vector<std::string> exclude;
  /// Also index hidden files and folders (names starting with '.': .snapshot, .DS_Store, ._x.tif
  /// AppleDouble files) found in folders. Without it they are passed over (a hidden file is
  /// counted as skipped, a hidden folder is not read); an input named explicitly is always indexed.
  bool hidden = false;
  /// The folder every tree path is relative to, recorded in the index on its first run (meta
  /// "root"). Empty: the recorded one; on a new index the single folder given, the single file
  /// given (served as the root), else the deepest common folder of the inputs. A later run with
  /// another root is an error; inputs outside the root are failed with a message naming --as.
  std::filesystem::path root;
  /// Place the single input at this tree path instead of its path relative to the root (a folder:
  /// its files under it). For sources outside the root (another disk, a mirror).
  std::string as;
  /// Index only the files of this shard: a file found or listed goes on to be scanned when
  /// ShardOf(its tree path) is `shard.index`, else it is passed over unopened (counted in
  /// IndexReport::other_shards). The unit is the file the indexer places: a scanned file brings
  /// its companions (multi-file OME members, HDF5 external and VDS sources, BDV XML) whatever
  /// their shards, exactly as an unsharded run does, so each group lands whole in one shard. The
  /// index records its shard (meta "shard") on its first run; a later run with another shard, or
  /// without one, is an error; a run in progress or stopped is marked (meta "shard_run"
  /// "incomplete") so that `merge` refuses it until the task is re-run to the end.
  ShardSpec shard;
  /// File sequences indexed as one image each (indexer/file_sequence.h): in every folder walked,
  /// the files each rule matches become one image placed at the sequence's name in that folder,
  /// its chunks referencing the files (the first is the image's source, the others its
  /// companions). Inputs named on the command line or listed (files_from) are files, never
  /// members. Empty: every file is its own group.
  std::vector<StackRule> stacks;
  /// How files are scanned when the scans run in this process (no `runner`); an isolated runner
  /// is given its workers' settings itself (the CLI passes scan-worker --no-data-windows).
  ScanSettings scan;
  /// Scanners to use (the indexer sniffs with them); null: DefaultScanners().
  const std::vector<std::unique_ptr<Scanner>>* scanners = nullptr;
  /// Decoders that judge whether an array can be served (CheckServable); null: DefaultDecoders().
  const std::vector<std::unique_ptr<ChunkDecoder>>* decoders = nullptr;
  /// Runs each scan (in a crash-isolated worker: MakeIsolatedScanRunner); null: scans run in the
  /// indexing process itself with `scanners`, `decoders` and `openers`. Not owned.
  ScanRunner* runner = nullptr;
  /// Opens and stats the sources and their companions by URI scheme (the runner, when given,
  /// opens them with its own); not owned. Null: LocalSourceOpeners().
  const SourceOpeners* openers = nullptr;
  /// Label images paired with the images they segment by name (indexer/labels.h,
  /// ParseLabelRules): a label file a rule names next to an image file is scanned with it and
  /// served under the image's `labels/` group. Empty: no pairing.
  std::vector<LabelRule> labels;
};

/// One file the indexer looked at.
struct IndexedFile {
  std::string path;    ///< Local path, or the URI of a remote source.
  std::string group;   ///< Its group path in the tree.
  std::string outcome; ///< "indexed", "unchanged", "failed", "skipped".
  std::string scanner;
  std::string error;
  uint64_t chunks = 0;
  uint64_t arrays = 0;
  /// Arrays of this file that are not served (ScanSink::RefuseArray): path in the file, reason.
  std::vector<std::pair<std::string, std::string>> refused;
};

struct IndexReport {
  uint64_t indexed = 0, unchanged = 0, failed = 0, skipped = 0;
  uint64_t removed = 0;  ///< Files indexed before under an input folder, no longer on disk.
  /// Files found or listed that belong to other shards (IndexOptions::shard), not looked at.
  uint64_t other_shards = 0;
  /// The run was stopped (IndexOptions::stop) before it looked at every file.
  bool stopped = false;
  uint64_t chunks = 0, arrays = 0;
  uint64_t refused = 0;  ///< Arrays refused at index time, over all files.
  double seconds = 0;
  std::vector<IndexedFile> files;
  std::vector<std::string> warnings;
};

/// Indexes `inputs` (files, and folders recursively; or URIs: https://host/a.tif, s3://bucket/key,
/// and s3://bucket/prefix/ for every object under a prefix), then those of `options.files_from`,
/// into the
/// index at `index` (created if missing). Every file goes to its path relative to the index's
/// root (IndexOptions::root; recorded by the first run); an input outside it fails, named.
/// Files indexed earlier under a given input folder that are gone from it are removed from the
/// index. Each failure is written to `log` as "index <file>: <reason>" and recorded in the index;
/// the rest is indexed. A file no scanner
/// recognises fails when it was named as an input or has an image file extension
/// (ImageExtension); other such files found in folders are skipped and counted. Errors only for
/// what stops the whole run (the index cannot be opened or written, a given input does not exist,
/// no input was given or listed, the list cannot be read).
Result<IndexReport> IndexPaths(const std::vector<std::filesystem::path>& inputs,
                               const std::filesystem::path& index, const IndexOptions& options,
                               std::ostream& log);

/// Whether `path` has the extension of an image file refzarr is expected to read (.tif .tiff .btf
/// .tf8 .svs .ome .h5 .hdf5 .he5 .ims .nwb .nc .emd, any case): one that no scanner recognises is
/// a failure, not a skip.
bool ImageExtension(const std::filesystem::path& path);

}  // namespace refzarr
