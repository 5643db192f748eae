// File sequences (indexer/file_sequence.h): which names form a sequence and where each file sits,
// and how the members' scans become one image. The index itself, read back by zarr-python and
// compared with tifffile file by file, is tests/e2e/stack_e2e.py.
#include "indexer/file_sequence.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include <string>
#include <vector>

namespace refzarr {
namespace {

std::vector<Sequence> Find(const std::vector<std::string>& rules, std::vector<std::string> names,
                           std::vector<bool>* taken_out = nullptr,
                           std::vector<std::string> folders = {}) {
  std::vector<StackRule> parsed;
  for (const std::string& r : rules) {
    Result<StackRule> rule = ParseStackRule(r);
    EXPECT_TRUE(rule.ok()) << r << ": " << rule.status().message();
    if (rule.ok()) parsed.push_back(*rule);
  }
  std::sort(names.begin(), names.end());
  std::vector<bool> taken;
  std::vector<Sequence> out = FindSequences(parsed, names, folders, taken);
  if (taken_out) *taken_out = taken;
  return out;
}

TEST(StackRule, ParsesPatternsNamesAndAuto) {
  Result<StackRule> r = ParseStackRule("scan_t{t}_c{c}_z{z}.tif");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->automatic);
  EXPECT_EQ(r->name, "");
  EXPECT_EQ(r->pattern, "scan_t{t}_c{c}_z{z}.tif");
  r = ParseStackRule("brain=b_{z}.tif");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->name, "brain");
  EXPECT_EQ(r->pattern, "b_{z}.tif");
  r = ParseStackRule("a=b{z}=c.tif");  // only an '=' before the first field names
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->name, "a");
  EXPECT_EQ(r->pattern, "b{z}=c.tif");
  EXPECT_TRUE(ParseStackRule("auto")->automatic);
}

TEST(StackRule, RefusesWhatCannotBeMatched) {
  for (const char* bad : {"plain.tif", "a{q}.tif", "a{z}_{z}.tif", "a{z}{t}.tif", "d/a{z}.tif",
                          "=a{z}.tif", "a{z.tif"}) {
    Result<StackRule> r = ParseStackRule(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_NE(ParseStackRule("a{q}.tif").status().message().find("unknown field {q}"),
            std::string::npos);
}

TEST(FindSequences, APatternPlacesEachFileByItsNumbers) {
  std::vector<bool> taken;
  auto seqs = Find({"scan_t{t}_z{z}.tif"},
                   {"scan_t1_z0.tif", "scan_t1_z2.tif", "scan_t2_z0.tif", "scan_t2_z4.tif",
                    "scan_t2_z6.tif", "notes.txt", "scan_t1_z0.tif.bak"},
                   &taken);
  ASSERT_EQ(seqs.size(), 1u);
  const Sequence& s = seqs[0];
  EXPECT_EQ(s.name, "scan");
  EXPECT_EQ(s.problem, "");
  // z numbers 0, 2, 4, 6: step 2, four planes; t 1..2.
  EXPECT_EQ(s.extent, (std::array<uint64_t, 3>{2, 1, 4}));
  EXPECT_EQ(s.first, (std::array<uint64_t, 3>{1, 0, 0}));
  EXPECT_EQ(s.step[2], 2u);
  ASSERT_EQ(s.members.size(), 5u);
  EXPECT_EQ(s.members[0].name, "scan_t1_z0.tif");
  EXPECT_EQ(s.members[1].position, (std::array<uint64_t, 3>{0, 0, 1}));
  EXPECT_EQ(s.members[4].name, "scan_t2_z6.tif");
  EXPECT_EQ(s.members[4].position, (std::array<uint64_t, 3>{1, 0, 3}));
  EXPECT_EQ(s.Missing(), 3u);
  EXPECT_EQ(s.Describe({0, 0, 3}), "t=1 z=6");
  // Sorted names: notes.txt, scan_t1_z0.tif, scan_t1_z0.tif.bak, ...: only pattern matches taken.
  EXPECT_EQ(taken, (std::vector<bool>{false, true, false, true, true, true, true}));
}

TEST(FindSequences, TwoNamesOfOnePlaneAreAProblem) {
  auto seqs = Find({"a_z{z}.tif"}, {"a_z1.tif", "a_z01.tif", "a_z2.tif"});
  ASSERT_EQ(seqs.size(), 1u);
  EXPECT_NE(seqs[0].problem.find("'a_z01.tif' and 'a_z1.tif' are the same plane"),
            std::string::npos)
      << seqs[0].problem;
}

TEST(FindSequences, NamesAreGivenOrDerivedAndNeverCollide) {
  EXPECT_EQ(Find({"b=a_z{z}.tif"}, {"a_z1.tif"})[0].name, "b");
  EXPECT_EQ(Find({"{z}.tif"}, {"1.tif", "2.tif"})[0].name, "stack");
  EXPECT_EQ(Find({"pos1_ch{c}_z{z}.tif"}, {"pos1_ch1_z1.tif"})[0].name, "pos1");
  EXPECT_EQ(Find({"img{z}.tif"}, {"img1.tif"})[0].name, "img");
  // A subfolder or file already called so: ".stack" is added.
  EXPECT_EQ(Find({"img{z}.tif"}, {"img1.tif"}, nullptr, {"img"})[0].name, "img.stack");
  EXPECT_EQ(Find({"img{z}.tif"}, {"img1.tif", "img"})[0].name, "img.stack");
  auto two = Find({"a_z{z}.tif", "a_t{t}.tif"}, {"a_z1.tif", "a_t1.tif"});
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].name, "a");
  EXPECT_EQ(two[1].name, "a.stack");
}

TEST(FindSequences, EarlierRulesTakeTheirFilesFirst) {
  auto seqs = Find({"x_z{z}.tif", "auto"}, {"x_z1.tif", "x_z2.tif", "y_z1.tif", "y_z2.tif"});
  ASSERT_EQ(seqs.size(), 2u);
  EXPECT_EQ(seqs[0].pattern, "x_z{z}.tif");
  EXPECT_EQ(seqs[0].members.size(), 2u);
  EXPECT_EQ(seqs[1].pattern, "y_z{z}.tif");
}

TEST(FindSequences, AutoFindsTheVaryingLabelledFields) {
  std::vector<bool> taken;
  auto seqs = Find({"auto"},
                   {"pos01_t0001_ch1_z01.tif", "pos01_t0001_ch1_z02.tif", "pos01_t0001_ch2_z01.tif",
                    "pos01_t0001_ch2_z02.tif", "pos01_t0002_ch1_z01.tif", "pos01_t0002_ch1_z02.tif",
                    "pos01_t0002_ch2_z01.tif", "pos01_t0002_ch2_z02.tif", "overview.tif",
                    "img7.tif", "img8.tif", "img9.tif", "a1_b1.tif", "a1_b2.tif", "a2_b1.tif"},
                   &taken);
  ASSERT_EQ(seqs.size(), 2u);
  // Constant numbers (pos01) stay literal; t, ch, z are told by the letters before them.
  EXPECT_EQ(seqs[1].pattern, "pos01_t{t}_ch{c}_z{z}.tif");
  EXPECT_EQ(seqs[1].name, "pos01");
  EXPECT_EQ(seqs[1].extent, (std::array<uint64_t, 3>{2, 2, 2}));
  EXPECT_EQ(seqs[1].Missing(), 0u);
  // One varying field without a label is z.
  EXPECT_EQ(seqs[0].pattern, "img{z}.tif");
  EXPECT_EQ(seqs[0].extent[2], 3u);
  // a{}_b{}: two fields that name no axis are left as files, and so is a lone file.
  size_t files = 0;
  for (bool t : taken) files += t ? 0 : 1;
  EXPECT_EQ(files, 4u);
}

// A member's scan as the TIFF scanner gives it: the file group, an image at "0" with one level
// "0/0" of shape (1, 1, 1, 4, 6) in 2 x 3 tiles, chunk i at offset 100 * i + base.
ScannedFile Member(uint64_t base, std::vector<uint64_t> shape = {1, 1, 1, 4, 6}) {
  ScannedFile f;
  f.groups.push_back({"", {{"bioformats2raw.layout", 3}}, std::nullopt});
  ImageDesc image;
  for (const char* a : {"t", "c", "z", "y", "x"}) image.axes.push_back({a, "", ""});
  image.levels = {"0"};
  image.scales = {{1, 1, 1, 1, 1}};
  ChannelDesc ch;
  ch.label = "own";
  ch.color = 0x00FF00;
  ch.window = std::pair<double, double>(base, base + 10);
  image.channels = {ch};
  f.groups.push_back({"0", nlohmann::json::object(), image});
  ScannedFile::Array a;
  a.path = "0/0";
  a.desc.shape = shape;
  a.desc.chunks = {1, 1, 1, 2, 3};
  a.desc.dtype = DType::Make('u', 2);
  for (uint64_t i = 0; i < a.desc.ChunkCount(); ++i) a.chunks.push_back({i, {0, base + 100 * i, 50, 0}});
  f.arrays.push_back(a);
  return f;
}

TEST(StackBuilder, PlacesEveryMembersChunksAtItsPosition) {
  auto seqs = Find({"s_c{c}_z{z}.tif"}, {"s_c0_z0.tif", "s_c0_z1.tif", "s_c1_z1.tif"});
  ASSERT_EQ(seqs.size(), 1u);
  const Sequence& seq = seqs[0];
  RecordingSink out;
  StackBuilder b(seq, out);
  ASSERT_TRUE(b.Add(0, "file:///d/s_c0_z0.tif", Member(1000)).ok());
  ASSERT_TRUE(b.Add(1, "file:///d/s_c0_z1.tif", Member(2000)).ok());
  ASSERT_TRUE(b.Add(2, "file:///d/s_c1_z1.tif", Member(3000)).ok());
  ASSERT_TRUE(b.Finish().ok());
  ASSERT_TRUE(out.Finish().ok());
  const ScannedFile& f = out.result();
  EXPECT_EQ(f.companions, (std::vector<std::string>{"file:///d/s_c0_z1.tif", "file:///d/s_c1_z1.tif"}));
  const ScannedFile::Array* a = f.FindArray("0/0");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->desc.shape, (std::vector<uint64_t>{1, 2, 2, 4, 6}));
  EXPECT_EQ(a->desc.chunks, (std::vector<uint64_t>{1, 1, 1, 2, 3}));
  // Grid (1, 2, 2, 2, 2): chunk (0, c, z, y, x) is 8c + 4z + 2y + x. Member 1 (c 0, z 1) is
  // source 1, member 2 (c 1, z 1) source 2; (c 1, z 0) has no file.
  std::map<uint64_t, ChunkRef> got(a->chunks.begin(), a->chunks.end());
  ASSERT_EQ(got.size(), 12u);
  EXPECT_EQ(got.at(0), (ChunkRef{0, 1000, 50, 0}));
  EXPECT_EQ(got.at(3), (ChunkRef{0, 1300, 50, 0}));
  EXPECT_EQ(got.at(4), (ChunkRef{1, 2000, 50, 0}));
  EXPECT_EQ(got.at(14), (ChunkRef{2, 3200, 50, 0}));
  EXPECT_EQ(got.count(8), 0u);
  const ScannedFile::Group* image = f.FindGroup("0");
  ASSERT_TRUE(image && image->image);
  EXPECT_EQ(image->image->name, "s");
  ASSERT_EQ(image->image->channels.size(), 2u);
  EXPECT_EQ(image->image->channels[0].label, "c=0");
  EXPECT_EQ(image->image->channels[0].window, (std::pair<double, double>(1000, 1010)));
  EXPECT_EQ(image->image->channels[1].window, (std::pair<double, double>(3000, 3010)));
  ASSERT_EQ(f.warnings.size(), 1u);
  EXPECT_NE(f.warnings[0].find("1 of 4 planes have no file and read as the fill value (c=1 z=0)"),
            std::string::npos)
      << f.warnings[0];
}

TEST(StackBuilder, RefusesMembersThatDifferNamingTheFirstDifference) {
  auto seqs = Find({"s_z{z}.tif"}, {"s_z0.tif", "s_z1.tif"});
  RecordingSink out;
  StackBuilder b(seqs[0], out);
  ASSERT_TRUE(b.Add(0, "file:///d/s_z0.tif", Member(0)).ok());
  Status st = b.Add(1, "file:///d/s_z1.tif", Member(0, {1, 1, 1, 4, 8}));
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("/d/s_z1.tif differs from /d/s_z0.tif in 0/0: shape [1,1,1,4,6] vs [1,1,1,4,8]"),
            std::string::npos)
      << st.message();

  RecordingSink out2;
  StackBuilder thick(seqs[0], out2);
  st = thick.Add(0, "file:///d/s_z0.tif", Member(0, {1, 1, 3, 4, 6}));
  EXPECT_NE(st.message().find("is 3 along z; a sequence stacks files of one plane along it"),
            std::string::npos)
      << st.message();
}

TEST(StackBuilder, ARefusedMemberArrayRefusesTheImagesArray) {
  auto seqs = Find({"s_z{z}.tif"}, {"s_z0.tif", "s_z1.tif"});
  RecordingSink out;
  StackBuilder b(seqs[0], out);
  ASSERT_TRUE(b.Add(0, "file:///d/s_z0.tif", Member(0)).ok());
  ScannedFile broken = Member(0);
  broken.arrays.clear();
  broken.refused.push_back({"0/0", "chunk 3 ends past the end of the file"});
  ASSERT_TRUE(b.Add(1, "file:///d/s_z1.tif", broken).ok());
  ASSERT_TRUE(b.Finish().ok());
  ASSERT_TRUE(out.Finish().ok());
  EXPECT_EQ(out.result().FindArray("0/0"), nullptr);
  ASSERT_EQ(out.result().refused.size(), 1u);
  EXPECT_EQ(out.result().refused[0].reason, "s_z1.tif: chunk 3 ends past the end of the file");
}

}  // namespace
}  // namespace refzarr
