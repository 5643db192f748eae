#include "tests/indexer/hostile_scanners.h"

#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <string>

#include "indexer/registry.h"

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

}  // namespace

std::vector<std::unique_ptr<Scanner>> ScannersWithHostileOnes() {
  std::vector<std::unique_ptr<Scanner>> s = DefaultScanners();
  s.push_back(std::make_unique<HostileScanner>("CRASH", Behaviour::kCrash));
  s.push_back(std::make_unique<HostileScanner>("HANG", Behaviour::kHang));
  s.push_back(std::make_unique<HostileScanner>("SPIN", Behaviour::kSpin));
  s.push_back(std::make_unique<HostileScanner>("HOG", Behaviour::kHog));
  s.push_back(std::make_unique<HostileScanner>("ABORT", Behaviour::kAbort));
  return s;
}

}  // namespace refzarr::testing
