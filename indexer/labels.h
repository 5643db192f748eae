// Label images paired with the images they segment (OME-NGFF "labels"), by name rules.
//
// `refzarr index --labels '{name}_mask.tif'` makes "a_mask.tif", next to "a.tif", the label image
// "mask" of a.tif's first series: served under "<series>/labels/mask" with `labels` and
// `image-label` metadata, its chunks referencing the label file, which becomes a companion of the
// image file (probed and checked like a multi-file OME member). docs/ome.md describes the rules.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "formats/core/recording_sink.h"
#include "formats/core/source.h"
#include "formats/core/status.h"
#include "indexer/scan_runner.h"

namespace refzarr {

/// One pairing rule: `pattern` names the label file relative to the image's folder, `{name}`
/// standing for the image's file name without its extension (and a ".ome" before it); `label`
/// is the name of the label image under `labels/`.
struct LabelRule {
  std::string pattern;
  std::string label;
};

/// The rules `default` stands for: {name}_mask.tif, {name}_labels.tif, masks/{name}.tif.
std::vector<std::string> DefaultLabelPatterns();

/// Parses --labels values: each a pattern with exactly one `{name}` (the label's name is what is
/// left without `{name}`, the extension and separators: "mask", "labels", "masks"), or
/// `default`. kInvalidArgument naming the pattern: no or several `{name}`, an empty label name,
/// an absolute path, two rules giving one label name. HDF5 dataset rules ("h5:/raw=/seg") are
/// kUnsupported (not implemented yet).
Result<std::vector<LabelRule>> ParseLabelRules(const std::vector<std::string>& values);

/// The file name `{name}` stands for: "a" for "a.tif", "a.ome.tif", "a.tiff".
std::string LabelStem(std::string_view file_name);

/// Grafts the label image of `label` (its first image, its arrays and chunks; the label file
/// `label_uri` and its companions become sources of `image`) under the first image of `image`,
/// as `<image>/labels/<name>`, and lists it in `<image>/labels`'s `labels` attribute.
/// kInvalidArgument naming both files: the label's dtype is not an integer; no level of the
/// image has the label's (t, z, y, x) shape, or its channel count is neither 1 nor the image's;
/// a file without an image.
Status GraftLabels(ScannedFile& image, std::string_view image_uri, const ScannedFile& label,
                   std::string_view label_uri, const std::string& name);

/// Replays a recording into `sink` (sources, groups, images, arrays with their chunks, files,
/// warnings, refusals), as if the scan that made it had scanned into `sink`.
Status ReplayScan(const ScannedFile& scan, ScanSink& sink);

/// A runner that scans each file with `inner` and, when a rule's label file exists next to it
/// (stat through `openers`), scans that too (with the scanner "tiff") and grafts it
/// (GraftLabels) before replaying the result into the caller's sink. A label that does not fit
/// fails the image file with the reason. `inner` and `openers` are not owned.
std::unique_ptr<ScanRunner> MakeLabelPairingRunner(ScanRunner& inner, std::vector<LabelRule> rules,
                                                   const SourceOpeners& openers);

}  // namespace refzarr
