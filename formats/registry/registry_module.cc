// The tables of registry.h for the refzarr binary: the formats live in the formats module
// (formats_module.h), loaded on first use, so that reading an index and serving pass-through
// chunks never maps libtiff, libhdf5 and the libraries they pull in.
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "formats/core/module_loader.h"
#include "formats/registry/formats_module.h"
#include "formats/registry/registry.h"

namespace refzarr {
namespace {

// The decoder families of the module's DefaultDecoders() (registry_linked.cc), known without
// loading it: a view looks decoders up by family only when it transcodes. A module whose
// families differ fails every decode and check, naming both lists.
constexpr std::string_view kModuleFamilies[] = {"tiff", "hdf5"};

// Loaded once per process (dlopen itself is process-wide); the outcome, failure included, is kept.
Result<const FormatsModule*> LoadFormats() {
  static const Result<const FormatsModule*> module =
      LoadModule<FormatsModule>(kFormatsModuleFile, kFormatsModuleSymbol);
  return module;
}

// The module's decoders, created at the first decode or check of any family; shared by the
// proxies of one DefaultDecoders() table.
class ModuleDecoders {
 public:
  Result<const ChunkDecoder*> Find(std::string_view family) {
    std::call_once(once_, [this] { status_ = Load(); });
    RETURN_IF_ERROR(status_);
    for (const auto& d : decoders_) {
      if (d->Family() == family) return d.get();
    }
    return InternalError("formats module has no decoder of family " + std::string(family));
  }

 private:
  Status Load() {
    ASSIGN_OR_RETURN(const FormatsModule* module, LoadFormats());
    decoders_ = module->decoders();
    std::string expected, found;
    for (std::string_view f : kModuleFamilies) expected += " " + std::string(f);
    for (const auto& d : decoders_) found += " " + std::string(d->Family());
    if (expected != found) {
      return InternalError("formats module " + std::string(kFormatsModuleFile) +
                           " has the decoders" + found + ", this binary expects" + expected);
    }
    return OkStatus();
  }

  std::once_flag once_;
  Status status_;
  std::vector<std::unique_ptr<ChunkDecoder>> decoders_;
};

// Stands for the module's decoder of one family; loads the module at the first call that needs
// the decoder.
class ModuleDecoder final : public ChunkDecoder {
 public:
  ModuleDecoder(std::string_view family, std::shared_ptr<ModuleDecoders> module)
      : family_(family), module_(std::move(module)) {}

  std::string_view Family() const override { return family_; }

  Status Decode(const ArrayDesc& array, std::span<const uint64_t> chunk_coords, const ChunkRef& ref,
                std::span<const std::byte> stored, std::span<std::byte> out) const override {
    ASSIGN_OR_RETURN(const ChunkDecoder* decoder, module_->Find(family_));
    return decoder->Decode(array, chunk_coords, ref, stored, out);
  }

  Status CheckArray(const ArrayDesc& array) const override {
    ASSIGN_OR_RETURN(const ChunkDecoder* decoder, module_->Find(family_));
    return decoder->CheckArray(array);
  }

 private:
  std::string_view family_;
  std::shared_ptr<ModuleDecoders> module_;
};

// What DefaultScanners() gives when the module cannot be loaded (it returns no Status): one
// scanner that claims every file and fails its scan with the load error, so that `refzarr index`
// names the missing module for each file instead of calling the files unrecognised.
class UnloadedScanner final : public Scanner {
 public:
  explicit UnloadedScanner(Status error) : error_(std::move(error)) {}
  std::string_view Name() const override { return "formats module"; }
  bool Sniff(std::span<const std::byte>) const override { return true; }
  Status Scan(ByteSource&, const ScanContext&, ScanSink&) const override { return error_; }

 private:
  Status error_;
};

}  // namespace

std::vector<std::unique_ptr<Scanner>> DefaultScanners() {
  // Scanning always needs the formats: loaded now.
  Result<const FormatsModule*> module = LoadFormats();
  if (module.ok()) return (*module)->scanners();
  std::vector<std::unique_ptr<Scanner>> s;
  s.push_back(std::make_unique<UnloadedScanner>(module.status()));
  return s;
}

std::vector<std::unique_ptr<ChunkDecoder>> DefaultDecoders() {
  auto module = std::make_shared<ModuleDecoders>();
  std::vector<std::unique_ptr<ChunkDecoder>> d;
  for (std::string_view family : kModuleFamilies) {
    d.push_back(std::make_unique<ModuleDecoder>(family, module));
  }
  return d;
}

}  // namespace refzarr
