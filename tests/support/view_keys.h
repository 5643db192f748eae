// Every key of a view with its bytes: the one "walk the whole view" helper of the tests, for
// comparing two indexes key by key (merge, rm / relocate, isolated scans, the property test).
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "store/zarr_view.h"

namespace refzarr::testing {

/// Key -> bytes. A directory is recorded as "key/" with an empty value (the root is not); a key
/// that fails to list or read is recorded with the value "error: <message>", so a comparison of
/// two walks also compares what fails.
using KeyBytes = std::map<std::string, std::string>;

/// The value prefix of a key that failed.
inline constexpr std::string_view kKeyError = "error: ";

/// Walks `view` from the root: lists every directory (List) and reads every file (Get, then
/// Materialize), metadata documents and chunks alike.
inline KeyBytes ReadAllKeys(ZarrView& view) {
  KeyBytes out;
  const std::string error(kKeyError);
  std::vector<std::string> dirs = {""};
  while (!dirs.empty()) {
    const std::string dir = std::move(dirs.back());
    dirs.pop_back();
    auto entries = view.List(dir);
    if (!entries.ok() || !*entries) {
      out[dir + "/"] = error + (entries.ok() ? "not a directory" : entries.status().message());
      continue;
    }
    for (const DirEntry& e : **entries) {
      const std::string key = dir.empty() ? e.name : dir + "/" + e.name;
      if (e.is_directory) {
        out[key + "/"] = "";
        dirs.push_back(key);
        continue;
      }
      auto value = view.Get(key);
      if (!value.ok() || !*value) {
        out[key] = error + (value.ok() ? "listed but missing" : value.status().message());
        continue;
      }
      auto bytes = view.Materialize(**value);
      out[key] = bytes.ok() ? std::move(*bytes) : error + bytes.status().message();
    }
  }
  return out;
}

/// Every key of the index at `index` seen with `options` (default: Zarr v2, pass-through, so the
/// chunks are the stored bytes, read from the sources). Fails the test when the index does not
/// open, and then returns nothing.
inline KeyBytes ReadAllKeys(const std::filesystem::path& index, ViewOptions options = [] {
  ViewOptions passthrough;
  passthrough.codecs = CodecPolicy::kPassthrough;
  return passthrough;
}()) {
  auto view = OpenZarrView(index, std::move(options));
  EXPECT_TRUE(view.ok()) << index << ": " << view.status().message();
  if (!view.ok()) return {};
  return ReadAllKeys(**view);
}

/// The keys of `keys` that failed, each with its message ("key: error: ..."), for a test message.
inline std::vector<std::string> FailedKeys(const KeyBytes& keys) {
  std::vector<std::string> out;
  for (const auto& [key, value] : keys) {
    if (value.compare(0, kKeyError.size(), kKeyError) == 0) out.push_back(key + ": " + value);
  }
  return out;
}

}  // namespace refzarr::testing
