// MemoryOpener: sources of the "mem" scheme, files held in memory by URI, standing in for a remote
// store in tests of scanners that open siblings by URI. Records every URI it is asked to open.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "formats/core/byte_source.h"
#include "formats/core/source.h"

namespace refzarr::testing {

class MemoryOpener : public SourceOpener {
 public:
  std::map<std::string, std::vector<std::byte>> objects;
  mutable std::vector<std::string> opened;
  /// Wraps every source opened (to count or fail its reads); null: none.
  std::function<std::unique_ptr<ByteSource>(std::unique_ptr<ByteSource>)> wrap;

  std::string_view Scheme() const override { return "mem"; }
  Result<SourceStat> Stat(std::string_view uri) const override {
    ASSIGN_OR_RETURN(auto source, Open(uri));
    return source->Stat();
  }
  Result<std::unique_ptr<ByteSource>> Open(std::string_view uri) const override {
    opened.emplace_back(uri);
    auto it = objects.find(std::string(uri));
    if (it == objects.end()) return NotFoundError(std::string(uri) + ": no such object");
    std::unique_ptr<ByteSource> source = MakeMemorySource(it->second, std::string(uri));
    return wrap ? wrap(std::move(source)) : std::move(source);
  }
};

}  // namespace refzarr::testing
