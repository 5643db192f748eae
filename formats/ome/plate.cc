#include "formats/ome/plate.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <map>
#include <set>

namespace refzarr {

using nlohmann::json;

namespace {

// Plates have at most a few thousand wells; a Row of 4 billion is a typo or an attack, and a
// name list that long would be the document.
constexpr uint32_t kMaxPlateAxis = 1000000;

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::string PlateAxisName(uint32_t index, const std::string& convention) {
  if (Lower(convention) == "number") return std::to_string(index + 1);
  // Bijective base 26: A..Z, AA..AZ, BA, ...
  std::string out;
  uint64_t n = static_cast<uint64_t>(index) + 1;
  while (n > 0) {
    --n;
    out.insert(out.begin(), static_cast<char>('A' + n % 26));
    n /= 26;
  }
  return out;
}

std::optional<int64_t> EpochSeconds(const std::string& text) {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, used = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &year, &month, &day, &hour, &minute,
                  &second, &used) != 6 || used != 19) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    return std::nullopt;
  }
  std::string_view rest = std::string_view(text).substr(used);
  if (!rest.empty() && rest.front() == '.') {
    rest.remove_prefix(1);
    while (!rest.empty() && std::isdigit(static_cast<unsigned char>(rest.front()))) rest.remove_prefix(1);
  }
  int64_t offset = 0;
  if (rest == "Z") {
    rest = {};
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
    int oh = 0, om = 0;
    if (std::sscanf(std::string(rest.substr(1)).c_str(), "%2d:%2d", &oh, &om) != 2) {
      return std::nullopt;
    }
    offset = (rest[0] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    rest = {};
  }
  if (!rest.empty()) return std::nullopt;
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  const int64_t seconds = static_cast<int64_t>(timegm(&tm)) - offset;
  if (seconds < 0) return std::nullopt;
  return seconds;
}

Result<std::optional<PlateLayout>> PlanPlate(const OmeDocument& doc, const std::vector<bool>& indexed,
                                             std::span<const std::string> reserved,
                                             std::vector<std::string>& warnings) {
  if (doc.plates.empty()) return std::optional<PlateLayout>();
  const OmePlate& plate = doc.plates.front();
  const std::string where = "Plate " + (plate.id.empty() ? std::string("0") : plate.id);
  for (size_t i = 1; i < doc.plates.size(); ++i) {
    warnings.push_back("OME-XML: Plate " + doc.plates[i].id + " ignored: one plate per file " +
                       "group (its images stay series)");
  }
  std::map<std::string, size_t> image_by_id;
  for (size_t i = 0; i < doc.images.size(); ++i) image_by_id.emplace(doc.images[i].id, i);
  std::map<std::string, int> acquisition_of;  // WellSample ID -> acquisition index
  for (size_t a = 0; a < plate.acquisitions.size(); ++a) {
    for (const std::string& ref : plate.acquisitions[a].well_sample_refs) {
      acquisition_of.emplace(ref, static_cast<int>(a));
    }
  }

  uint32_t rows = plate.rows.value_or(0), columns = plate.columns.value_or(0);
  for (const OmeWell& w : plate.wells) {
    if (w.row >= kMaxPlateAxis || w.column >= kMaxPlateAxis ||
        (plate.rows && w.row >= *plate.rows) || (plate.columns && w.column >= *plate.columns)) {
      return CorruptError(where + ": Well " + w.id + " at Row " + std::to_string(w.row) +
                          ", Column " + std::to_string(w.column) + " is outside the plate's " +
                          std::to_string(rows) + " x " + std::to_string(columns) + " wells");
    }
    rows = std::max(rows, w.row + 1);
    columns = std::max(columns, w.column + 1);
  }
  if (rows > kMaxPlateAxis || columns > kMaxPlateAxis) {
    return CorruptError(where + ": " + std::to_string(rows) + " x " + std::to_string(columns) +
                        " wells is not a plate");
  }

  std::string row_naming = plate.row_naming.empty() ? "letter" : plate.row_naming;
  const std::string column_naming = plate.column_naming.empty() ? "number" : plate.column_naming;
  auto taken = [&](const std::string& naming) {
    for (const OmeWell& w : plate.wells) {
      const std::string name = PlateAxisName(w.row, naming);
      if (std::find(reserved.begin(), reserved.end(), name) != reserved.end()) return name;
    }
    return std::string();
  };
  if (std::string name = taken(row_naming); !name.empty()) {
    if (Lower(row_naming) == "letter" || !taken("letter").empty()) {
      return CorruptError(where + ": row " + name + " would take the name of a group the file " +
                          "has already");
    }
    warnings.push_back("OME-XML: " + where + ": numbered row " + name + " would take the name " +
                       "of series " + name + ": rows are lettered");
    row_naming = "letter";
  }

  PlateLayout out;
  json wells = json::array();
  std::set<std::pair<uint32_t, uint32_t>> positions;
  std::set<size_t> shown;
  std::vector<uint32_t> busiest(plate.acquisitions.size(), 0);  // most fields in one well
  size_t field_count = 0;
  for (const OmeWell& w : plate.wells) {
    if (!positions.insert({w.row, w.column}).second) {
      return CorruptError(where + ": two wells at Row " + std::to_string(w.row) + ", Column " +
                          std::to_string(w.column) + " (the second is " + w.id + ")");
    }
    std::vector<const OmeWellSample*> samples;
    for (const OmeWellSample& s : w.samples) samples.push_back(&s);
    std::stable_sort(samples.begin(), samples.end(), [](const auto* a, const auto* b) {
      return a->index.value_or(UINT32_MAX) < b->index.value_or(UINT32_MAX);
    });
    const std::string path =
        PlateAxisName(w.row, row_naming) + "/" + PlateAxisName(w.column, column_naming);
    json images = json::array();
    std::vector<uint32_t> per_acquisition(plate.acquisitions.size(), 0);
    for (const OmeWellSample* s : samples) {
      const std::string label = where + ": Well " + w.id + ": WellSample " + s->id;
      auto it = image_by_id.find(s->image_ref);
      if (it == image_by_id.end()) {
        warnings.push_back("OME-XML: " + label + " names no image (ImageRef \"" + s->image_ref +
                           "\"): left out of the plate");
        continue;
      }
      if (it->second >= indexed.size() || !indexed[it->second]) {
        warnings.push_back("OME-XML: " + label + ": its image " + s->image_ref +
                           " was not indexed: left out of the plate");
        continue;
      }
      if (!shown.insert(it->second).second) {
        warnings.push_back("OME-XML: " + label + ": image " + s->image_ref +
                           " is already a field of the plate: left out");
        continue;
      }
      const std::string field = std::to_string(images.size());
      json entry = {{"path", field}};
      if (auto a = acquisition_of.find(s->id); a != acquisition_of.end()) {
        entry["acquisition"] = a->second;
        ++per_acquisition[a->second];
      }
      images.push_back(entry);
      out.fields.push_back({path + "/" + field, it->second});
    }
    if (images.empty()) continue;
    for (size_t a = 0; a < busiest.size(); ++a) busiest[a] = std::max(busiest[a], per_acquisition[a]);
    field_count = std::max(field_count, images.size());
    out.wells.push_back({path, {{"well", {{"images", images}}}}});
    wells.push_back({{"path", path}, {"rowIndex", w.row}, {"columnIndex", w.column}});
  }
  if (out.wells.empty()) {
    warnings.push_back("OME-XML: " + where + " has no well with an indexed image: no plate");
    return std::optional<PlateLayout>();
  }

  json row_list = json::array(), column_list = json::array();
  for (uint32_t r = 0; r < rows; ++r) {
    row_list.push_back({{"name", PlateAxisName(r, row_naming)}});
  }
  for (uint32_t c = 0; c < columns; ++c) {
    column_list.push_back({{"name", PlateAxisName(c, column_naming)}});
  }
  json p = {{"name", !plate.name.empty() ? plate.name : !plate.id.empty() ? plate.id : "plate"},
            {"rows", row_list},
            {"columns", column_list},
            {"wells", wells},
            {"field_count", field_count}};
  if (!plate.acquisitions.empty()) {
    json acquisitions = json::array();
    for (size_t a = 0; a < plate.acquisitions.size(); ++a) {
      const OmePlateAcquisition& acq = plate.acquisitions[a];
      json j = {{"id", a}, {"name", !acq.name.empty() ? acq.name : acq.id}};
      const uint32_t max = acq.maximum_field_count.value_or(busiest[a]);
      if (max > 0) j["maximumfieldcount"] = max;
      if (!acq.description.empty()) j["description"] = acq.description;
      if (auto t = EpochSeconds(acq.start_time)) j["starttime"] = *t;
      if (auto t = EpochSeconds(acq.end_time)) j["endtime"] = *t;
      acquisitions.push_back(j);
    }
    p["acquisitions"] = acquisitions;
  }
  out.attributes = {{"plate", p}};
  return std::optional<PlateLayout>(std::move(out));
}

}  // namespace refzarr
