// refzarr-samples OUTDIR: writes the deterministic sample TIFFs and OUTDIR/manifest.json.
#include <tiffio.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include "formats/core/status.h"
#include "samples/sample_catalogue.h"
#include "samples/tiff_sample_writer.h"

namespace refzarr::samples {
namespace {

namespace fs = std::filesystem;

// Offset of the last top-level IFD of a file libtiff just wrote.
Result<uint64_t> LastIfdOffset(const fs::path& path) {
  TIFFSetErrorHandler(nullptr);
  std::unique_ptr<TIFF, void (*)(TIFF*)> tif(TIFFOpen(path.string().c_str(), "r"), TIFFClose);
  if (!tif) return IoError("damage " + path.string() + ": libtiff cannot reopen it");
  uint64_t offset = TIFFCurrentDirOffset(tif.get());
  while (TIFFReadDirectory(tif.get())) offset = TIFFCurrentDirOffset(tif.get());
  return offset;
}

Status ApplyDamage(const fs::path& path, Damage damage) {
  std::error_code ec;
  const uint64_t size = fs::file_size(path, ec);
  if (ec) return IoError("damage " + path.string() + ": " + ec.message());
  uint64_t keep = size;
  if (damage == Damage::kTruncateHalf) keep = size / 2;
  if (damage == Damage::kCutBeforeLastIfd) {
    ASSIGN_OR_RETURN(uint64_t offset, LastIfdOffset(path));
    keep = offset - 1;
  }
  fs::resize_file(path, keep, ec);
  if (ec) return IoError("damage " + path.string() + ": " + ec.message());
  return OkStatus();
}

Status WriteAll(const fs::path& out_dir, bool quiet) {
  nlohmann::json manifest;
  manifest["generator"] = "refzarr-samples";
  manifest["files"] = nlohmann::json::array();
  const std::vector<Sample> samples = BuildCatalogue();
  uint64_t bytes = 0;
  for (const Sample& s : samples) {
    const fs::path path = out_dir / s.path;
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    if (ec) return IoError("create " + path.parent_path().string() + ": " + ec.message());
    RETURN_IF_ERROR(WriteTiffFile(path, s.file));
    if (s.damage != Damage::kNone) RETURN_IF_ERROR(ApplyDamage(path, s.damage));
    nlohmann::json entry = ManifestEntry(s);
    entry["size_bytes"] = fs::file_size(path);
    bytes += entry["size_bytes"].get<uint64_t>();
    manifest["files"].push_back(std::move(entry));
  }
  const fs::path manifest_path = out_dir / "manifest.json";
  std::ofstream m(manifest_path);
  m << manifest.dump(1) << "\n";
  m.close();
  if (!m) return IoError("write " + manifest_path.string() + ": failed");
  if (!quiet) {
    std::cout << "wrote " << samples.size() << " sample files (" << bytes << " bytes) and "
              << manifest_path.string() << "\n";
  }
  return OkStatus();
}

// The README table, regenerated from the catalogue so the two never disagree.
void PrintMarkdown() {
  std::cout << "| file | covers |\n| --- | --- |\n";
  for (const Sample& s : BuildCatalogue())
    std::cout << "| `" << s.path << "` | " << s.covers << " |\n";
}

}  // namespace
}  // namespace refzarr::samples

int main(int argc, char** argv) {
  CLI::App app{"Writes refzarr's deterministic sample TIFFs and a manifest.json describing them."};
  std::string out_dir;
  bool markdown = false, quiet = false;
  app.add_option("OUTDIR", out_dir, "folder to write into (created if missing)");
  app.add_flag("--markdown", markdown, "print the README table of samples and exit");
  app.add_flag("-q,--quiet", quiet, "print nothing on success");
  CLI11_PARSE(app, argc, argv);
  try {
    if (markdown) {
      refzarr::samples::PrintMarkdown();
      return 0;
    }
    if (out_dir.empty()) {
      std::cerr << "refzarr-samples: OUTDIR is required\n" << app.help();
      return 2;
    }
    const refzarr::Status status = refzarr::samples::WriteAll(out_dir, quiet);
    if (!status.ok()) {
      std::cerr << "refzarr-samples: " << status.message() << "\n";
      return 1;
    }
  } catch (const std::exception& e) {
    std::cerr << "refzarr-samples: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
