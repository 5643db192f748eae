#include "indexer/file_sequence.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <numeric>
#include <set>

#include "formats/core/source.h"

namespace refzarr {
namespace {

// A pattern cut into its literal parts and fields: literals[i] comes before fields[i]; the last
// literal ends the name. fields[i] is an index into kStackAxes.
struct Parsed {
  std::vector<std::string> literals;
  std::vector<int> fields;
};

int AxisOf(std::string_view field) {
  for (int a = 0; a < 3; ++a) {
    if (field.size() == 1 && field[0] == kStackAxes[a]) return a;
  }
  return -1;
}

Result<Parsed> Parse(std::string_view pattern) {
  Parsed p;
  std::string literal;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] != '{') {
      literal += pattern[i];
      continue;
    }
    const size_t close = pattern.find('}', i);
    if (close == std::string_view::npos) {
      return InvalidArgumentError("--stack '" + std::string(pattern) + "': '{' without '}'");
    }
    const std::string_view field = pattern.substr(i + 1, close - i - 1);
    const int axis = AxisOf(field);
    if (axis < 0) {
      return InvalidArgumentError("--stack '" + std::string(pattern) + "': unknown field {" +
                                  std::string(field) + "} (the fields are {t}, {c} and {z})");
    }
    if (std::find(p.fields.begin(), p.fields.end(), axis) != p.fields.end()) {
      return InvalidArgumentError("--stack '" + std::string(pattern) + "': {" +
                                  std::string(field) + "} appears twice");
    }
    if (!p.fields.empty() && literal.empty()) {
      return InvalidArgumentError("--stack '" + std::string(pattern) +
                                  "': two fields side by side cannot be told apart");
    }
    p.literals.push_back(std::move(literal));
    literal.clear();
    p.fields.push_back(axis);
    i = close;
  }
  p.literals.push_back(std::move(literal));
  if (p.fields.empty()) {
    return InvalidArgumentError("--stack '" + std::string(pattern) +
                                "': no field ({t}, {c} or {z}) to stack along");
  }
  return p;
}

// The numbers of `name` in the pattern's fields, or nullopt when it does not match.
std::optional<std::array<std::optional<uint64_t>, 3>> Match(const Parsed& p, std::string_view name) {
  std::array<std::optional<uint64_t>, 3> out;
  size_t at = 0;
  for (size_t i = 0; i < p.fields.size(); ++i) {
    if (name.substr(at, p.literals[i].size()) != p.literals[i]) return std::nullopt;
    at += p.literals[i].size();
    size_t end = at;
    while (end < name.size() && std::isdigit(static_cast<unsigned char>(name[end]))) ++end;
    if (end == at || end - at > 18) return std::nullopt;
    out[p.fields[i]] = std::stoull(std::string(name.substr(at, end - at)));
    at = end;
  }
  if (name.substr(at) != p.literals.back()) return std::nullopt;
  return out;
}

std::string Trimmed(std::string s) {
  while (!s.empty() && std::string_view("_-. ").find(s.back()) != std::string_view::npos) s.pop_back();
  return s;
}

// The axis the letters before a number name (their last word), or -1.
int AxisNamedBy(std::string_view before) {
  size_t start = before.size();
  while (start > 0 && std::isalpha(static_cast<unsigned char>(before[start - 1]))) --start;
  std::string word(before.substr(start));
  for (char& ch : word) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  static const std::map<std::string, int, std::less<>> kWords = {
      {"t", 0},       {"tp", 0},         {"time", 0}, {"timepoint", 0}, {"c", 1},
      {"ch", 1},      {"channel", 1},    {"w", 1},    {"wavelength", 1}, {"z", 2},
      {"slice", 2},   {"plane", 2},      {"focal", 2}};
  auto it = kWords.find(word);
  return it == kWords.end() ? -1 : it->second;
}

// The text before the first field, without the word that names its axis ("scan_t{t}" gives
// "scan") and trailing separators; "stack" when nothing is left.
std::string DefaultName(const Parsed& p) {
  std::string text = p.literals.front();
  if (AxisNamedBy(text) == p.fields.front()) {
    while (!text.empty() && std::isalpha(static_cast<unsigned char>(text.back()))) text.pop_back();
  }
  text = Trimmed(std::move(text));
  return text.empty() ? "stack" : text;
}

// A name cut into text and digit runs: parts alternate, starting with text (maybe empty).
std::vector<std::string> Runs(std::string_view name) {
  std::vector<std::string> runs(1);
  bool digits = false;
  for (char ch : name) {
    const bool d = std::isdigit(static_cast<unsigned char>(ch)) != 0;
    if (d != digits) {
      runs.emplace_back();
      digits = d;
    }
    runs.back() += ch;
  }
  return runs;
}

// The patterns `auto` finds among `names` (those not taken): for each set of names with the same
// text runs, the digit runs that vary become fields when each can be told its axis.
std::vector<std::string> AutoPatterns(std::span<const std::string> names,
                                      const std::vector<bool>& taken) {
  std::map<std::vector<std::string>, std::vector<std::vector<std::string>>> sets;
  for (size_t i = 0; i < names.size(); ++i) {
    if (taken[i]) continue;
    std::vector<std::string> runs = Runs(names[i]);
    std::vector<std::string> text;
    for (size_t r = 0; r < runs.size(); r += 2) text.push_back(runs[r]);
    text.push_back(std::to_string(runs.size()));  // the same count of digit runs
    sets[text].push_back(std::move(runs));
  }
  std::vector<std::string> patterns;
  for (const auto& [text, members] : sets) {
    if (members.size() < 2) continue;
    const std::vector<std::string>& first = members.front();
    std::vector<size_t> varying;
    for (size_t r = 1; r < first.size(); r += 2) {
      for (const auto& m : members) {
        if (std::stoull(m[r].substr(0, 18)) != std::stoull(first[r].substr(0, 18))) {
          varying.push_back(r);
          break;
        }
      }
    }
    if (varying.empty() || varying.size() > 3) continue;
    std::vector<int> axes;
    for (size_t r : varying) axes.push_back(AxisNamedBy(first[r - 1]));
    if (varying.size() == 1 && axes[0] < 0) axes[0] = 2;
    std::set<int> distinct(axes.begin(), axes.end());
    if (distinct.count(-1) || distinct.size() != axes.size()) continue;
    std::string pattern;
    size_t v = 0;
    for (size_t r = 0; r < first.size(); ++r) {
      if (v < varying.size() && varying[v] == r) {
        pattern += std::string("{") + kStackAxes[axes[v]] + "}";
        ++v;
      } else {
        pattern += first[r];
      }
    }
    patterns.push_back(std::move(pattern));
  }
  return patterns;
}

// The sequence of the names `pattern` matches among those not taken (marking them), or nullopt.
std::optional<Sequence> Collect(const Parsed& p, const std::string& pattern,
                                std::span<const std::string> names, std::vector<bool>& taken) {
  struct Hit {
    size_t index;
    std::array<std::optional<uint64_t>, 3> numbers;
  };
  std::vector<Hit> hits;
  for (size_t i = 0; i < names.size(); ++i) {
    if (taken[i]) continue;
    if (auto m = Match(p, names[i])) hits.push_back({i, *m});
  }
  if (hits.empty()) return std::nullopt;
  Sequence s;
  s.pattern = pattern;
  for (int a = 0; a < 3; ++a) {
    if (std::find(p.fields.begin(), p.fields.end(), a) == p.fields.end()) continue;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (const Hit& h : hits) {
      lo = std::min(lo, *h.numbers[a]);
      hi = std::max(hi, *h.numbers[a]);
    }
    uint64_t step = 0;
    for (const Hit& h : hits) step = std::gcd(step, *h.numbers[a] - lo);
    if (step == 0) step = 1;
    s.first[a] = lo;
    s.step[a] = step;
    s.extent[a] = (hi - lo) / step + 1;
  }
  for (const Hit& h : hits) {
    taken[h.index] = true;
    SequenceMember m;
    m.name = names[h.index];
    for (int a = 0; a < 3; ++a) {
      if (h.numbers[a]) m.position[a] = (*h.numbers[a] - s.first[a]) / s.step[a];
    }
    s.members.push_back(std::move(m));
  }
  std::stable_sort(s.members.begin(), s.members.end(),
                   [](const SequenceMember& a, const SequenceMember& b) { return a.position < b.position; });
  for (size_t i = 1; i < s.members.size(); ++i) {
    if (s.members[i].position == s.members[i - 1].position) {
      s.problem = "'" + s.members[i - 1].name + "' and '" + s.members[i].name +
                  "' are the same plane of '" + pattern + "' (" + s.Describe(s.members[i].position) +
                  ")";
      break;
    }
  }
  return s;
}

// JSON of an array's description without its attributes: what members must share.
nlohmann::json Shape(const ArrayDesc& a) {
  nlohmann::json j = a.ToJson();
  j.erase("attributes");
  return j;
}

// The first key where two JSON objects differ, as "key A vs B": the shape, data type and chunk
// shape first, as a user would compare them, then the rest (the encoding, the fill value...).
std::string FirstDifference(const nlohmann::json& a, const nlohmann::json& b) {
  for (const char* key : {"shape", "dtype", "chunks"}) {
    if (a.contains(key) && b.contains(key) && a.at(key) != b.at(key)) {
      return std::string(key) + " " + a.at(key).dump() + " vs " + b.at(key).dump();
    }
  }
  for (const auto& [key, value] : a.items()) {
    if (!b.contains(key) || b.at(key) != value) {
      return key + " " + value.dump() + " vs " + (b.contains(key) ? b.at(key).dump() : "none");
    }
  }
  for (const auto& [key, value] : b.items()) {
    if (!a.contains(key)) return key + " none vs " + value.dump();
  }
  return "";
}

const ScannedFile::Group* FirstImage(const ScannedFile& scan) {
  for (const ScannedFile::Group& g : scan.groups) {
    if (g.image) return &g;
  }
  return nullptr;
}

std::string JoinPath(const std::string& a, const std::string& b) {
  return a.empty() ? b : b.empty() ? a : a + "/" + b;
}

}  // namespace

Result<StackRule> ParseStackRule(std::string_view text) {
  StackRule rule;
  if (text == "auto") {
    rule.automatic = true;
    return rule;
  }
  const size_t eq = text.find('=');
  const size_t brace = text.find('{');
  if (eq != std::string_view::npos && (brace == std::string_view::npos || eq < brace)) {
    rule.name = std::string(text.substr(0, eq));
    text = text.substr(eq + 1);
    if (rule.name.empty()) return InvalidArgumentError("--stack: empty name before '='");
  }
  rule.pattern = std::string(text);
  if (rule.pattern.find('/') != std::string::npos || rule.name.find('/') != std::string::npos) {
    return InvalidArgumentError("--stack '" + rule.pattern +
                                "': a pattern matches file names in a folder; it has no '/'");
  }
  if (rule.name == "." || rule.name == "..") return InvalidArgumentError("--stack: bad name");
  RETURN_IF_ERROR(Parse(rule.pattern).status());
  return rule;
}

uint64_t Sequence::Missing() const {
  return extent[0] * extent[1] * extent[2] - members.size();
}

std::string Sequence::Describe(const std::array<uint64_t, 3>& position) const {
  std::string out;
  for (int a = 0; a < 3; ++a) {
    if (pattern.find(std::string("{") + kStackAxes[a] + "}") == std::string::npos) continue;
    if (!out.empty()) out += ' ';
    out += std::string(1, kStackAxes[a]) + "=" + std::to_string(first[a] + position[a] * step[a]);
  }
  return out;
}

std::vector<Sequence> FindSequences(std::span<const StackRule> rules,
                                    std::span<const std::string> names,
                                    std::span<const std::string> other_entries,
                                    std::vector<bool>& taken) {
  taken.assign(names.size(), false);
  std::vector<Sequence> out;
  std::set<std::string> used(names.begin(), names.end());
  used.insert(other_entries.begin(), other_entries.end());
  auto add = [&](const std::string& pattern, const std::string& given_name) {
    Result<Parsed> p = Parse(pattern);
    if (!p.ok()) return;  // rules were parsed already; auto patterns always parse
    std::optional<Sequence> s = Collect(*p, pattern, names, taken);
    if (!s) return;
    std::string name = given_name.empty() ? DefaultName(*p) : given_name;
    if (used.count(name)) name += ".stack";
    used.insert(name);
    s->name = std::move(name);
    out.push_back(std::move(*s));
  };
  for (const StackRule& rule : rules) {
    if (!rule.automatic) {
      add(rule.pattern, rule.name);
      continue;
    }
    for (const std::string& pattern : AutoPatterns(names, taken)) add(pattern, "");
  }
  return out;
}

Status StackBuilder::Start(const ScannedFile& scan, const ScannedFile::Group& image) {
  image_path_ = image.path;
  image_ = *image.image;
  image_.name = sequence_.name;
  for (size_t d = 0; d < image_.axes.size(); ++d) {
    for (int a = 0; a < 3; ++a) {
      if (image_.axes[d].name == std::string(1, kStackAxes[a])) axis_[a] = static_cast<int>(d);
    }
  }
  for (int a = 0; a < 3; ++a) {
    if (sequence_.extent[a] > 1 && axis_[a] < 0) {
      return InvalidArgumentError(first_uri_ + ": its image has no " +
                                  std::string(1, kStackAxes[a]) + " axis to stack along");
    }
  }
  for (const std::string& level : image_.levels) {
    Level l;
    l.path = JoinPath(image_path_, level);
    const ScannedFile::Array* array = scan.FindArray(l.path);
    auto refused = std::find_if(scan.refused.begin(), scan.refused.end(),
                                [&](const ScannedFile::Refusal& r) { return r.path == l.path; });
    if (!array) {
      if (refused == scan.refused.end()) {
        return InvalidArgumentError(first_uri_ + ": level " + l.path + " has no array");
      }
      RETURN_IF_ERROR(out_.RefuseArray(l.path, first_uri_ + ": " + refused->reason));
      l.refused = true;
      levels_.push_back(std::move(l));
      continue;
    }
    l.member = array->desc;
    ArrayDesc grown = array->desc;
    for (int a = 0; a < 3; ++a) {
      if (axis_[a] < 0) continue;
      if (grown.shape[axis_[a]] != 1) {
        if (sequence_.extent[a] == 1) continue;
        return InvalidArgumentError(first_uri_ + ": its image is " +
                                    std::to_string(grown.shape[axis_[a]]) + " along " +
                                    std::string(1, kStackAxes[a]) +
                                    "; a sequence stacks files of one plane along it");
      }
      grown.shape[axis_[a]] = sequence_.extent[a];
    }
    l.member_grid = array->desc.GridShape();
    l.grid = grown.GridShape();
    ASSIGN_OR_RETURN(l.handle, out_.AddArray(l.path, grown));
    levels_.push_back(std::move(l));
  }
  for (const ScannedFile::Group& g : scan.groups) {
    if (g.path == image_path_) continue;
    if (g.path.empty() || image_path_.starts_with(g.path + "/")) {
      RETURN_IF_ERROR(out_.AddGroup(g.path, g.attributes));
    }
  }
  RETURN_IF_ERROR(out_.AddGroup(image_path_, image.attributes));
  channel_seen_.assign(axis_[1] >= 0 ? sequence_.extent[1] : 0, false);
  if (axis_[1] >= 0 && sequence_.extent[1] > 1) {
    ChannelDesc blank;
    image_.channels.assign(sequence_.extent[1], blank);
    for (uint64_t c = 0; c < sequence_.extent[1]; ++c) {
      image_.channels[c].label = "c=" + std::to_string(sequence_.first[1] + c * sequence_.step[1]);
    }
  }
  return OkStatus();
}

Status StackBuilder::Add(size_t k, std::string_view uri, const ScannedFile& scan) {
  if (k != next_ || k >= sequence_.members.size()) {
    return InternalError("stack " + sequence_.name + ": member " + std::to_string(k) + " out of order");
  }
  ++next_;
  const SequenceMember& member = sequence_.members[k];
  const ScannedFile::Group* image = FirstImage(scan);
  const std::string file = DisplaySource(uri);  // for messages
  const std::string base = UriFileName(uri);
  if (!image) return InvalidArgumentError(file + ": holds no image to stack");
  if (!scan.companions.empty()) {
    return InvalidArgumentError(file + ": references other files (" + scan.companions.front() +
                                "); a sequence stacks files that stand alone");
  }
  size_t images = 0;
  for (const ScannedFile::Group& g : scan.groups) images += g.image ? 1 : 0;
  if (images != 1) {
    return InvalidArgumentError(file + ": holds " + std::to_string(images) +
                                " images; a sequence stacks files of one image each");
  }
  if (k == 0) {
    first_uri_ = file;
    RETURN_IF_ERROR(Start(scan, *image));
  } else if (image->path != image_path_ || image->image->levels != image_.levels) {
    return InvalidArgumentError(file + " differs from " + first_uri_ + ": its image is at '" +
                                image->path + "' with " + std::to_string(image->image->levels.size()) +
                                " levels");
  }
  uint32_t source = 0;
  if (k > 0) {
    ASSIGN_OR_RETURN(source, out_.AddSource(uri));
  }
  for (Level& level : levels_) {
    if (level.refused) continue;
    const ScannedFile::Array* array = scan.FindArray(level.path);
    if (!array) {
      auto refused = std::find_if(scan.refused.begin(), scan.refused.end(),
                                  [&](const ScannedFile::Refusal& r) { return r.path == level.path; });
      std::string reason = refused != scan.refused.end()
                               ? base + ": " + refused->reason
                               : file + " has no array " + level.path;
      RETURN_IF_ERROR(out_.RefuseArray(level.path, reason));
      level.refused = true;
      continue;
    }
    if (k > 0) {
      const nlohmann::json a = Shape(level.member), b = Shape(array->desc);
      if (a != b) {
        return InvalidArgumentError(file + " differs from " + first_uri_ + " in " + level.path +
                                    ": " + FirstDifference(a, b));
      }
    }
    std::vector<uint64_t> coords;
    Status placed = VisitChunksInOrder(
        *array, [&](uint64_t index, const ChunkRef* stored, const std::vector<std::byte>* bytes) {
          coords = ChunkCoords(level.member_grid, index);
          for (int a = 0; a < 3; ++a) {
            if (axis_[a] >= 0 && sequence_.extent[a] > 1) coords[axis_[a]] = member.position[a];
          }
          const uint64_t linear = LinearChunkIndex(level.grid, coords);
          if (stored) {
            ChunkRef ref = *stored;
            ref.source = source;
            return out_.AddChunk(level.handle, linear, ref);
          }
          return out_.AddInlineChunk(level.handle, linear, *bytes);
        });
    RETURN_IF_ERROR(placed.WithContext(file));
  }
  if (axis_[1] >= 0 && sequence_.extent[1] > 1 && !channel_seen_[member.position[1]]) {
    channel_seen_[member.position[1]] = true;
    ChannelDesc& channel = image_.channels[member.position[1]];
    if (!image->image->channels.empty()) {
      const ChannelDesc& own = image->image->channels.front();
      channel.color = own.color;
      channel.window = own.window;
      channel.window_source = own.window_source;
    }
  }
  for (const std::string& w : scan.warnings) out_.Warn(base + ": " + w);
  return OkStatus();
}

Status StackBuilder::Finish() {
  if (next_ != sequence_.members.size()) {
    return InternalError("stack " + sequence_.name + ": " + std::to_string(next_) + " of " +
                         std::to_string(sequence_.members.size()) + " members added");
  }
  RETURN_IF_ERROR(out_.AddImage(image_path_, image_));
  const uint64_t missing = sequence_.Missing();
  if (missing == 0) return OkStatus();
  // The first few missing positions, in order.
  std::string list;
  size_t shown = 0, m = 0;
  for (uint64_t t = 0; t < sequence_.extent[0] && shown < 5; ++t) {
    for (uint64_t c = 0; c < sequence_.extent[1] && shown < 5; ++c) {
      for (uint64_t z = 0; z < sequence_.extent[2] && shown < 5; ++z) {
        const std::array<uint64_t, 3> p{t, c, z};
        while (m < sequence_.members.size() && sequence_.members[m].position < p) ++m;
        if (m < sequence_.members.size() && sequence_.members[m].position == p) continue;
        list += (shown ? ", " : "") + sequence_.Describe(p);
        ++shown;
      }
    }
  }
  out_.Warn("sequence '" + sequence_.pattern + "': " + std::to_string(missing) + " of " +
            std::to_string(missing + sequence_.members.size()) +
            " planes have no file and read as the fill value (" + list +
            (missing > shown ? ", ..." : "") + ")");
  return OkStatus();
}

}  // namespace refzarr
