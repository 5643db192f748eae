// refzarr_shape_check KIND FILE...: the document shape checker (tests/store/document_shapes.h) for
// tests in other languages. KIND is a metadata name (".zarray", ".zattrs", ".zgroup", ".zmetadata",
// "zarr.json"), "zarr.json:compat" (codecs every Zarr v3 client has) or "kerchunk". Prints one
// line per problem; exit status 1 when there is any, 2 on a usage error or unreadable file.
#include <fstream>
#include <iostream>
#include <string>

#include "tests/store/document_shapes.h"

int main(int argc, char** argv) {
  using refzarr::testing::V3Codecs;
  if (argc < 3) {
    std::cerr << "usage: refzarr_shape_check KIND FILE...\n";
    return 2;
  }
  const std::string kind = argv[1];
  int status = 0;
  for (int i = 2; i < argc; ++i) {
    std::ifstream in(argv[i], std::ios::binary);
    nlohmann::json doc = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (!in && !in.eof()) {
      std::cerr << argv[i] << ": cannot read\n";
      return 2;
    }
    refzarr::testing::Problems problems;
    if (doc.is_discarded()) {
      problems.push_back(std::string(argv[i]) + ": not JSON");
    } else if (kind == "kerchunk") {
      for (std::string& p : refzarr::testing::KerchunkProblems(doc)) {
        problems.push_back(std::string(argv[i]) + ": " + p);
      }
    } else {
      const bool compat = kind == "zarr.json:compat";
      problems = refzarr::testing::DocumentProblems(
          compat ? "zarr.json" : kind, doc, compat ? V3Codecs::kCompat : V3Codecs::kAny, argv[i]);
    }
    for (const std::string& p : problems) std::cout << p << "\n";
    if (!problems.empty()) status = 1;
  }
  return status;
}
