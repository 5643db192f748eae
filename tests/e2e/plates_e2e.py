#!/usr/bin/python3
"""HCS plates end to end (issue 17).

Writes OME-TIFF plates of three layouts with tifffile (plane by plane, with hand-written OME-XML
2016-06: a 96-well plate with 2 fields per well and 2 channels, tiled; a sparse 384-well plate with
z stacks; a multi-file plate: an OME-XML companion and one BinaryOnly OME-TIFF per well), checks
the XML with xmllint, indexes each with refzarr, serves the index as Zarr v2 (OME-NGFF 0.4) and
v3 (0.5), and checks:
  - zarr-python 2 walks plate -> wells -> fields through the attributes alone, and every level of
    every field equals tifffile's reading of the pages the OME-XML names (and the series group the
    field shows stays addressable with the same pixels);
  - the plate, well and image documents of both versions validate against the OME-NGFF schemas
    (and the strict ones);
  - the plate metadata says what the XML says (names, wells, field count, acquisitions);
  - ROIs are kept in OME/METADATA.ome.xml and summarised by `refzarr info`.
Environment: REFZARR_BIN, REFZARR_SHARED_DIR, REFZARR_VALIDATE_NGFF, REFZARR_WORK.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid as uuidlib

import numpy as np
import tifffile
import zarr

NS = "http://www.openmicroscopy.org/Schemas/OME/2016-06"


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli", "http"))
import e2e_common as c  # noqa: E402
import serve_e2e  # noqa: E402

env = c.env


class Server(serve_e2e.Server):
    """serve_e2e's server on an ephemeral loopback port, its logs named by index, with GETs that
    give None for a missing key."""

    def __init__(self, refzarr, index, zarr_format, work):
        super().__init__(refzarr, index, zarr_format, work, tag="-" + os.path.basename(index))

    @property
    def base(self):
        return self.url()

    def get(self, key):
        status, _, body = self.request("GET", key)
        if status == 404:
            return None
        if status != 200:
            raise RuntimeError(f"GET {key}: {status} {body[:200]!r}")
        return body

    def get_json(self, key):
        data = self.get(key)
        return None if data is None else json.loads(data)


# ---------------------------------------------------------------------------------------------
# Plate writers. A plate is described by `wells`: [(row, col, [image, ...])], each image a dict
# with "name" and "data" (t, c, z, y, x) numpy array. Planes are written in XYZCT order.

def letters(i):
    out = ""
    i += 1
    while i:
        i -= 1
        out = chr(ord("A") + i % 26) + out
        i //= 26
    return out


def pixels_xml(img, index, tiffdata):
    t, c, z, y, x = img["data"].shape
    dtype = {np.dtype("uint16"): "uint16", np.dtype("uint8"): "uint8"}[img["data"].dtype]
    channels = "".join(f'<Channel ID="Channel:{index}:{k}" Name="ch{k}" SamplesPerPixel="1"/>'
                       for k in range(c))
    return (f'<Pixels ID="Pixels:{index}" DimensionOrder="XYZCT" Type="{dtype}" BigEndian="false" '
            f'SizeX="{x}" SizeY="{y}" SizeZ="{z}" SizeC="{c}" SizeT="{t}" '
            f'PhysicalSizeX="0.65" PhysicalSizeXUnit="µm" PhysicalSizeY="0.65" '
            f'PhysicalSizeYUnit="µm">{channels}{tiffdata}</Pixels>')


def plate_xml(plate, wells, images_xml, acquisitions, rois="", root_uuid=None):
    """The OME document: Plate (Wells, WellSamples, PlateAcquisitions), Images, ROIs."""
    well_xml, index = [], 0
    for w, (row, col, images) in enumerate(wells):
        samples = []
        for f, _ in enumerate(images):
            samples.append(f'<WellSample ID="WellSample:0:{w}:{f}" Index="{index}">'
                           f'<ImageRef ID="Image:{index}"/></WellSample>')
            index += 1
        well_xml.append(f'<Well ID="Well:0:{w}" Column="{col}" Row="{row}">{"".join(samples)}'
                        f'</Well>')
    acq_xml = []
    for a, (name, start, refs) in enumerate(acquisitions):
        r = "".join(f'<WellSampleRef ID="{ref}"/>' for ref in refs)
        acq_xml.append(f'<PlateAcquisition ID="PlateAcquisition:0:{a}" Name="{name}" '
                       f'StartTime="{start}">{r}</PlateAcquisition>')
    attrs = " ".join(f'{k}="{v}"' for k, v in plate.items())
    uuid_attr = f' UUID="{root_uuid}"' if root_uuid else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?>'
            f'<OME xmlns="{NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            f'xsi:schemaLocation="{NS} {NS}/ome.xsd" Creator="refzarr plates_e2e"{uuid_attr}>'
            f'<Plate ID="Plate:0" {attrs}>{"".join(well_xml)}{"".join(acq_xml)}</Plate>'
            f'{"".join(images_xml)}{rois}</OME>')


def planes_of(data):
    t, c, z = data.shape[:3]
    for tt in range(t):
        for cc in range(c):
            for zz in range(z):
                yield data[tt, cc, zz]


def write_single_file_plate(path, plate, wells, acquisitions, tile, rois=""):
    """One OME-TIFF holding every field; returns [(name, data, [(path, ifd), ...])] per image."""
    images, images_xml, ifd = [], [], 0
    for _, _, imgs in wells:
        for img in imgs:
            n = int(np.prod(img["data"].shape[:3]))
            index = len(images)
            images_xml.append(f'<Image ID="Image:{index}" Name="{img["name"]}">'
                              + pixels_xml(img, index, f'<TiffData IFD="{ifd}" PlaneCount="{n}"/>')
                              + (f'<ROIRef ID="ROI:{index}"/>' if rois and index < 2 else "")
                              + "</Image>")
            images.append((img["name"], img["data"], [(path, ifd + k) for k in range(n)]))
            ifd += n
    xml = plate_xml(plate, wells, images_xml, acquisitions, rois)
    with tifffile.TiffWriter(path) as tw:
        first = True
        for _, data, _ in images:
            for plane in planes_of(data):
                tw.write(plane, description=xml.encode() if first else None, metadata=None, tile=tile,
                         contiguous=False)
                first = False
    return images, xml


def write_multi_file_plate(folder, plate, wells, acquisitions):
    """An OME-XML companion plus one BinaryOnly OME-TIFF per well (the Bio-Formats layout)."""
    companion = os.path.join(folder, "plate.companion.ome")
    images, images_xml, members = [], [], []
    for w, (row, col, imgs) in enumerate(wells):
        name = f"well_{letters(row)}{col + 1}.ome.tif"
        member_uuid = f"urn:uuid:{uuidlib.uuid4()}"
        members.append((name, member_uuid, imgs))
        ifd = 0
        for img in imgs:
            n = int(np.prod(img["data"].shape[:3]))
            index = len(images)
            td = (f'<TiffData IFD="{ifd}" PlaneCount="{n}"><UUID FileName="{name}">{member_uuid}'
                  f'</UUID></TiffData>')
            images_xml.append(f'<Image ID="Image:{index}" Name="{img["name"]}">'
                              + pixels_xml(img, index, td) + "</Image>")
            images.append((img["name"], img["data"],
                           [(os.path.join(folder, name), ifd + k) for k in range(n)]))
            ifd += n
    root_uuid = f"urn:uuid:{uuidlib.uuid4()}"
    xml = plate_xml(plate, wells, images_xml, acquisitions, root_uuid=root_uuid)
    with open(companion, "w") as f:
        f.write(xml)
    for name, member_uuid, imgs in members:
        member_xml = (f'<?xml version="1.0" encoding="UTF-8"?><OME xmlns="{NS}" '
                      f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                      f'xsi:schemaLocation="{NS} {NS}/ome.xsd" UUID="{member_uuid}">'
                      f'<BinaryOnly MetadataFile="plate.companion.ome" UUID="{root_uuid}"/></OME>')
        with tifffile.TiffWriter(os.path.join(folder, name)) as tw:
            first = True
            for img in imgs:
                for plane in planes_of(img["data"]):
                    tw.write(plane, description=member_xml if first else None, metadata=None,
                             contiguous=False)
                    first = False
    return companion, images, xml


def check_xml(xml_text, where, failures):
    """xmllint: the document is well-formed; with no OME XSD offline, the structure rules the
    test relies on are checked here (Plate/Well/WellSample/ImageRef resolve, IDs unique)."""
    tmp = tempfile.NamedTemporaryFile("w", suffix=".xml", delete=False)
    tmp.write(xml_text)
    tmp.close()
    r = subprocess.run(["xmllint", "--noout", tmp.name], capture_output=True, text=True)
    os.unlink(tmp.name)
    if r.returncode != 0:
        failures.append(f"{where}: xmllint: {r.stderr.strip()}")
    defined = [i for tag, i in re.findall(r'<(\w+) ID="([^"]+)"', xml_text)
               if not tag.endswith("Ref")]
    if len(set(defined)) != len(defined):
        failures.append(f"{where}: duplicate IDs in the OME-XML")
    for ref in re.findall(r'<ImageRef ID="([^"]+)"', xml_text):
        if f'<Image ID="{ref}"' not in xml_text:
            failures.append(f"{where}: ImageRef {ref} names no Image")


# ---------------------------------------------------------------------------------------------
# Checks.

def expected_levels(images, index):
    """tifffile's reading of the pages of image `index`: (t, c, z, y, x) at level 0."""
    name, data, pages = images[index]
    t, c, z, y, x = data.shape
    out = np.zeros(data.shape, data.dtype)
    k = 0
    handles = {}
    for tt in range(t):
        for cc in range(c):
            for zz in range(z):
                path, ifd = pages[k]
                if path not in handles:
                    handles[path] = tifffile.TiffFile(path)
                out[tt, cc, zz] = handles[path].pages[ifd].asarray()
                k += 1
    for h in handles.values():
        h.close()
    return out


def validate(validator, shared, files, strict, schema, failures, label):
    if not files:
        failures.append(f"{label}: nothing to validate")
        return
    args = ["/usr/bin/python3", validator, "--schemas", os.path.join(shared, "schemas")]
    if strict:
        args.append("--strict")
    if schema:
        args += ["--schema", schema]
    r = subprocess.run(args + files, capture_output=True, text=True)
    if r.returncode != 0:
        failures.append(f"{label}: schema validation failed:\n{r.stdout}{r.stderr}")


def check_plate(name, refzarr, index, images, xml_plate, work, shared, validator, failures):
    """Walks the plate as a client does, compares pixels, validates documents."""
    docs = os.path.join(work, "docs-" + name)
    os.makedirs(docs)
    fields_seen = 0
    with Server(refzarr, index, 2, work) as v2, Server(refzarr, index, 3, work) as v3:
        store = zarr.storage.FSStore(v2.base, mode="r")
        root = zarr.open_group(store, mode="r")
        plate = root.attrs.asdict().get("plate")
        if plate is None:
            failures.append(f"{name}: the file group has no plate metadata: "
                            f"{root.attrs.asdict()}")
            return 0
        if plate.get("version") != "0.4":
            failures.append(f"{name}: v2 plate version {plate.get('version')}")
        for key, value in xml_plate.items():
            if plate.get(key) != value:
                failures.append(f"{name}: plate[{key}] = {plate.get(key)}, expected {value}")
        v2_plate, v2_wells, v2_images = [], [], []
        v3_plate, v3_wells, v3_images = [], [], []

        def save(doc, key):
            path = os.path.join(docs, key.replace("/", "__") or "root")
            with open(path, "w") as f:
                json.dump(doc, f)
            return path

        v2_plate.append(save(v2.get_json(".zattrs"), ".zattrs"))
        v3_root = v3.get_json("zarr.json")
        v3_plate.append(save(v3_root, "zarr.json"))
        if v3_root["attributes"].get("ome", {}).get("plate", {}).get("wells") != plate["wells"]:
            failures.append(f"{name}: the v3 plate's wells differ from v2's")
        image_index = 0
        for well in plate["wells"]:
            group = root[well["path"]]
            wattrs = group.attrs.asdict().get("well")
            if not wattrs:
                failures.append(f"{name}: well {well['path']} has no well metadata")
                continue
            v2_wells.append(save(v2.get_json(well["path"] + "/.zattrs"), well["path"] + "/.zattrs"))
            v3_wells.append(save(v3.get_json(well["path"] + "/zarr.json"),
                                 well["path"] + "/zarr.json"))
            for img in wattrs["images"]:
                field_path = well["path"] + "/" + img["path"]
                field = group[img["path"]]
                ms = field.attrs["multiscales"][0]
                expected = expected_levels(images, image_index)
                if ms.get("name") != images[image_index][0]:
                    failures.append(f"{name}: field {field_path} is named {ms.get('name')}, "
                                    f"expected {images[image_index][0]}")
                level0 = field[ms["datasets"][0]["path"]][...]
                if level0.shape != expected.shape or not np.array_equal(level0, expected):
                    failures.append(f"{name}: field {field_path} level 0 differs from tifffile "
                                    f"({level0.shape} vs {expected.shape})")
                # The series group the field shows stays addressable, with the same pixels.
                series = root[str(image_index)][ms["datasets"][0]["path"]][...]
                if not np.array_equal(series, expected):
                    failures.append(f"{name}: series {image_index} differs from tifffile")
                v2_images.append(save(v2.get_json(field_path + "/.zattrs"), field_path + "/.zattrs"))
                v3_images.append(save(v3.get_json(field_path + "/zarr.json"),
                                      field_path + "/zarr.json"))
                if v3.get_json(field_path + "/0/zarr.json") is None:
                    failures.append(f"{name}: v3 has no array {field_path}/0")
                image_index += 1
                fields_seen += 1
        if image_index != len(images):
            failures.append(f"{name}: the plate has {image_index} fields, the XML {len(images)}")
        series = root["OME"].attrs.asdict().get("series")
        if series != [str(i) for i in range(len(images))]:
            failures.append(f"{name}: OME series list {series}")
        for strict in (False, True):
            tag = " (strict)" if strict else ""
            validate(validator, shared, v2_plate + v3_plate, strict, "plate", failures,
                     f"{name}: plate{tag}")
            validate(validator, shared, v2_plate + v3_plate, strict, "bf2raw", failures,
                     f"{name}: bioformats2raw root{tag}")
            validate(validator, shared, v2_wells + v3_wells, strict, "well", failures,
                     f"{name}: wells{tag}")
            validate(validator, shared, v2_images + v3_images, strict, "image", failures,
                     f"{name}: fields{tag}")
    return fields_seen


def rng_image(rng, name, shape, dtype):
    hi = np.iinfo(dtype).max
    return {"name": name, "data": rng.integers(0, hi, size=shape, dtype=dtype)}


def check_labels(refzarr, work, shared, validator, failures):
    """`index --labels`: label files beside their images, served under <series>/labels/<name>."""
    folder = os.path.join(work, "labels")
    os.makedirs(os.path.join(folder, "masks"))
    rng = np.random.default_rng(4)
    cells = rng.integers(0, 4000, size=(5, 40, 60), dtype=np.uint16)
    mask = rng.integers(0, 300, size=(5, 40, 60), dtype=np.uint16)
    masks = rng.integers(0, 7, size=(5, 40, 60), dtype=np.uint8)
    tifffile.imwrite(os.path.join(folder, "cells.tif"), cells, tile=(16, 16))
    tifffile.imwrite(os.path.join(folder, "cells_mask.tif"), mask, compression="zlib")
    tifffile.imwrite(os.path.join(folder, "masks", "cells.tif"), masks)
    # A pyramid image and a pyramid label file (SubIFD levels): both levels kept.
    pyr = [rng.integers(0, 255, size=(64, 96), dtype=np.uint8)]
    pyr.append(pyr[0][::2, ::2].copy())
    pyr_labels = [rng.integers(0, 50, size=(64, 96), dtype=np.uint32)]
    pyr_labels.append(pyr_labels[0][::2, ::2].copy())
    for name, levels in (("pyr.ome.tif", pyr), ("pyr_labels.tif", pyr_labels)):
        with tifffile.TiffWriter(os.path.join(folder, name)) as tw:
            tw.write(levels[0], subifds=1, tile=(16, 16), metadata=None)
            tw.write(levels[1], subfiletype=1, tile=(16, 16), metadata=None)
    index = os.path.join(work, "labels.refs.db")
    r = subprocess.run([refzarr, "index", "-o", index, "--labels", "default", folder],
                       capture_output=True, text=True)
    if r.returncode != 0:
        failures.append(f"labels: refzarr index --labels default failed:\n{r.stdout}{r.stderr}")
        return
    docs = os.path.join(work, "docs-labels")
    os.makedirs(docs)
    label_docs, image_docs = [], []
    expected = {"cells.tif": {"mask": [mask], "masks": [masks]},
                "pyr.ome.tif": {"labels": pyr_labels}}
    with Server(refzarr, index, 2, work) as v2, Server(refzarr, index, 3, work) as v3:
        root = zarr.open_group(zarr.storage.FSStore(v2.base, mode="r"), mode="r")
        for image, labels in expected.items():
            group = root[image + "/0/labels"]
            names = group.attrs.asdict().get("labels")
            if names != list(labels):
                failures.append(f"labels: {image}/0/labels lists {names}, expected {list(labels)}")
                continue
            for name, levels in labels.items():
                label = group[name]
                il = label.attrs.asdict().get("image-label", {})
                if il.get("source") != {"image": "../../"} or il.get("version") != "0.4":
                    failures.append(f"labels: {image} {name}: image-label {il.get('source')}")
                colors = {c["label-value"]: c["rgba"] for c in il.get("colors", [])}
                if colors.get(0) != [0, 0, 0, 0] or len(colors) < 2:
                    failures.append(f"labels: {image} {name}: colours {list(colors)[:4]}")
                ms = label.attrs["multiscales"][0]
                if len(ms["datasets"]) != len(levels):
                    failures.append(f"labels: {image} {name}: {len(ms['datasets'])} levels, "
                                    f"the file has {len(levels)}")
                    continue
                for ds, want in zip(ms["datasets"], levels):
                    got = label[ds["path"]][...]
                    want5 = want.reshape((1, 1) + (want.shape if want.ndim == 3 else
                                                   (1,) + want.shape))
                    if got.shape != want5.shape or not np.array_equal(got, want5):
                        failures.append(f"labels: {image} {name} level {ds['path']} differs "
                                        f"from tifffile ({got.shape} vs {want5.shape})")
                key = f"{image}/0/labels/{name}"
                for server, doc in ((v2, "/.zattrs"), (v3, "/zarr.json")):
                    path = os.path.join(docs, (key + doc).replace("/", "__"))
                    with open(path, "w") as f:
                        json.dump(server.get_json(key + doc), f)
                    label_docs.append(path)
        # The image itself is unchanged by its labels.
        if not np.array_equal(root["cells.tif/0/0"][...], cells.reshape(1, 1, 5, 40, 60)):
            failures.append("labels: cells.tif/0/0 differs from tifffile")
    for strict in (False, True):
        validate(validator, shared, label_docs, strict, "label", failures,
                 "labels: image-label" + (" (strict)" if strict else ""))
        validate(validator, shared, label_docs, strict, "image", failures,
                 "labels: label images" + (" (strict)" if strict else ""))

    # Refusals: a float mask, a mask of another shape, patterns that name no label.
    for case, image, label, words in (
            ("float", np.zeros((20, 30), np.uint16), np.zeros((20, 30), np.float32),
             ["integers", "float"]),
            ("shape", np.zeros((20, 30), np.uint16), np.zeros((20, 31), np.uint16),
             ["matches no level", "1 x 1 x 1 x 20 x 31"])):
        d = os.path.join(work, "refuse-" + case)
        os.makedirs(d)
        tifffile.imwrite(os.path.join(d, "a.tif"), image)
        tifffile.imwrite(os.path.join(d, "a_mask.tif"), label)
        r = subprocess.run([refzarr, "index", "-o", os.path.join(d, "x.db"), "--labels",
                            "{name}_mask.tif", d], capture_output=True, text=True)
        text = r.stdout + r.stderr
        if r.returncode == 0 or not all(w in text for w in
                                        words + [os.path.join(d, "a.tif"),
                                                 os.path.join(d, "a_mask.tif")]):
            failures.append(f"labels: the {case} mask was not refused naming both files "
                            f"(exit {r.returncode}):\n{text}")
    for pattern, words in (("{name}", "no name"), ("mask.tif", "exactly one {name}"),
                           ("h5:/raw=/segmentation", "not implemented")):
        r = subprocess.run([refzarr, "index", "-o", os.path.join(work, "p.db"), "--labels",
                            pattern, folder], capture_output=True, text=True)
        if r.returncode != 2 or words not in r.stderr:
            failures.append(f"labels: --labels {pattern!r}: exit {r.returncode}, {r.stderr}")


def main():
    refzarr, shared = env("REFZARR_BIN"), env("REFZARR_SHARED_DIR")
    validator = env("REFZARR_VALIDATE_NGFF")
    if shutil.which("xmllint") is None:
        sys.exit("FAIL: xmllint is not installed (Debian: libxml2-utils)")
    if os.environ.get("REFZARR_WORK"):
        os.makedirs(os.environ["REFZARR_WORK"], exist_ok=True)
    work = tempfile.mkdtemp(prefix="plates_", dir=os.environ.get("REFZARR_WORK"))
    failures = []
    rng = np.random.default_rng(17)
    try:
        # 96 wells, 2 fields each, 2 channels, tiled 16 x 16.
        wells = [(r, c, [rng_image(rng, f"{letters(r)}{c + 1} field {f}", (1, 2, 1, 32, 48),
                                   np.uint16) for f in range(2)])
                 for r in range(8) for c in range(12)]
        refs_run1 = [f"WellSample:0:{w}:0" for w in range(96)]
        refs_run2 = [f"WellSample:0:{w}:1" for w in range(96)]
        rois = ('<ROI ID="ROI:0" Name="nucleus"><Union><Rectangle ID="Shape:0:0" X="1" Y="2" '
                'Width="5" Height="6"/><Ellipse ID="Shape:0:1" X="9" Y="9" RadiusX="2" '
                'RadiusY="3"/></Union></ROI><ROI ID="ROI:1"><Union><Point ID="Shape:1:0" X="4" '
                'Y="4"/></Union></ROI>')
        path96 = os.path.join(work, "plate96.ome.tif")
        images96, xml96 = write_single_file_plate(
            path96, {"Name": "screen 96", "Rows": 8, "Columns": 12, "RowNamingConvention": "letter",
                     "ColumnNamingConvention": "number"},
            wells, [("run 1", "2024-05-01T10:00:00", refs_run1),
                    ("run 2", "2024-05-01T11:30:00Z", refs_run2)], (16, 16), rois)
        check_xml(xml96, "plate96", failures)
        expected96 = {
            "name": "screen 96", "field_count": 2,
            "rows": [{"name": letters(r)} for r in range(8)],
            "columns": [{"name": str(c + 1)} for c in range(12)],
            "wells": [{"path": f"{letters(r)}/{c + 1}", "rowIndex": r, "columnIndex": c}
                      for r in range(8) for c in range(12)],
            "acquisitions": [{"id": 0, "name": "run 1", "maximumfieldcount": 1,
                              "starttime": 1714557600},
                             {"id": 1, "name": "run 2", "maximumfieldcount": 1,
                              "starttime": 1714563000}]}

        # 384 wells (16 x 24), sparse: 10 wells, one z stack of 3 each, 8-bit, stripped.
        chosen = sorted({(int(r), int(c)) for r, c in zip(rng.integers(0, 16, 10),
                                                          rng.integers(0, 24, 10))})
        wells384 = [(r, c, [rng_image(rng, f"{letters(r)}{c + 1}", (1, 1, 3, 20, 30), np.uint8)])
                    for r, c in chosen]
        path384 = os.path.join(work, "plate384.ome.tif")
        images384, xml384 = write_single_file_plate(
            path384, {"Name": "sparse 384", "Rows": 16, "Columns": 24}, wells384, [], None)
        check_xml(xml384, "plate384", failures)
        expected384 = {
            "name": "sparse 384", "field_count": 1,
            "rows": [{"name": letters(r)} for r in range(16)],
            "columns": [{"name": str(c + 1)} for c in range(24)],
            "wells": [{"path": f"{letters(r)}/{c + 1}", "rowIndex": r, "columnIndex": c}
                      for r, c in chosen]}

        # Multi-file: a companion and one OME-TIFF per well (6 wells of a 24-well plate,
        # 3 fields each, 2 time points).
        multi = os.path.join(work, "multi")
        os.makedirs(multi)
        wells24 = [(r, c, [rng_image(rng, f"{letters(r)}{c + 1} f{f}", (2, 1, 1, 24, 24),
                                     np.uint16) for f in range(3)])
                   for r in range(2) for c in range(3)]
        companion, images24, xml24 = write_multi_file_plate(
            multi, {"Name": "per well", "Rows": 4, "Columns": 6}, wells24,
            [("only run", "2023-01-02T03:04:05+01:00",
              [f"WellSample:0:{w}:{f}" for w in range(6) for f in range(3)])])
        check_xml(xml24, "multi-file plate", failures)
        expected24 = {"name": "per well", "field_count": 3,
                      "acquisitions": [{"id": 0, "name": "only run", "maximumfieldcount": 3,
                                        "starttime": 1672625045}]}

        total = 0
        for name, source, images, expected in (
                ("plate96", path96, images96, expected96),
                ("plate384", path384, images384, expected384),
                ("multi-file plate", companion, images24, expected24)):
            index = os.path.join(work, name.replace(" ", "_") + ".refs.db")
            r = subprocess.run([refzarr, "index", "-o", index, source], capture_output=True,
                               text=True)
            if r.returncode != 0:
                failures.append(f"{name}: refzarr index failed:\n{r.stdout}{r.stderr}")
                continue
            total += check_plate(name, refzarr, index, images, expected, work, shared,
                                 validator, failures)

        # ROIs: kept in OME/METADATA.ome.xml, summarised by `info`.
        index96 = os.path.join(work, "plate96.refs.db")
        r = subprocess.run([refzarr, "cat", index96, "OME/METADATA.ome.xml"], capture_output=True)
        if r.returncode != 0 or b'<ROI ID="ROI:0" Name="nucleus">' not in r.stdout:
            failures.append(f"OME/METADATA.ome.xml lacks the ROIs (exit {r.returncode})")
        r = subprocess.run([refzarr, "info", index96], capture_output=True, text=True)
        if r.returncode != 0:
            failures.append(f"refzarr info failed: {r.stderr}")
        else:
            for want in ("plate \"screen 96\": 8 x 12 wells, 96 with fields, 192 fields",
                         "2 ROIs", "ROI:0 (nucleus): Rectangle, Ellipse; images 0",
                         "ROI:1: Point; images 1"):
                if want not in r.stdout:
                    failures.append(f"refzarr info does not say {want!r}:\n{r.stdout}")
        check_labels(refzarr, work, shared, validator, failures)
        print(f"{total} plate fields equal to tifffile (3 plates), documents validated; "
              f"label images checked")
        for f in failures:
            print("FAIL " + f)
        return 1 if failures else 0
    finally:
        if not failures:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
