// Codecs() for the refzarr binary: the libraries live in refzarr_codecs.so, loaded on first use.
#include "formats/core/module_loader.h"
#include "store/codecs/codecs.h"

namespace refzarr {

Result<const CodecLibs*> Codecs() {
  static const Result<const CodecLibs*> module =
      LoadModule<CodecLibs>(kCodecsModuleFile, kCodecsModuleSymbol);
  return module;
}

}  // namespace refzarr
