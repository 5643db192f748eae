#!/usr/bin/python3
"""Writes the seed inputs of the fuzz targets into tests/fuzz/<target>/ (docs/fuzzing.md).

Seeds are small and made independently of refzarr: TIFF files written by tifffile, HDF5 files by
h5py, third-party files from ../shared/realdata (whole when small, else their first 4 KiB, which
holds the header), the generated samples of refzarr-samples / refzarr-hdf5-samples (same rule),
and text inputs written out here. Inputs that crashed or hung a target are kept beside the seeds as
crash-*/timeout-*/oom-* files and are never rewritten by this script.

usage: make_seeds.py SAMPLES_DIR [REALDATA_DIR]
  SAMPLES_DIR   output of `refzarr-samples DIR` with `refzarr-hdf5-samples DIR/hdf5`
  REALDATA_DIR  default: ../shared/realdata next to the repository
"""
import hashlib
import io
import os
import struct
import sys
import tempfile
from pathlib import Path

import logging

import h5py
import numpy as np
import tifffile

HERE = Path(__file__).resolve().parent
WHOLE_LIMIT = 16 * 1024   # files up to this size are seeds as they are
HEAD_BYTES = 4 * 1024     # larger ones contribute their head
MAX_SEEDS = 40            # per target: the written seeds, then the smallest file seeds


def put(target, name, data):
    folder = HERE / target
    folder.mkdir(exist_ok=True)
    (folder / f"seed-{name}").write_bytes(bytes(data))


def head_of(path):
    data = Path(path).read_bytes()
    return data if len(data) <= WHOLE_LIMIT else data[:HEAD_BYTES]


def short_name(path, root):
    rel = str(Path(path).relative_to(root))
    digest = hashlib.sha1(rel.encode()).hexdigest()[:8]
    return f"{Path(path).name[:40]}-{digest}"


# ---- TIFF: tifffile-written files, and the first chunk of each for the decoder target ----

def tiff_bytes(data, **kwargs):
    buf = io.BytesIO()
    tifffile.imwrite(buf, data, **kwargs)
    return buf.getvalue()


def decoder_header(compression, predictor, sample, tiled, big_endian, pixels, b4, b5):
    # tiff_decoder_fuzzer.cc's header: indices into its tables.
    compressions = [1, 5, 8, 32773, 50000, 34925, 7, 32946, 50001]
    flags = (1 if tiled else 0) | (2 if big_endian else 0) | (pixels << 2)
    return bytes([compressions.index(compression), predictor - 1, sample, flags, b4, b5, 0, 0])


def tiff_seeds():
    rng = np.random.default_rng(15)
    u8 = rng.integers(0, 255, (32, 32), dtype=np.uint8)
    u16 = (rng.integers(0, 4000, (32, 32))).astype(np.uint16)
    f32 = rng.random((32, 32), dtype=np.float32)
    rgb = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    cases = {
        "u8-strips-none": (u8, dict()),
        "u8-tiled-deflate-pred2": (u8, dict(tile=(16, 16), compression="zlib", predictor=True)),
        "u16-tiled-deflate-be": (u16, dict(tile=(16, 16), compression="zlib", byteorder=">")),
        "u16-strips-lzma": (u16, dict(compression="lzma", rowsperstrip=8)),
        "f32-tiled-deflate": (f32, dict(tile=(16, 16), compression="zlib")),
        "rgb-chunky-deflate": (rgb, dict(photometric="rgb", compression="zlib")),
        "rgb-planar-tiled": (np.moveaxis(rgb, 2, 0).copy(),
                             dict(photometric="rgb", planarconfig="separate", tile=(16, 16))),
        "bigtiff-u16": (u16, dict(bigtiff=True, tile=(16, 16))),
        "ome-zyx": (np.stack([u8, u8]), dict(ome=True, metadata={"axes": "ZYX"})),
        "ome-tczyx-tiled": (np.zeros((2, 2, 1, 16, 16), np.uint16),
                            dict(ome=True, tile=(16, 16), metadata={"axes": "TCZYX"})),
        "imagej-hyperstack": (np.zeros((2, 3, 2, 16, 16), np.uint16),
                              dict(imagej=True, metadata={"axes": "TZCYX"})),
        "svs-description": (u8, dict(tile=(16, 16), description=SVS_DESCRIPTIONS[0])),
        "multipage": (np.stack([u8, u8, u8]), dict()),
    }
    for name, (data, kwargs) in cases.items():
        try:
            put("tiff_scanner", f"tifffile-{name}", tiff_bytes(data, **kwargs))
        except Exception as e:  # a codec tifffile cannot write without imagecodecs
            print(f"make_seeds: tiff {name}: skipped ({e})", file=sys.stderr)
    # A pyramid in SubIFDs.
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf, ome=True) as tif:
        tif.write(u16, subifds=1, tile=(16, 16), metadata={"axes": "YX"})
        tif.write(u16[::2, ::2], subfiletype=1, tile=(16, 16))
    put("tiff_scanner", "tifffile-ome-subifd-pyramid", buf.getvalue())

    # Decoder seeds: the first chunk of files whose description the header tables can name.
    # (compression, predictor, sample index, tiled, big-endian, pixels, b4, b5, data, kwargs)
    # sample indices: 0 u8, 1 u16, 2 f32; b4/b5 = 4: 32 pixels of 16-pixel tiles; strips of a
    # 32-pixel image with 8 rows: b4 = 31, b5 = 31 (1 + 31 % 16 = 16 rows... ) -> rows 16.
    decoder_cases = {
        "u8-tiled-none": (1, 1, 0, True, False, 0, 4, 4, u8, dict(tile=(16, 16))),
        "u8-tiled-deflate-pred2": (8, 2, 0, True, False, 0, 4, 4, u8,
                                   dict(tile=(16, 16), compression="zlib", predictor=True)),
        "u16-tiled-deflate-be": (8, 1, 1, True, True, 0, 4, 4, u16,
                                 dict(tile=(16, 16), compression="zlib", byteorder=">")),
        "u16-strips-lzma": (34925, 1, 1, False, False, 0, 31, 31, u16,
                            dict(compression="lzma", rowsperstrip=16)),
        "f32-tiled-deflate": (8, 1, 2, True, False, 0, 4, 4, f32,
                              dict(tile=(16, 16), compression="zlib")),
        "rgb-chunky-tiled-deflate": (8, 1, 0, True, False, 1, 4, 4, rgb,
                                     dict(tile=(16, 16), photometric="rgb", compression="zlib")),
    }
    for name, (comp, pred, sample, tiled, be, pixels, b4, b5, data, kwargs) in decoder_cases.items():
        try:
            raw = tiff_bytes(data, **kwargs)
        except Exception as e:
            print(f"make_seeds: tiff decoder {name}: skipped ({e})", file=sys.stderr)
            continue
        page = tifffile.TiffFile(io.BytesIO(raw)).pages[0]
        offset, count = page.dataoffsets[0], page.databytecounts[0]
        header = decoder_header(comp, pred, sample, tiled, be, pixels, b4, b5)
        put("tiff_decoder", name, header + raw[offset:offset + count])


def tiff_decoder_seeds_from(path, root):
    """The first chunk of a realdata or sample TIFF, when the decoder's tables describe it."""
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            tags = page.tags
            comp = int(page.compression)
            pred = int(tags["Predictor"].value) if "Predictor" in tags else 1
            bits, fmt = page.bitspersample, int(page.sampleformat)
            spp, planar = page.samplesperpixel, int(page.planarconfig)
            tiled = page.is_tiled
            be = tif.byteorder == ">"
            w, h = page.imagewidth, page.imagelength
            offset, count = page.dataoffsets[0], page.databytecounts[0]
    except Exception:
        return
    compressions = [1, 5, 8, 32773, 50000, 34925, 7, 32946, 50001]
    samples = [(8, 1), (16, 1), (32, 3), (16, 2), (64, 3), (1, 1), (4, 1), (12, 1), (32, 1),
               (24, 1), (16, 3), (8, 2)]
    if comp not in compressions or (bits, fmt) not in samples or count > WHOLE_LIMIT:
        return
    pixels = 0 if spp == 1 else (1 if planar == 1 else 2) if spp == 3 else None
    if pixels is None:
        return
    if tiled:
        tw, tl = page.tilewidth, page.tilelength

        def code(tile, size):
            # tile 16 * (1 + v % 4); size: that times 1 + (v / 4) % 4, less v / 16
            n = (size + tile - 1) // tile
            short = n * tile - size
            if tile % 16 or tile > 64 or n > 4 or short > 15:
                return None
            return (tile // 16 - 1) | (n - 1) << 2 | short << 4

        b4, b5 = code(tw, w), code(tl, h)
        if b4 is None or b5 is None:
            return
    else:
        rps = page.rowsperstrip
        if w > 256 or h > 256 or rps > 16:
            return
        b4, b5 = w - 1, h - 1
        if 1 + b5 % 16 != min(rps, h):
            return
    header = decoder_header(comp, pred, samples.index((bits, fmt)), tiled, be, pixels, b4, b5)
    data = Path(path).read_bytes()[offset:offset + count]
    put("tiff_decoder", short_name(path, root), header + data)


# ---- HDF5: h5py-written files of each chunk index, with the chunk-index target's header ----

SVS_DESCRIPTIONS = [
    "Aperio Image Library v10.0.51\r\n46920x33014 [0,100 46000x32914] (256x256) JPEG/RGB Q=30"
    "|AppMag = 20|StripeWidth = 2040|ScanScope ID = CPAPERIOCS|Filename = CMU-1|Date = 12/29/09"
    "|Time = 09:59:15|MPP = 0.4990|Left = 25.691574|Top = 23.449873|LineCameraSkew = -0.000424"
    "|Focus Offset = 0.000000|ImageID = 1004486|OriginalWidth = 46920|Originalheight = 33014",
    "Aperio Image Library v10.0.51\r\n46000x32914 -> 1024x732 - |AppMag = 20|MPP = 0.4990",
    "Aperio Image Library v10.0.51\r\n46920x33014 [0,100 46000x32914] (256x256) -> 11500x8228 "
    "JPEG/RGB Q=30",
    "Aperio Image Library v10.0.51\r\nlabel 387x463",
    "Aperio Image Library v10.0.51\r\nmacro 1280x431",
    "Aperio Image Library v12.0.5\r\n2220x2967 (240x240) J2K/KDU Q=70|AppMag = 40|MPP = 0.2500",
]


def hdf5_files():
    """(name, bytes, [(dataset object header address, dims, unlimited)])."""
    out = []
    data = np.arange(64, dtype=np.int16).reshape(8, 8)
    specs = [
        ("btree1-earliest", "earliest", dict(chunks=(4, 4))),
        ("btree1-gzip-shuffle", "earliest", dict(chunks=(4, 4), compression="gzip", shuffle=True)),
        ("fixed-array", "latest", dict(chunks=(4, 4))),
        ("fixed-array-fletcher", "latest", dict(chunks=(4, 4), fletcher32=True)),
        ("extensible-array", "latest", dict(chunks=(4, 4), maxshape=(None, 8))),
        ("btree2", "latest", dict(chunks=(4, 4), maxshape=(None, None))),
        ("single-chunk", "latest", dict(chunks=(8, 8))),
        ("single-chunk-gzip", "latest", dict(chunks=(8, 8), compression="gzip")),
        ("contiguous", "earliest", dict()),
        ("compact", "latest", "compact"),
    ]
    for name, libver, kwargs in specs:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "f.h5"
            with h5py.File(path, "w", libver=libver) as f:
                f.attrs["title"] = "seed"
                g = f.create_group("g")
                if kwargs == "compact":
                    space = h5py.h5s.create_simple((8, 8))
                    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
                    dcpl.set_layout(h5py.h5d.COMPACT)
                    h5py.h5d.create(g.id, b"d", h5py.h5t.STD_I16LE, space, dcpl=dcpl)
                    g["d"][...] = data
                else:
                    g.create_dataset("d", data=data, **kwargs)
                g["d"].attrs["units"] = "um"
            with h5py.File(path, "r") as f:
                d = f["g/d"]
                addr = h5py.h5o.get_info(d.id).addr
                unlimited = d.maxshape is not None and None in d.maxshape
                out.append((name, path.read_bytes(), [(addr, d.shape, unlimited)]))
    # The implicit index: early allocation, no filters.
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.h5"
        with h5py.File(path, "w", libver="latest") as f:
            space = h5py.h5s.create_simple((8, 8))
            dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            dcpl.set_chunk((4, 4))
            dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
            h5py.h5d.create(f.id, b"d", h5py.h5t.STD_I16LE, space, dcpl=dcpl)
            f["d"][...] = data
        with h5py.File(path, "r") as f:
            out.append(("implicit", path.read_bytes(),
                        [(h5py.h5o.get_info(f["d"].id).addr, (8, 8), False)]))
    return out


def chunk_index_header(addr, dims, unlimited):
    return (struct.pack("<QB", addr, len(dims) | (0x80 if unlimited else 0)) +
            b"".join(struct.pack("<I", d) for d in dims))


def hdf5_seeds():
    for name, data, datasets in hdf5_files():
        put("hdf5_scanner", f"h5py-{name}", data)
        for addr, dims, unlimited in datasets:
            put("hdf5_chunk_index", f"h5py-{name}", chunk_index_header(addr, dims, unlimited) + data)


# ---- Text inputs ----

def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def zigzag(v):
    return (v << 1) ^ (v >> 63) if v >= 0 else ((-v) << 1) - 1


def chunk_block(entries, mode=0):
    # store/chunk_block.cc: mode byte, count, then per entry length+1 (0: missing), zigzag offset
    # delta from the previous end, [source], [flags].
    out = bytearray([mode]) + varint(len(entries))
    predicted = 0
    for e in entries:
        if e is None:
            out += varint(0)
            continue
        offset, length, source, flags = e
        out += varint(length + 1) + varint(zigzag(offset - predicted))
        if mode & 1:
            out += varint(source)
        if mode & 2:
            out += varint(flags)
        predicted = offset + length
    return bytes(out)


def text_seeds():
    put("chunk_block", "three", chunk_block([(100, 50, 0, 0), (150, 50, 0, 0), (200, 10, 0, 0)]))
    put("chunk_block", "holes", chunk_block([None, (4096, 10, 0, 0), None, (8, 4, 0, 0)]))
    put("chunk_block", "sources-flags",
        chunk_block([(0, 1, 1, 0), (10, 20, 2, 1 << 16), (5, 5, 0, 3)], mode=3))
    put("chunk_block", "backwards", chunk_block([(1 << 40, 7, 0, 0), (0, 7, 0, 0)]))

    for i, d in enumerate(SVS_DESCRIPTIONS):
        put("svs", f"aperio-{i}", d.encode())

    ij = ["ImageJ=1.11a\nimages=12\nchannels=2\nslices=3\nframes=2\nhyperstack=true\nmode=composite"
          "\nunit=micron\nspacing=0.5\nfinterval=2.0\nloop=false\nmin=0.0\nmax=255.0\n",
          "ImageJ=1.53t\nimages=4\nslices=4\nunit=\\u00B5m\nspacing=1.5\n",
          "SCIFIO=0.42\nimages=1\n",
          "ImageJ=1.11a\r\nimages=6\r\nframes=6\r\n"]
    for i, d in enumerate(ij):
        put("imagej", f"description-{i}", b"I" + d.encode())
    # IJMetadata: header "IJIJ" + (type, count) pairs; a 'rang' entry of 2 channels (4 doubles),
    # two 768-byte 'luts' entries.
    header = b"IJIJ" + struct.pack(">II", 0x72616E67, 1) + struct.pack(">II", 0x6C757473, 2)
    ranges = struct.pack(">4d", 0.0, 255.0, 10.0, 4000.0)
    lut_red = bytes(range(256)) + bytes(256) + bytes(256)
    lut_green = bytes(256) + bytes(range(256)) + bytes(256)
    counts = [len(header), len(ranges), len(lut_red), len(lut_green)]
    put("imagej", "ijmetadata-be",
        b"M" + bytes([len(counts)]) + struct.pack(f"<{len(counts)}I", *counts) +
        header + ranges + lut_red + lut_green)
    header_le = b"JIJI" + struct.pack("<II", 0x72616E67, 1)
    ranges_le = struct.pack("<2d", 0.0, 1.0)
    put("imagej", "ijmetadata-le",
        b"M" + bytes([2]) + struct.pack("<2I", len(header_le), len(ranges_le)) + header_le + ranges_le)

    http = [(1, "/"), (1, "/image.ome.tif/0/.zattrs"), (1, "/a%20b/c%2Fd/0.0.0"), (1, "//a///b/"),
            (1, "/%2e%2e/etc/passwd"), (1, "/a/./b"), (1, "/__refzarr__/main.js"),
            (2, "bytes=0-99"), (2, "bytes=100-"), (2, "bytes=-100"), (2, "bytes=0-0,5-9"),
            (2, "bytes=0-99999999999999999999"), (2, "bytes= 7 - 9"), (2, "items=0-1"),
            (4, "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
            (4, "text/html;q=0"), (7, "/a/b")]
    for i, (mode, text) in enumerate(http):
        put("http_request", f"{i:02d}", bytes([mode]) + text.encode())

    ome = [
        '<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"'
        ' UUID="urn:uuid:0b5c4d0e-0000-4000-8000-000000000001"><Image ID="Image:0" Name="a">'
        '<Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint16" SizeX="32" SizeY="16" SizeZ="2"'
        ' SizeC="2" SizeT="1" PhysicalSizeX="0.5" PhysicalSizeXUnit="nm" BigEndian="false">'
        '<Channel ID="Channel:0:0" Name="DAPI" Color="-16776961" SamplesPerPixel="1"/>'
        '<Channel ID="Channel:0:1" SamplesPerPixel="1"/>'
        '<TiffData IFD="0" PlaneCount="4"/></Pixels></Image></OME>',
        '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0">'
        '<Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="float" SizeX="4" SizeY="4" SizeZ="3"'
        ' SizeC="1" SizeT="2"><TiffData FirstZ="2" FirstT="1" IFD="0" PlaneCount="1">'
        '<UUID FileName="other.ome.tif">urn:uuid:1</UUID></TiffData><TiffData IFD="1"/></Pixels>'
        '</Image><Image ID="Image:1"><Pixels ID="Pixels:1" DimensionOrder="XYZTC" Type="uint8"'
        ' SizeX="2" SizeY="2" SizeZ="1" SizeC="3" SizeT="1"><Channel ID="Channel:1:0"'
        ' SamplesPerPixel="3"/></Pixels></Image></OME>',
        '<ome:OME xmlns:ome="http://www.openmicroscopy.org/Schemas/OME/2008-02">'
        '<ome:BinaryOnly MetadataFile="meta.companion.ome" UUID="urn:uuid:2"/></ome:OME>',
    ]
    for i, x in enumerate(ome):
        put("ome_xml", f"handwritten-{i}", x.encode())


def ome_xml_from(path, root):
    try:
        with tifffile.TiffFile(path) as tif:
            xml = tif.pages[0].description
    except Exception:
        return
    if xml and "<OME" in xml and len(xml) <= WHOLE_LIMIT:
        put("ome_xml", short_name(path, root), xml.encode())


def file_seeds(root, names_from):
    root = Path(root)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        with open(path, "rb") as f:
            magic = f.read(8)
        if magic[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):
            put("tiff_scanner", short_name(path, root), head_of(path))
            tiff_decoder_seeds_from(path, root)
            ome_xml_from(path, root)
        elif magic == b"\x89HDF\r\n\x1a\n" or b"\x89HDF" in Path(path).read_bytes()[:4096]:
            put("hdf5_scanner", short_name(path, root), head_of(path))


def prune():
    """Keeps each target's seeds to MAX_SEEDS: the ones written here, then the smallest others."""
    for folder in sorted(p for p in HERE.iterdir() if p.is_dir()):
        seeds = sorted(folder.glob("seed-*"))
        made = [p for p in seeds if p.name.startswith(("seed-tifffile-", "seed-h5py-"))]
        others = sorted((p for p in seeds if p not in made), key=lambda p: (p.stat().st_size, p.name))
        for p in others[max(0, MAX_SEEDS - len(made)):]:
            p.unlink()


def main():
    logging.disable(logging.WARNING)  # tifffile's complaints about the damaged realdata files
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    samples = Path(sys.argv[1])
    realdata = Path(sys.argv[2]) if len(sys.argv) > 2 else HERE.parents[2] / ".." / "shared" / "realdata"
    tiff_seeds()
    hdf5_seeds()
    text_seeds()
    file_seeds(samples, "samples")
    file_seeds(realdata.resolve(), "realdata")
    prune()


if __name__ == "__main__":
    main()
