#include "tests/indexer/hostile_scanners.h"

#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <string>

#include "formats/registry/registry.h"

namespace refzarr::testing {
namespace {

enum class Behaviour { kCrash, kHang, kSpin, kHog, kAbort };

class HostileScanner final : public Scanner {
 public:
  HostileScanner(std::string name, Behaviour behaviour)
      : name_(std::move(name)), magic_("REFZARR-" + name_), behaviour_(behaviour) {}
  std::string_view Name() const override { return name_; }
  bool Sniff(std::span<const std::byte> head) const override {
    return head.size() >= magic_.size() && std::memcmp(head.data(), magic_.data(), magic_.size()) == 0;
  }
  Status Scan(ByteSource&, const ScanContext&, ScanSink& out) const override {
    RETURN_IF_ERROR(out.AddGroup("", {{"before", "the crash"}}));
    switch (behaviour_) {
      case Behaviour::kCrash: std::raise(SIGSEGV); break;
      case Behaviour::kHang:
        while (true) ::pause();
      case Behaviour::kSpin: {
        volatile uint64_t x = 0;
        while (true) x = x + 1;
      }
      case Behaviour::kHog: {
        std::vector<std::unique_ptr<char[]>> blocks;
        while (true) {
          blocks.emplace_back(new char[64 << 20]);
          std::memset(blocks.back().get(), 1, 64 << 20);
        }
      }
      case Behaviour::kAbort: std::abort();
    }
    return InternalError("unreachable");
  }

 private:
  std::string name_, magic_;
  Behaviour behaviour_;
};

// Not hostile: emits an image and arrays with every field of ImageDesc and ArrayDesc set, so a
// test can check that descriptions cross the process boundary whole.
class FullDescriptionScanner final : public Scanner {
 public:
  std::string_view Name() const override { return "FULL"; }
  bool Sniff(std::span<const std::byte> head) const override {
    static constexpr std::string_view kMagic = "REFZARR-FULL";
    return head.size() >= kMagic.size() && std::memcmp(head.data(), kMagic.data(), kMagic.size()) == 0;
  }
  Status Scan(ByteSource&, const ScanContext& context, ScanSink& out) const override {
    RETURN_IF_ERROR(out.AddGroup("", {{"note", "every field"}, {"n", {1, 2.5, nullptr}}}));
    // Companions by URI: one next to the file (resolved from the job's URI), one remote.
    ASSIGN_OR_RETURN(uint32_t next_to, out.AddSource(context.SiblingUri("full companion \u00e9.raw")));
    ASSIGN_OR_RETURN(uint32_t remote, out.AddSource("mem://bucket/full.raw"));
    ImageDesc image;
    image.name = "full \u00e9";
    image.axes = {{"c", "channel", ""}, {"y", "space", "micrometer"}, {"x", "space", "micrometer"}};
    image.levels = {"0"};
    image.scales = {{1, 0.25, 0.125}};
    image.translations = {{0, -3.5, 1e-9}};
    image.channels = {{"DAPI", 0x0000FF, std::pair(10.0, 4000.5), "the file"}, {"GFP", std::nullopt, std::nullopt, ""}};
    RETURN_IF_ERROR(out.AddImage("img", image));
    ArrayDesc a;
    a.shape = {2, 100, 70};
    a.chunks = {1, 64, 64};
    a.dtype = DType::Make('u', 2, '>');
    a.fill_value = 7;
    a.encoding.filters = nlohmann::json::array({{{"id", "shuffle"}, {"elementsize", 2}}});
    a.encoding.compressor = {{"id", "zlib"}, {"level", 1}};
    a.dimension_names = {"c", "y", "x"};
    a.attributes = {{"source", {{"page", 3}}}};
    ASSIGN_OR_RETURN(ArrayHandle h, out.AddArray("img/0", a));
    for (uint64_t i = 0; i < a.ChunkCount(); ++i) {
      const uint32_t source = i % 3 == 0 ? 0 : i % 3 == 1 ? next_to : remote;
      RETURN_IF_ERROR(out.AddChunk(h, i, ChunkRef{source, 100 * i, 50, 0}));
    }
    ArrayDesc rec;
    rec.shape = {5};
    rec.chunks = {5};
    rec.dtype.kind = 'V';
    rec.dtype.size = 6;
    rec.dtype.fields = nlohmann::json::array({{"x", "<i4"}, {"y", "<u2"}});
    rec.fill_value = nullptr;
    ASSIGN_OR_RETURN(ArrayHandle r, out.AddArray("records", rec));
    const std::byte bytes[30] = {std::byte{1}, std::byte{2}};
    return out.AddInlineChunk(r, 0, bytes);
  }
};

}  // namespace

std::vector<std::unique_ptr<Scanner>> ScannersWithHostileOnes() {
  std::vector<std::unique_ptr<Scanner>> s = DefaultScanners();
  s.push_back(std::make_unique<HostileScanner>("CRASH", Behaviour::kCrash));
  s.push_back(std::make_unique<HostileScanner>("HANG", Behaviour::kHang));
  s.push_back(std::make_unique<HostileScanner>("SPIN", Behaviour::kSpin));
  s.push_back(std::make_unique<HostileScanner>("HOG", Behaviour::kHog));
  s.push_back(std::make_unique<HostileScanner>("ABORT", Behaviour::kAbort));
  s.push_back(std::make_unique<FullDescriptionScanner>());
  return s;
}

}  // namespace refzarr::testing
