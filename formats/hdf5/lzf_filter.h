// The LZF filter (HDF5 filter id 32000, as h5py and PyTables write it) for the HDF5 library, on
// liblzf. Debian's LZF plugin package does not load into libhdf5 1.10, so refzarr registers the
// filter itself: the HDF5 chunk decoder can then decode LZF chunks like any other filter.
#pragma once

namespace refzarr::internal {

/// The HDF5 filter id of LZF.
inline constexpr int kLzfFilterId = 32000;

/// Registers the LZF filter with the HDF5 library unless a plugin already provides it. Idempotent
/// and thread-safe; call with the HDF5 mutex held or before any other HDF5 use.
void RegisterLzfFilter();

}  // namespace refzarr::internal
