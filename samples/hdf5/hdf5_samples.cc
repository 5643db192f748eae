#include "samples/hdf5/hdf5_samples.h"

#include <hdf5.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <numeric>

#include "formats/hdf5/hdf5_util.h"

namespace refzarr::samples {
namespace {

using internal::CheckErr;
using internal::CheckId;
using internal::H5Id;

// Object timestamps would make files differ from run to run.
H5Id Dcpl() {
  H5Id p(H5Pcreate(H5P_DATASET_CREATE));
  H5Pset_obj_track_times(p.get(), false);
  return p;
}

Result<H5Id> CreateFile(const std::filesystem::path& path, bool latest, hsize_t userblock = 0) {
  H5Id fapl(H5Pcreate(H5P_FILE_ACCESS));
  if (latest) H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
  H5Id fcpl(H5Pcreate(H5P_FILE_CREATE));
  if (userblock) H5Pset_userblock(fcpl.get(), userblock);
  return CheckId(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl.get()), "create " + path.string(), StatusCode::kIo);
}

Result<H5Id> Group(hid_t parent, const std::string& name) {
  H5Id gcpl(H5Pcreate(H5P_GROUP_CREATE));
  H5Pset_obj_track_times(gcpl.get(), false);
  return CheckId(H5Gcreate2(parent, name.c_str(), H5P_DEFAULT, gcpl.get(), H5P_DEFAULT), "group " + name, StatusCode::kIo);
}

Status Write(hid_t parent, const std::string& name, hid_t file_type, hid_t mem_type, const std::vector<hsize_t>& dims,
             const void* data, hid_t dcpl, const std::vector<hsize_t>& max_dims = {}) {
  H5Id space(dims.empty() ? H5Screate(H5S_SCALAR)
                          : H5Screate_simple(static_cast<int>(dims.size()), dims.data(),
                                             max_dims.empty() ? nullptr : max_dims.data()));
  ASSIGN_OR_RETURN(H5Id d, CheckId(H5Dcreate2(parent, name.c_str(), file_type, space.get(), H5P_DEFAULT, dcpl, H5P_DEFAULT),
                                   "dataset " + name, StatusCode::kIo));
  if (data) RETURN_IF_ERROR(CheckErr(H5Dwrite(d.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), "write " + name, StatusCode::kIo));
  return OkStatus();
}

template <typename T>
Status Attr(hid_t obj, const char* name, hid_t file_type, hid_t mem_type, const std::vector<T>& values, bool scalar = false) {
  hsize_t n = values.size();
  H5Id space(scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, nullptr));
  ASSIGN_OR_RETURN(H5Id a, CheckId(H5Acreate2(obj, name, file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT), name, StatusCode::kIo));
  return CheckErr(H5Awrite(a.get(), mem_type, values.data()), name, StatusCode::kIo);
}

Status StringAttr(hid_t obj, const char* name, const std::string& value) {
  H5Id type(H5Tcopy(H5T_C_S1));
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  const char* p = value.c_str();
  H5Id space(H5Screate(H5S_SCALAR));
  ASSIGN_OR_RETURN(H5Id a, CheckId(H5Acreate2(obj, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), name, StatusCode::kIo));
  return CheckErr(H5Awrite(a.get(), type.get(), &p), name, StatusCode::kIo);
}

// Imaris stores every attribute as an array of one-character strings.
Status CharArrayAttr(hid_t obj, const char* name, const std::string& value) {
  H5Id type(H5Tcopy(H5T_C_S1));
  H5Tset_size(type.get(), 1);
  hsize_t n = value.size();
  H5Id space(H5Screate_simple(1, &n, nullptr));
  ASSIGN_OR_RETURN(H5Id a, CheckId(H5Acreate2(obj, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), name, StatusCode::kIo));
  return CheckErr(H5Awrite(a.get(), type.get(), value.data()), name, StatusCode::kIo);
}

uint32_t Hash(uint32_t v) {
  v ^= v >> 16;
  v *= 0x7feb352d;
  v ^= v >> 15;
  v *= 0x846ca68b;
  v ^= v >> 16;
  return v;
}

Status WritePlain(const std::filesystem::path& dir) {
  ASSIGN_OR_RETURN(H5Id f, CreateFile(dir / "plain.h5", false));
  const hid_t root = f.get();
  RETURN_IF_ERROR(StringAttr(root, "title", "refzarr HDF5 sample"));
  RETURN_IF_ERROR(Attr<int32_t>(root, "version", H5T_STD_I32LE, H5T_NATIVE_INT32, {3}, true));
  // Attributes of many types on a group.
  ASSIGN_OR_RETURN(H5Id meta, Group(root, "meta"));
  RETURN_IF_ERROR(Attr<double>(meta.get(), "pi", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {M_PI}, true));
  RETURN_IF_ERROR(Attr<double>(meta.get(), "not_a_number", H5T_IEEE_F64BE, H5T_NATIVE_DOUBLE, {NAN}, true));
  RETURN_IF_ERROR(Attr<int16_t>(meta.get(), "offsets", H5T_STD_I16BE, H5T_NATIVE_INT16, {-3, 0, 7}));
  RETURN_IF_ERROR(Attr<uint64_t>(meta.get(), "big", H5T_STD_U64LE, H5T_NATIVE_UINT64, {18446744073709551615ull}, true));
  RETURN_IF_ERROR(Attr<float>(meta.get(), "spacing", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {0.5f, 0.25f, 2.0f}));
  {
    H5Id t(H5Tcopy(H5T_C_S1));
    H5Tset_size(t.get(), 6);
    H5Tset_strpad(t.get(), H5T_STR_NULLPAD);
    const char names[2][6] = {{'a', 'l', 'p', 'h', 'a', 0}, {'b', 'e', 't', 'a', 0, 0}};
    hsize_t n = 2;
    H5Id space(H5Screate_simple(1, &n, nullptr));
    H5Id a(H5Acreate2(meta.get(), "labels", t.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT));
    RETURN_IF_ERROR(CheckErr(H5Awrite(a.get(), t.get(), names), "labels", StatusCode::kIo));
    // A 2-D attribute and an attribute JSON cannot hold (an object reference).
    hsize_t d2[2] = {2, 3};
    H5Id s2(H5Screate_simple(2, d2, nullptr));
    H5Id m(H5Acreate2(meta.get(), "matrix", H5T_STD_I32LE, s2.get(), H5P_DEFAULT, H5P_DEFAULT));
    const int32_t mv[6] = {1, 2, 3, 4, 5, 6};
    RETURN_IF_ERROR(CheckErr(H5Awrite(m.get(), H5T_NATIVE_INT32, mv), "matrix", StatusCode::kIo));
    hobj_ref_t ref;
    H5Rcreate(&ref, root, "/meta", H5R_OBJECT, -1);
    RETURN_IF_ERROR(Attr<hobj_ref_t>(meta.get(), "self", H5T_STD_REF_OBJ, H5T_STD_REF_OBJ, {ref}, true));
  }
  ASSIGN_OR_RETURN(H5Id chunked, Group(root, "chunked"));
  {
    // uint16 with shuffle + deflate and a fill value, one chunk left unwritten.
    std::vector<uint16_t> v(100 * 80);
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint16_t>((i / 80) * 3 + (i % 80) + (Hash(i) & 15));
    H5Id dcpl = Dcpl();
    hsize_t c[2] = {32, 32};
    H5Pset_chunk(dcpl.get(), 2, c);
    H5Pset_shuffle(dcpl.get());
    H5Pset_deflate(dcpl.get(), 5);
    uint16_t fill = 7;
    H5Pset_fill_value(dcpl.get(), H5T_NATIVE_UINT16, &fill);
    H5Id space(H5Screate_simple(2, std::vector<hsize_t>{100, 80}.data(), nullptr));
    H5Id d(H5Dcreate2(chunked.get(), "gzip_shuffle", H5T_STD_U16LE, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT));
    hsize_t start[2] = {0, 0}, count[2] = {96, 64};
    H5Id fs(H5Dget_space(d.get()));
    H5Sselect_hyperslab(fs.get(), H5S_SELECT_SET, start, nullptr, count, nullptr);
    H5Id ms(H5Screate_simple(2, std::vector<hsize_t>{100, 80}.data(), nullptr));
    H5Sselect_hyperslab(ms.get(), H5S_SELECT_SET, start, nullptr, count, nullptr);
    RETURN_IF_ERROR(CheckErr(H5Dwrite(d.get(), H5T_NATIVE_UINT16, ms.get(), fs.get(), H5P_DEFAULT, v.data()), "gzip_shuffle", StatusCode::kIo));
    // One chunk stored raw (filter mask: both filters skipped).
    std::vector<uint16_t> raw(32 * 32, 4242);
    hsize_t off[2] = {96, 64};
    RETURN_IF_ERROR(CheckErr(H5Dwrite_chunk(d.get(), H5P_DEFAULT, 3, off, raw.size() * 2, raw.data()), "raw chunk", StatusCode::kIo));
  }
  {
    std::vector<int32_t> v(40);
    std::iota(v.begin(), v.end(), -20);
    H5Id dcpl = Dcpl();
    hsize_t c = 16;
    H5Pset_chunk(dcpl.get(), 1, &c);
    H5Pset_fletcher32(dcpl.get());
    RETURN_IF_ERROR(Write(chunked.get(), "fletcher32", H5T_STD_I32LE, H5T_NATIVE_INT32, {40}, v.data(), dcpl.get()));
    H5Id be = Dcpl();
    hsize_t c2[2] = {8, 8};
    H5Pset_chunk(be.get(), 2, c2);
    H5Pset_deflate(be.get(), 1);
    std::vector<int32_t> w(20 * 20);
    for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<int32_t>(Hash(i)) >> 8;
    RETURN_IF_ERROR(Write(chunked.get(), "big_endian_gzip", H5T_STD_I32BE, H5T_NATIVE_INT32, {20, 20}, w.data(), be.get()));
    // NaN fill, partially written.
    H5Id nanfill = Dcpl();
    hsize_t c3[2] = {10, 10};
    H5Pset_chunk(nanfill.get(), 2, c3);
    float fnan = NAN;
    H5Pset_fill_value(nanfill.get(), H5T_NATIVE_FLOAT, &fnan);
    RETURN_IF_ERROR(Write(chunked.get(), "nan_fill", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {50, 50}, nullptr, nanfill.get()));
    H5Id d(H5Dopen2(chunked.get(), "nan_fill", H5P_DEFAULT));
    hsize_t start[2] = {0, 0}, count[2] = {20, 30};
    H5Id fs(H5Dget_space(d.get()));
    H5Sselect_hyperslab(fs.get(), H5S_SELECT_SET, start, nullptr, count, nullptr);
    H5Id ms(H5Screate_simple(2, count, nullptr));
    std::vector<float> part(600);
    for (size_t i = 0; i < part.size(); ++i) part[i] = 0.5f * static_cast<float>(i);
    RETURN_IF_ERROR(CheckErr(H5Dwrite(d.get(), H5T_NATIVE_FLOAT, ms.get(), fs.get(), H5P_DEFAULT, part.data()), "nan_fill", StatusCode::kIo));
  }
  ASSIGN_OR_RETURN(H5Id layouts, Group(root, "layouts"));
  {
    std::vector<double> v(300 * 200);
    for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin(0.001 * static_cast<double>(i));
    RETURN_IF_ERROR(Write(layouts.get(), "contiguous_f8", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {300, 200}, v.data(), Dcpl().get()));
    RETURN_IF_ERROR(Write(layouts.get(), "contiguous_be_f8", H5T_IEEE_F64BE, H5T_NATIVE_DOUBLE, {30, 20}, v.data(), Dcpl().get()));
    H5Id compact = Dcpl();
    H5Pset_layout(compact.get(), H5D_COMPACT);
    std::vector<int16_t> s(10);
    std::iota(s.begin(), s.end(), -5);
    RETURN_IF_ERROR(Write(layouts.get(), "compact_i2", H5T_STD_I16LE, H5T_NATIVE_INT16, {10}, s.data(), compact.get()));
    float scalar = 2.5f;
    RETURN_IF_ERROR(Write(layouts.get(), "scalar_f4", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {}, &scalar, Dcpl().get()));
    // External storage: 100 int32 in two segments of one raw file.
    H5Id ext = Dcpl();
    H5Pset_external(ext.get(), "plain_external.raw", 0, 200);
    H5Pset_external(ext.get(), "plain_external.raw", 256, 200);
    std::vector<int32_t> e(100);
    std::iota(e.begin(), e.end(), 1000);
    {
      // The library writes external files relative to the working directory: write it ourselves.
      std::vector<char> raw(456, 0);
      std::memcpy(raw.data(), e.data(), 200);
      std::memcpy(raw.data() + 256, e.data() + 50, 200);
      std::ofstream out(dir / "plain_external.raw", std::ios::binary);
      out.write(raw.data(), static_cast<std::streamsize>(raw.size()));
    }
    RETURN_IF_ERROR(Write(layouts.get(), "external_i4", H5T_STD_I32LE, H5T_NATIVE_INT32, {100}, nullptr, ext.get()));
  }
  ASSIGN_OR_RETURN(H5Id types, Group(root, "types"));
  {
    H5Id s8(H5Tcopy(H5T_C_S1));
    H5Tset_size(s8.get(), 8);
    const char strings[5][8] = {"one", "two", "three", "four", {'f', 'i', 'v', 'e', 'f', 'i', 'v', 'e'}};
    RETURN_IF_ERROR(Write(types.get(), "strings_S8", s8.get(), s8.get(), {5}, strings, Dcpl().get()));
    struct Rec {
      int32_t x;
      double y;
      char name[4];
    };
    H5Id mem(H5Tcreate(H5T_COMPOUND, sizeof(Rec)));
    H5Id s4(H5Tcopy(H5T_C_S1));
    H5Tset_size(s4.get(), 4);
    H5Tinsert(mem.get(), "x", HOFFSET(Rec, x), H5T_NATIVE_INT32);
    H5Tinsert(mem.get(), "y", HOFFSET(Rec, y), H5T_NATIVE_DOUBLE);
    H5Tinsert(mem.get(), "name", HOFFSET(Rec, name), s4.get());
    std::vector<Rec> recs(6);
    for (int i = 0; i < 6; ++i) recs[i] = {i * 10, i * 0.5, {'r', static_cast<char>('0' + i), 0, 0}};
    H5Id comp_dcpl = Dcpl();
    hsize_t c = 4;
    H5Pset_chunk(comp_dcpl.get(), 1, &c);
    RETURN_IF_ERROR(Write(types.get(), "compound", mem.get(), mem.get(), {6}, recs.data(), comp_dcpl.get()));
    // h5py's complex numbers.
    H5Id cx(H5Tcreate(H5T_COMPOUND, 8));
    H5Tinsert(cx.get(), "r", 0, H5T_IEEE_F32LE);
    H5Tinsert(cx.get(), "i", 4, H5T_IEEE_F32LE);
    std::vector<float> cv = {1, -1, 2, -2, 3, -3};
    RETURN_IF_ERROR(Write(types.get(), "complex64", cx.get(), cx.get(), {3}, cv.data(), Dcpl().get()));
    // h5py's bools: an enum over int8.
    H5Id b(H5Tenum_create(H5T_NATIVE_INT8));
    int8_t fv = 0, tv = 1;
    H5Tenum_insert(b.get(), "FALSE", &fv);
    H5Tenum_insert(b.get(), "TRUE", &tv);
    std::vector<int8_t> bools = {1, 0, 0, 1, 1, 0, 1, 0, 0, 0};
    RETURN_IF_ERROR(Write(types.get(), "bool", b.get(), b.get(), {10}, bools.data(), Dcpl().get()));
    std::vector<uint8_t> u(16 * 16);
    for (size_t i = 0; i < u.size(); ++i) u[i] = static_cast<uint8_t>(Hash(i));
    RETURN_IF_ERROR(Write(types.get(), "uint8", H5T_STD_U8LE, H5T_NATIVE_UINT8, {16, 16}, u.data(), Dcpl().get()));
    std::vector<int64_t> big(12);
    for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<int64_t>(Hash(i)) * -1000003;
    RETURN_IF_ERROR(Write(types.get(), "int64_be", H5T_STD_I64BE, H5T_NATIVE_INT64, {3, 4}, big.data(), Dcpl().get()));
    // Refused: variable-length strings.
    H5Id vs(H5Tcopy(H5T_C_S1));
    H5Tset_size(vs.get(), H5T_VARIABLE);
    const char* words[2] = {"variable", "length"};
    RETURN_IF_ERROR(Write(types.get(), "vlen_strings", vs.get(), vs.get(), {2}, words, Dcpl().get()));
  }
  return OkStatus();
}

Status WriteUserblock(const std::filesystem::path& dir) {
  ASSIGN_OR_RETURN(H5Id f, CreateFile(dir / "userblock.h5", true, 1024));
  std::vector<int32_t> v(64 * 48);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int32_t>(i * 7);
  H5Id dcpl = Dcpl();
  hsize_t c[2] = {16, 16};
  H5Pset_chunk(dcpl.get(), 2, c);
  H5Pset_deflate(dcpl.get(), 3);
  RETURN_IF_ERROR(Write(f.get(), "chunked", H5T_STD_I32LE, H5T_NATIVE_INT32, {64, 48}, v.data(), dcpl.get()));
  RETURN_IF_ERROR(Write(f.get(), "contiguous", H5T_STD_I32LE, H5T_NATIVE_INT32, {64, 48}, v.data(), Dcpl().get()));
  return OkStatus();
}

// ---- Imaris ---------------------------------------------------------------------------------------

std::string Fmt(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.3f", v);
  return b;
}

Status WriteImaris(const std::filesystem::path& dir) {
  const ImarisSampleGeometry g;
  ASSIGN_OR_RETURN(H5Id f, CreateFile(dir / "sample.ims", false));
  const hid_t root = f.get();
  RETURN_IF_ERROR(CharArrayAttr(root, "DataSetDirectoryName", "DataSet"));
  RETURN_IF_ERROR(CharArrayAttr(root, "DataSetInfoDirectoryName", "DataSetInfo"));
  RETURN_IF_ERROR(CharArrayAttr(root, "ImarisDataSet", "ImarisDataSet"));
  RETURN_IF_ERROR(CharArrayAttr(root, "ImarisVersion", "5.5.0"));
  RETURN_IF_ERROR(CharArrayAttr(root, "ThumbnailDirectoryName", "Thumbnail"));
  RETURN_IF_ERROR(Attr<uint32_t>(root, "NumberOfDataSets", H5T_STD_U32LE, H5T_NATIVE_UINT32, {1}));
  ASSIGN_OR_RETURN(H5Id info, Group(root, "DataSetInfo"));
  {
    ASSIGN_OR_RETURN(H5Id image, Group(info.get(), "Image"));
    RETURN_IF_ERROR(CharArrayAttr(image.get(), "X", std::to_string(g.x)));
    RETURN_IF_ERROR(CharArrayAttr(image.get(), "Y", std::to_string(g.y)));
    RETURN_IF_ERROR(CharArrayAttr(image.get(), "Z", std::to_string(g.z)));
    RETURN_IF_ERROR(CharArrayAttr(image.get(), "Unit", "um"));
    RETURN_IF_ERROR(CharArrayAttr(image.get(), "Name", "refzarr sample"));
    RETURN_IF_ERROR(CharArrayAttr(image.get(), "Noc", std::to_string(g.c)));
    // Extents: 0.5 um pixels in x/y, 2 um planes, origin at (10, 20, -4).
    RETURN_IF_ERROR(CharArrayAttr(image.get(), "ExtMin0", Fmt(10.0)));
    RETURN_IF_ERROR(CharArrayAttr(image.get(), "ExtMin1", Fmt(20.0)));
    RETURN_IF_ERROR(CharArrayAttr(image.get(), "ExtMin2", Fmt(-4.0)));
    RETURN_IF_ERROR(CharArrayAttr(image.get(), "ExtMax0", Fmt(10.0 + 0.5 * g.x)));
    RETURN_IF_ERROR(CharArrayAttr(image.get(), "ExtMax1", Fmt(20.0 + 0.5 * g.y)));
    RETURN_IF_ERROR(CharArrayAttr(image.get(), "ExtMax2", Fmt(-4.0 + 2.0 * g.z)));
    const char* names[2] = {"DAPI", "GFP"};
    const char* colors[2] = {"0.000 0.000 1.000", "0.000 1.000 0.000"};
    for (int c = 0; c < g.c; ++c) {
      ASSIGN_OR_RETURN(H5Id ch, Group(info.get(), "Channel " + std::to_string(c)));
      RETURN_IF_ERROR(CharArrayAttr(ch.get(), "Name", names[c]));
      RETURN_IF_ERROR(CharArrayAttr(ch.get(), "Color", colors[c]));
      RETURN_IF_ERROR(CharArrayAttr(ch.get(), "ColorRange", "0.000 4000.000"));
      RETURN_IF_ERROR(CharArrayAttr(ch.get(), "ColorOpacity", "1.000"));
    }
    ASSIGN_OR_RETURN(H5Id ti, Group(info.get(), "TimeInfo"));
    RETURN_IF_ERROR(CharArrayAttr(ti.get(), "DatasetTimePoints", std::to_string(g.t)));
    RETURN_IF_ERROR(CharArrayAttr(ti.get(), "FileTimePoints", std::to_string(g.t)));
    for (int t = 0; t < g.t; ++t) {
      RETURN_IF_ERROR(CharArrayAttr(ti.get(), ("TimePoint" + std::to_string(t + 1)).c_str(),
                                    "2020-01-01 00:00:0" + std::to_string(t) + ".000"));
    }
  }
  ASSIGN_OR_RETURN(H5Id ds, Group(root, "DataSet"));
  int sx = g.x, sy = g.y, sz = g.z;
  for (int r = 0; r < g.levels; ++r) {
    ASSIGN_OR_RETURN(H5Id level, Group(ds.get(), "ResolutionLevel " + std::to_string(r)));
    // Imaris pads every dataset to whole chunks.
    const hsize_t cz = 4, cy = 16, cx = 32;
    const hsize_t pz = (sz + cz - 1) / cz * cz, py = (sy + cy - 1) / cy * cy, px = (sx + cx - 1) / cx * cx;
    for (int t = 0; t < g.t; ++t) {
      ASSIGN_OR_RETURN(H5Id tp, Group(level.get(), "TimePoint " + std::to_string(t)));
      for (int c = 0; c < g.c; ++c) {
        ASSIGN_OR_RETURN(H5Id ch, Group(tp.get(), "Channel " + std::to_string(c)));
        std::vector<uint16_t> v(pz * py * px, 0);
        std::vector<uint64_t> hist(256, 0);
        for (int z = 0; z < sz; ++z) {
          for (int y = 0; y < sy; ++y) {
            for (int x = 0; x < sx; ++x) {
              uint16_t val = SampleVoxel(t, c, r, z, y, x);
              v[(z * py + y) * px + x] = val;
              ++hist[val * 256 / 65536];
            }
          }
        }
        H5Id dcpl = Dcpl();
        hsize_t chunk[3] = {cz, cy, cx};
        H5Pset_chunk(dcpl.get(), 3, chunk);
        H5Pset_shuffle(dcpl.get());
        H5Pset_deflate(dcpl.get(), 2);
        RETURN_IF_ERROR(Write(ch.get(), "Data", H5T_STD_U16LE, H5T_NATIVE_UINT16, {pz, py, px}, v.data(), dcpl.get()));
        RETURN_IF_ERROR(Write(ch.get(), "Histogram", H5T_STD_U64LE, H5T_NATIVE_UINT64, {256}, hist.data(), Dcpl().get()));
        RETURN_IF_ERROR(CharArrayAttr(ch.get(), "ImageSizeX", std::to_string(sx)));
        RETURN_IF_ERROR(CharArrayAttr(ch.get(), "ImageSizeY", std::to_string(sy)));
        RETURN_IF_ERROR(CharArrayAttr(ch.get(), "ImageSizeZ", std::to_string(sz)));
        RETURN_IF_ERROR(CharArrayAttr(ch.get(), "ImageBlockSizeX", std::to_string(cx)));
        RETURN_IF_ERROR(CharArrayAttr(ch.get(), "ImageBlockSizeY", std::to_string(cy)));
        RETURN_IF_ERROR(CharArrayAttr(ch.get(), "ImageBlockSizeZ", std::to_string(cz)));
        RETURN_IF_ERROR(CharArrayAttr(ch.get(), "HistogramMin", "0.000"));
        RETURN_IF_ERROR(CharArrayAttr(ch.get(), "HistogramMax", "65535.000"));
      }
    }
    sx = (sx + 1) / 2;
    sy = (sy + 1) / 2;
    sz = std::max(1, (sz + 1) / 2);
  }
  ASSIGN_OR_RETURN(H5Id thumb, Group(root, "Thumbnail"));
  std::vector<uint8_t> tv(32 * 128);
  for (size_t i = 0; i < tv.size(); ++i) tv[i] = static_cast<uint8_t>(i);
  RETURN_IF_ERROR(Write(thumb.get(), "Data", H5T_STD_U8LE, H5T_NATIVE_UINT8, {32, 128}, tv.data(), Dcpl().get()));
  return OkStatus();
}

// ---- BigDataViewer --------------------------------------------------------------------------------

Status WriteBdv(const std::filesystem::path& dir) {
  const int setups = 2, timepoints = 2, levels = 2;
  const int sx = 50, sy = 40, sz = 6;
  ASSIGN_OR_RETURN(H5Id f, CreateFile(dir / "bdv.h5", false));
  const hid_t root = f.get();
  for (int s = 0; s < setups; ++s) {
    char name[16];
    std::snprintf(name, sizeof name, "s%02d", s);
    ASSIGN_OR_RETURN(H5Id sg, Group(root, name));
    // xyz order, one row per level.
    std::vector<double> res = {1, 1, 1, 2, 2, 2};
    std::vector<int32_t> sub = {32, 16, 4, 16, 16, 2};
    RETURN_IF_ERROR(Write(sg.get(), "resolutions", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {levels, 3}, res.data(), Dcpl().get()));
    RETURN_IF_ERROR(Write(sg.get(), "subdivisions", H5T_STD_I32LE, H5T_NATIVE_INT32, {levels, 3}, sub.data(), Dcpl().get()));
  }
  for (int t = 0; t < timepoints; ++t) {
    char tname[16];
    std::snprintf(tname, sizeof tname, "t%05d", t);
    ASSIGN_OR_RETURN(H5Id tg, Group(root, tname));
    for (int s = 0; s < setups; ++s) {
      char sname[16];
      std::snprintf(sname, sizeof sname, "s%02d", s);
      ASSIGN_OR_RETURN(H5Id sg, Group(tg.get(), sname));
      int lx = sx, ly = sy, lz = sz;
      for (int l = 0; l < levels; ++l) {
        ASSIGN_OR_RETURN(H5Id lg, Group(sg.get(), std::to_string(l)));
        // BigDataViewer stores unsigned 16-bit voxels in signed 16-bit datasets.
        std::vector<uint16_t> v(lz * ly * lx);
        for (int z = 0; z < lz; ++z)
          for (int y = 0; y < ly; ++y)
            for (int x = 0; x < lx; ++x) v[(z * ly + y) * lx + x] = SampleVoxel(t, s, l, z, y, x);
        H5Id dcpl = Dcpl();
        // Chunks are the subdivisions (written above in xyz order).
        hsize_t chunk[3] = {static_cast<hsize_t>(l == 0 ? 4 : 2), 16, static_cast<hsize_t>(l == 0 ? 32 : 16)};
        H5Pset_chunk(dcpl.get(), 3, chunk);
        H5Pset_deflate(dcpl.get(), 1);
        RETURN_IF_ERROR(Write(lg.get(), "cells", H5T_STD_I16LE, H5T_NATIVE_INT16,
                              {static_cast<hsize_t>(lz), static_cast<hsize_t>(ly), static_cast<hsize_t>(lx)}, v.data(), dcpl.get()));
        lx = (lx + 1) / 2;
        ly = (ly + 1) / 2;
        lz = (lz + 1) / 2;
      }
    }
  }
  std::ofstream xml(dir / "bdv.xml");
  xml << R"(<?xml version="1.0" encoding="UTF-8"?>
<SpimData version="0.2">
  <BasePath type="relative">.</BasePath>
  <SequenceDescription>
    <ImageLoader format="bdv.hdf5">
      <hdf5 type="relative">bdv.h5</hdf5>
    </ImageLoader>
    <ViewSetups>
      <ViewSetup>
        <id>0</id>
        <name>channel red</name>
        <size>50 40 6</size>
        <voxelSize>
          <unit>µm</unit>
          <size>0.25 0.25 1.5</size>
        </voxelSize>
      </ViewSetup>
      <ViewSetup>
        <id>1</id>
        <name>channel green</name>
        <size>50 40 6</size>
        <voxelSize>
          <unit>µm</unit>
          <size>0.25 0.25 1.5</size>
        </voxelSize>
      </ViewSetup>
    </ViewSetups>
    <Timepoints type="range">
      <first>0</first>
      <last>1</last>
    </Timepoints>
  </SequenceDescription>
  <ViewRegistrations>
  </ViewRegistrations>
</SpimData>
)";
  return OkStatus();
}

}  // namespace

uint16_t SampleVoxel(int t, int c, int level, int z, int y, int x) {
  const uint32_t smooth = static_cast<uint32_t>(100 * z + 20 * y + 10 * x + 1000 * c + 3000 * t + 7 * level);
  return static_cast<uint16_t>(smooth + (Hash(static_cast<uint32_t>(((t * 4 + c) * 8 + level) * 1000003 + z * 10007 + y * 101 + x)) & 63));
}

Result<std::vector<std::string>> WriteHdf5Samples(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return IoError("create " + dir.string() + ": " + ec.message());
  std::lock_guard lock(internal::Hdf5Mutex());
  internal::Hdf5ErrorSilencer quiet;
  RETURN_IF_ERROR(WritePlain(dir));
  RETURN_IF_ERROR(WriteUserblock(dir));
  RETURN_IF_ERROR(WriteImaris(dir));
  RETURN_IF_ERROR(WriteBdv(dir));
  return std::vector<std::string>{"plain.h5", "plain_external.raw", "userblock.h5", "sample.ims", "bdv.h5", "bdv.xml"};
}

}  // namespace refzarr::samples
