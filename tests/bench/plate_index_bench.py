#!/usr/bin/python3
"""What a plate costs the index: a 96-well plate (2 fields x 2 channels, 32 x 48 uint16 planes,
16 x 16 tiles; written by plates_e2e.py's writer) indexed as a plate, and the same file with its
Plate element removed (192 unrelated series), side by side in one run.

    /usr/bin/python3 tests/bench/plate_index_bench.py build/bin/refzarr [WORK_DIR]
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import tifffile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import plates_e2e as plates  # noqa: E402


def main():
    refzarr = os.path.abspath(sys.argv[1])
    work = sys.argv[2] if len(sys.argv) > 2 else tempfile.mkdtemp(prefix="plate_bench_")
    os.makedirs(work, exist_ok=True)
    rng = np.random.default_rng(17)
    wells = [(r, c, [plates.rng_image(rng, f"{plates.letters(r)}{c + 1} f{f}", (1, 2, 1, 32, 48),
                                      np.uint16) for f in range(2)])
             for r in range(8) for c in range(12)]
    plate_tif = os.path.join(work, "plate.ome.tif")
    _, xml = plates.write_single_file_plate(plate_tif, {"Name": "p", "Rows": 8, "Columns": 12},
                                            wells, [], (16, 16))
    flat_tif = os.path.join(work, "flat.ome.tif")
    flat_xml = re.sub(r"<Plate .*?</Plate>", "", xml)
    with tifffile.TiffFile(plate_tif) as t:
        planes = [p.asarray() for p in t.pages]
    with tifffile.TiffWriter(flat_tif) as tw:
        for i, p in enumerate(planes):
            tw.write(p, description=flat_xml.encode() if i == 0 else None, metadata=None,
                     tile=(16, 16), contiguous=False)
    print("| layout | arrays | groups | chunk references | reference bytes | index bytes | "
          "index seconds |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, path in (("plate", plate_tif), ("series only", flat_tif)):
        db = os.path.join(work, name.replace(" ", "_") + ".refs.db")
        if os.path.exists(db):
            os.unlink(db)
        start = time.time()
        subprocess.run([refzarr, "index", "--in-process", "-o", db, path], check=True,
                       capture_output=True)
        seconds = time.time() - start
        info = json.loads(subprocess.run([refzarr, "info", "--json", db], check=True,
                                         capture_output=True, text=True).stdout)
        print(f"| {name} | {info['arrays']} | {info['groups']} | {info['chunk_references']} | "
              f"{info['reference_bytes']} | {info['index_bytes']} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
