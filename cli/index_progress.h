// The `index` command's progress displays (ProgressSink, indexer/progress.h): a status line
// redrawn on a terminal, or JSON lines for schedulers and dashboards.
#pragma once

#include <memory>
#include <ostream>
#include <string>

#include "indexer/progress.h"

namespace refzarr {

/// One status line redrawn in place ("\r", erase to the end of the line) at most 10 times a
/// second of the run's time: files done / total, bytes, rate, elapsed, ETA (when the total is
/// known). Done ends the line.
std::unique_ptr<ProgressSink> MakeTerminalProgress(std::ostream& out);

/// One JSON object a line, at most one a second of the run's time, and a last one from Done
/// with "done": true. Fields: files_done, files_total (null while unknown), indexed, unchanged,
/// failed, bytes, chunks, elapsed_s, files_per_s, bytes_per_s, eta_s (null while unknown).
std::unique_ptr<ProgressSink> MakeJsonProgress(std::ostream& out);

/// The status line's text for `p` (without "\r"), e.g. "1,204/5,000 files (24%), 1.2 GB,
/// 301 files/s, 310 MB/s, 0:04 elapsed, ETA 0:13".
std::string ProgressLine(const IndexProgress& p);

}  // namespace refzarr
