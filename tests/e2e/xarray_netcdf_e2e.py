"""End to end: xarray (Debian's python3-xarray, zarr engine) opens the kerchunk export of a
netCDF-4 file (../shared/realdata/.../air.nc) with its dimensions, coordinates and attributes, and
every variable equals h5py's raw read. Usage: REFZARR_BIN=... REFZARR_SHARED_DIR=... REFZARR_WORK=..."""
import json
import os
import shutil
import subprocess
import sys


def main():
    import fsspec
    import h5py
    import numpy as np
    import xarray as xr
    refzarr = os.environ["REFZARR_BIN"]
    work = os.environ["REFZARR_WORK"]
    src = os.path.join(os.environ["REFZARR_SHARED_DIR"], "realdata", "hdf5", "fsspec+kerchunk",
                       "tests", "air.nc")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    index, refs = os.path.join(work, "air.refs.db"), os.path.join(work, "air.json")
    subprocess.run([refzarr, "index", "-o", index, src], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([refzarr, "export", index, "-o", refs], check=True, stderr=subprocess.DEVNULL)
    with open(refs) as f:
        fs = fsspec.filesystem("reference", fo=json.load(f), remote_protocol="file")
    ds = xr.open_dataset(fs.get_mapper(""), engine="zarr", mask_and_scale=False,
                         decode_times=False, consolidated=False)
    failures = []
    with h5py.File(src, "r") as h5:
        for name in ("air", "lat", "lon", "time"):
            if name not in ds.variables:
                failures.append(f"{name}: missing from the xarray dataset")
                continue
            want = h5[name][()]
            got = ds[name].values
            if got.shape != want.shape or not np.array_equal(got, want):
                failures.append(f"{name}: differs from h5py")
        if ds["air"].dims != ("time", "lat", "lon"):
            failures.append(f"air dims {ds['air'].dims}, expected (time, lat, lon)")
        for attr in ("scale_factor", "long_name"):
            if attr not in ds["air"].attrs:
                failures.append(f"air lost attribute {attr}")
    print(f"xarray over the export: variables {sorted(ds.variables)}, dims {dict(ds.sizes)}")
    for f in failures:
        print("FAIL " + f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
