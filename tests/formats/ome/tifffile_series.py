#!/usr/bin/python3
"""Prints what tifffile (Debian's python3-tifffile) makes of a TIFF, as JSON: the oracle that
refzarr's OME / ImageJ / SVS metadata handling is compared with.

    tifffile_series.py FILE                       # series, pages, descriptions, ImageJ metadata
    tifffile_series.py --imagej-description PATH  # tifffile.imagej_description_metadata(text)
    tifffile_series.py --svs-description PATH     # tifffile.svs_description_metadata(text)

For FILE: {"series": [{"name", "kind", "shape", "axes", "pages": [[file name, IFD index], ...]}],
"descriptions": [every ImageDescription of IFD 0], "imagej": {...} or null, "ifds": N}.
Pages are listed in the series' own order (C order over its non-YXS axes); a missing page is null.
"""

import json
import os
import sys
import warnings

import tifffile
from tifffile import tifffile as tifffile_module


def _plain(value):
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


def describe_file(path):
    with tifffile.TiffFile(path) as tif:
        out = {"ifds": len(tif.pages), "series": [], "descriptions": [], "imagej": None}
        first = tif.pages.first if hasattr(tif.pages, "first") else tif.pages[0]
        out["descriptions"] = [t.value for t in first.tags.values() if t.code == 270]
        if tif.imagej_metadata:
            out["imagej"] = {k: _plain(v) for k, v in tif.imagej_metadata.items()
                             if isinstance(v, (bool, int, float, str))}
        for series in tif.series:
            pages = []
            for page in series.pages:
                if page is None:
                    pages.append(None)
                else:
                    pages.append([os.path.basename(page.parent.filehandle.name), page.index])
            out["series"].append({
                "name": series.name,
                "kind": getattr(series, "kind", ""),
                "shape": list(series.shape),
                "axes": series.axes,
                "pages": pages,
            })
        return out


def main(argv):
    warnings.simplefilter("ignore")
    if len(argv) == 2 and argv[0] in ("--imagej-description", "--svs-description"):
        with open(argv[1], encoding="utf-8", newline="") as f:
            text = f.read()
        parse = (tifffile_module.imagej_description_metadata if argv[0] == "--imagej-description"
                 else tifffile_module.svs_description_metadata)
        result = {k: _plain(v) for k, v in parse(text).items()}
        print(json.dumps(result))
        return 0
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(describe_file(argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
