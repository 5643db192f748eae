// File sequences as one image (`refzarr index --stack`). Many microscopes write one file per plane
// or per time point (pos01_t0001_c02_z045.tif); users want one 5-D image of them, not thousands
// of groups. A StackRule says which names form a sequence (a pattern with {t}, {c} and {z} fields,
// or `auto`); FindSequences groups the file names of one folder by the rules; StackBuilder joins
// the members' scans into the scan of one image whose chunks reference the members' own bytes.
// Nothing here opens a file: the indexer scans the members (crash-isolated, as any file) and
// hands their scans over.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "formats/core/model.h"
#include "formats/core/recording_sink.h"
#include "formats/core/status.h"

namespace refzarr {

/// The axes a field of a file name can stand for, in image axis order (t, c, z).
inline constexpr std::array<char, 3> kStackAxes = {'t', 'c', 'z'};

/// Which files of a folder form a sequence.
struct StackRule {
  bool automatic = false;  ///< `auto`: find the varying numeric fields (FindSequences).
  std::string name;        ///< The image's name in its folder; empty: derived from the pattern.
  /// Literal text and fields "{t}", "{c}", "{z}" (each at most once), matched against whole file
  /// names; a field matches a run of digits. Empty when automatic.
  std::string pattern;
};

/// Parses "PATTERN", "NAME=PATTERN" or "auto". kInvalidArgument naming the problem: no field, an
/// unknown or repeated field, two fields side by side ("{z}{t}" cannot be split), a '/' in the
/// pattern or the name, an empty name.
Result<StackRule> ParseStackRule(std::string_view text);

/// One file of a sequence.
struct SequenceMember {
  std::string name;                  ///< File name in the folder.
  std::array<uint64_t, 3> position{};  ///< Along t, c and z (0 on axes the sequence does not vary).
};

/// Files of one folder that form one image.
struct Sequence {
  std::string name;     ///< The image's name in the folder.
  std::string pattern;  ///< The pattern matched ("scan_t{t}_z{z}.tif"), for messages.
  /// Positions along t, c and z. A field's numbers v sit at (v - min) / step, `step` the greatest
  /// common divisor of their differences, so z1, z3, z5 are 3 planes and z1, z2, z4 are 4 (z3
  /// missing).
  std::array<uint64_t, 3> extent{1, 1, 1};
  std::array<uint64_t, 3> first{};  ///< The number at position 0 of each axis.
  std::array<uint64_t, 3> step{1, 1, 1};
  std::vector<SequenceMember> members;  ///< By position (t, then c, then z).
  /// Why the files cannot form the image (two names at one position); empty when they can.
  std::string problem;
  /// The positions no file fills (extent product - members).
  uint64_t Missing() const;
  /// The file-name numbers of `position` ("t=3 c=1 z=12"), for messages.
  std::string Describe(const std::array<uint64_t, 3>& position) const;
};

/// The sequences among `names`, the file names of one folder (sorted). For each rule in order,
/// the names no earlier rule took: a pattern makes one sequence of the names it matches (if any);
/// `auto` makes one of each set of at least two names that differ only in numeric fields, whose
/// varying fields each tell their axis by the letters before them (t, tp, time, timepoint; c, ch,
/// channel, w, wavelength; z, slice, plane, focal; case ignored), or, alone, are z. Names of
/// other sets stay files. Each name is in one sequence at most; `taken[i]` (sized like `names`)
/// is set for every name a sequence holds. A sequence's name is its rule's, else the pattern's
/// text before its first field, without the word naming that field's axis and trailing '_',
/// '-', '.', ' ' ("scan_t{t}_z{z}.tif" gives "scan"; "stack" when nothing is left), with ".stack"
/// appended when that is also the name of an entry of `names` or
/// `other_entries` (the folder's subfolders), or of an earlier sequence.
std::vector<Sequence> FindSequences(std::span<const StackRule> rules,
                                    std::span<const std::string> names,
                                    std::span<const std::string> other_entries,
                                    std::vector<bool>& taken);

/// Joins the scans of a sequence's members into `out`, the scan of one image: the members'
/// image (the first group of each scan that is an image) with the sequence's axes grown to its
/// extent, every member's chunks placed at its position and referencing the member's bytes
/// (member 0 is the scanned file, source 0; the others are companions, AddSource). Members are
/// added in order, each once, beginning with member 0. Every member must hold exactly one
/// image with the same arrays (shape, chunks, dtype, encoding, fill value) as member 0, size 1
/// on the sequence's axes, and reference no other file: otherwise kInvalidArgument naming both
/// files and the first difference. An array a member's scan refused is refused in the image.
/// Channels: one per c position, each with the label, colour and display window of the first
/// member there. Missing positions read as the fill value and are reported by Finish.
class StackBuilder {
 public:
  StackBuilder(const Sequence& sequence, ScanSink& out) : sequence_(sequence), out_(out) {}
  /// Adds the scan of member `k` (the next one), whose source is `uri` (a URI).
  Status Add(size_t k, std::string_view uri, const ScannedFile& scan);
  /// After the last member: a warning on `out` naming the missing positions.
  Status Finish();

 private:
  struct Level {
    std::string path;  // relative to the scan's root ("0/0")
    ArrayDesc member;  // as member 0 has it
    ArrayHandle handle = 0;
    bool refused = false;
    std::vector<uint64_t> member_grid, grid;
  };
  Status Start(const ScannedFile& scan, const ScannedFile::Group& image);
  const Sequence& sequence_;
  ScanSink& out_;
  size_t next_ = 0;
  std::string image_path_;
  std::string first_uri_;
  ImageDesc image_;
  std::array<int, 3> axis_{-1, -1, -1};  // dimension of t, c, z in the arrays
  std::vector<Level> levels_;
  std::vector<bool> channel_seen_;
};

}  // namespace refzarr
