// Stand-ins for the remote openers in the refzarr binary: the remote module (libcurl, TLS,
// HTTP/2) is loaded the first time a remote URI is stat'ed, opened or listed, so that commands
// on local archives never map those libraries.
#include <mutex>
#include <string>

#include "formats/core/module_loader.h"
#include "formats/registry/remote_openers.h"
#include "formats/remote/remote_module.h"

namespace refzarr::internal {
namespace {

// The module's openers for one table, made at the first use of any of its schemes.
class LoadedRemote {
 public:
  explicit LoadedRemote(RemoteOptions options) : options_(std::move(options)) {}

  Result<const SourceOpener*> Find(std::string_view scheme) {
    std::call_once(once_, [this] {
      static const Result<const RemoteModule*> module =
          LoadModule<RemoteModule>(kRemoteModuleFile, kRemoteModuleSymbol);
      if (!module.ok()) {
        status_ = module.status();
        return;
      }
      openers_ = (*module)->openers(options_);
    });
    RETURN_IF_ERROR(status_);
    for (const auto& o : openers_) {
      if (o->Scheme() == scheme) return o.get();
    }
    return InternalError("the remote module has no opener of " + std::string(scheme) + "://");
  }

 private:
  RemoteOptions options_;
  std::once_flag once_;
  Status status_;
  std::vector<std::unique_ptr<SourceOpener>> openers_;
};

class ModuleOpener final : public SourceOpener {
 public:
  ModuleOpener(std::string scheme, std::shared_ptr<LoadedRemote> loaded)
      : scheme_(std::move(scheme)), loaded_(std::move(loaded)) {}
  std::string_view Scheme() const override { return scheme_; }
  bool ValidatesReads() const override { return true; }  // as the module's openers
  Result<SourceStat> Stat(std::string_view uri) const override {
    ASSIGN_OR_RETURN(const SourceOpener* o, loaded_->Find(scheme_));
    return o->Stat(uri);
  }
  Result<std::unique_ptr<ByteSource>> Open(std::string_view uri) const override {
    ASSIGN_OR_RETURN(const SourceOpener* o, loaded_->Find(scheme_));
    return o->Open(uri);
  }
  Status List(std::string_view prefix,
              const std::function<Status(const ListedSource&)>& each) const override {
    ASSIGN_OR_RETURN(const SourceOpener* o, loaded_->Find(scheme_));
    return o->List(prefix, each);
  }

 private:
  std::string scheme_;
  std::shared_ptr<LoadedRemote> loaded_;
};

}  // namespace

std::vector<std::unique_ptr<SourceOpener>> RemoteOpeners(const RemoteOptions& options) {
  auto loaded = std::make_shared<LoadedRemote>(options);
  std::vector<std::unique_ptr<SourceOpener>> out;
  for (const char* scheme : {"http", "https", "s3"}) {
    out.push_back(std::make_unique<ModuleOpener>(scheme, loaded));
  }
  return out;
}

}  // namespace refzarr::internal
