// ScanRunner: how the indexer has one file scanned. In this process, or in a crash-isolated worker
// process (indexer/scan_worker.h), so that a hostile file that crashes libtiff or libhdf5, loops or
// eats memory costs that one file and never the run.
#pragma once

#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "formats/core/scanner.h"
#include "formats/core/source.h"
#include "formats/core/status.h"

namespace refzarr {

/// How each file is scanned, wherever the scan runs.
struct ScanSettings {
  /// Give channels whose file states no display window one from the data: the 0.1/99.9 %
  /// percentiles of the image's smallest level (DisplayWindowSink; reads that level's middle
  /// plane). false: only the windows files state (OME SignificantBits, TIFF SMin/SMaxSampleValue,
  /// ImageJ, Imaris); the others get the dtype's range, and no pixel is read at index time.
  bool data_windows = true;
};

/// One source to scan: the scanner's name (Scanner::Name()), the source's URI, where results go.
struct ScanRequest {
  std::string_view scanner;
  std::string uri;
  ScanSink* sink = nullptr;
};

/// Scans files into sinks. Implementations are safe to call from several threads at once.
class ScanRunner {
 public:
  virtual ~ScanRunner() = default;
  /// Scans every request in order, as Scan does one, and returns their statuses in the same
  /// order. An isolated runner sends them to one worker at once, so small files do not each pay
  /// a round trip; one whose scan kills the worker fails alone and the rest go to a fresh one.
  virtual std::vector<Status> ScanAll(std::span<const ScanRequest> requests) {
    std::vector<Status> out;
    for (const ScanRequest& r : requests) out.push_back(Scan(r.scanner, r.uri, *r.sink));
    return out;
  }
  /// Scans the source `uri` (opened, and its companions resolved, through the runner's
  /// SourceOpeners) with the scanner named `scanner` (Scanner::Name()) into `sink`. Arrays that cannot be served are refused on the sink (ScanFileInto). The status is
  /// the scan's own (its message names the place in the file, not the file), or, for an isolated
  /// scan, why it ended ("scan killed by SIGSEGV", "scan timed out after 30 s"). After an error,
  /// what reached the sink is to be discarded.
  virtual Status Scan(std::string_view scanner, std::string_view uri, ScanSink& sink) = 0;
};

/// Opens `uri` through `openers` and scans it with `scanner` into `sink`, with a ScanContext of
/// that URI and those openers, through a gate that refuses every array CheckServable rejects with
/// `decoders` (the array is refused on `sink` with the reason). What both the in-process runner
/// and the scan worker run.
Status ScanFileInto(const Scanner& scanner, std::string_view uri, const SourceOpeners& openers,
                    std::span<const ChunkDecoder* const> decoders, ScanSink& sink,
                    const ScanSettings& settings = {});

/// The scanner of `scanners` called `name`, or nullptr.
const Scanner* FindScanner(const std::vector<std::unique_ptr<Scanner>>& scanners,
                           std::string_view name);

/// Runs scans in the calling thread, opening sources through `openers`. `scanners`, `decoders`
/// and `openers` are not owned and must outlive it.
std::unique_ptr<ScanRunner> MakeInProcessScanRunner(
    const std::vector<std::unique_ptr<Scanner>>& scanners,
    std::vector<const ChunkDecoder*> decoders,
    const SourceOpeners& openers = LocalSourceOpeners(), ScanSettings settings = {});

}  // namespace refzarr
