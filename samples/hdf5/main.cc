// refzarr-hdf5-samples OUTDIR: writes the HDF5 sample files (see hdf5_samples.h).
#include <iostream>

#include "samples/hdf5/hdf5_samples.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: refzarr-hdf5-samples OUTDIR\n";
    return 2;
  }
  auto written = refzarr::samples::WriteHdf5Samples(argv[1]);
  if (!written.ok()) {
    std::cerr << "refzarr-hdf5-samples: " << written.status().message() << "\n";
    return 1;
  }
  for (const auto& name : *written) std::cout << name << "\n";
  return 0;
}
