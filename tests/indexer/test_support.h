// Shared fixtures for indexer tests: generated samples in a temporary folder.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace refzarr::testing {

/// A fresh temporary folder removed at destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& tag)
      : path_(std::filesystem::temp_directory_path() /
              ("refzarr_" + tag + "_" + std::to_string(getpid()) + "_" + std::to_string(counter_++))) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

/// Writes the generated TIFF samples into `dir` (the generator is the samples/ program).
inline void WriteSamples(const std::filesystem::path& dir) {
  std::string cmd = std::string(REFZARR_SAMPLES_BIN) + " " + dir.string() + " -q";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

}  // namespace refzarr::testing
