// refzarr-hdf5-samples [--hostile] OUTDIR: writes the HDF5 sample files (see hdf5_samples.h), or
// with --hostile the damaged ones (hdf5_hostile_samples.h), one "file<TAB>array<TAB>reason" line
// each.
#include <iostream>
#include <string>

#include "samples/hdf5/hdf5_hostile_samples.h"
#include "samples/hdf5/hdf5_samples.h"

int main(int argc, char** argv) {
  const bool hostile = argc == 3 && std::string(argv[1]) == "--hostile";
  if (argc != 2 && !hostile) {
    std::cerr << "usage: refzarr-hdf5-samples [--hostile] OUTDIR\n";
    return 2;
  }
  if (hostile) {
    auto written = refzarr::samples::WriteHostileHdf5Samples(argv[2]);
    if (!written.ok()) {
      std::cerr << "refzarr-hdf5-samples: " << written.status().message() << "\n";
      return 1;
    }
    for (const auto& s : *written) std::cout << s.file << "\t" << s.array << "\t" << s.reason << "\t" << s.intact << "\n";
    return 0;
  }
  auto written = refzarr::samples::WriteHdf5Samples(argv[1]);
  if (!written.ok()) {
    std::cerr << "refzarr-hdf5-samples: " << written.status().message() << "\n";
    return 1;
  }
  for (const auto& name : *written) std::cout << name << "\n";
  return 0;
}
