// The catalogue of generated sample files: what each file contains (as a TiffFileSpec) and what a
// reader such as tifffile should see in it (series, axes, shapes, checksums), for the manifest.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "samples/tiff_sample_writer.h"

namespace refzarr::samples {

/// One resolution level of an expected series.
struct LevelExpect {
  std::vector<uint64_t> shape;    ///< Elements per axis, in the series' axes order.
  std::optional<uint32_t> crc32;  ///< CRC-32 of the little-endian C-order pixels; none if lossy.
};

/// A series as tifffile (2023.2) should report it. `axes` and `shape` are unsqueezed; the checker
/// drops length-1 axes other than Y and X, as tifffile does.
struct SeriesExpect {
  std::string axes;                 ///< tifffile axes codes, e.g. "TZCYX", "IYX", "YXS".
  std::string dtype;                ///< numpy name.
  std::vector<LevelExpect> levels;  ///< Level 0 is full resolution.
  std::string name;                 ///< Series name (SVS kind, OME Image Name); empty if none.
};

/// How a deliberately broken file is made from its written form.
enum class Damage {
  kNone,
  kTruncateHalf,      ///< Cut to half its size: the only IFD (written last) is gone.
  kCutBeforeLastIfd,  ///< Cut one byte before the last IFD: the previous IFD points past EOF.
};

/// One file of the sample set.
struct Sample {
  std::string path;    ///< Relative to the output folder, '/'-separated.
  std::string covers;  ///< One line: what this file exercises.
  TiffFileSpec file;
  std::vector<SeriesExpect> series;
  Damage damage = Damage::kNone;
};

/// Builds the whole catalogue (deterministic; about 60 files, a few MB).
std::vector<Sample> BuildCatalogue();

/// The manifest entry of one written sample: file facts, per-page shapes and checksums, series.
nlohmann::json ManifestEntry(const Sample& sample);

}  // namespace refzarr::samples
