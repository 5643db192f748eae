// Modules: the parts of refzarr that need heavy libraries (the formats: libtiff, libhdf5 and what
// they pull in; the HTTP front end: libmicrohttpd; the FUSE front end: libfuse3), built as shared
// objects that the refzarr binary loads on first use, so that reading an index (`refzarr cat`,
// `ls`, `info`, pass-through chunks) maps none of those libraries.
//
// A module is a shared object in ModuleDir() that exports exactly one C factory function,
// `const T* <symbol>()`, returning a table of function pointers or factories (T) declared in the
// module's header. A module links its own copy of the static libraries it needs (refzarr_core
// included) with their symbols hidden, so the program and the module share nothing but
// interfaces (virtual calls) and plain structs. Modules are never unloaded.
#pragma once

#include <filesystem>
#include <string_view>

#include "formats/core/status.h"

/// Marks a module's factory function: the one symbol the module exports.
#define REFZARR_MODULE_EXPORT extern "C" __attribute__((visibility("default")))

namespace refzarr {

/// The folder modules are loaded from: the running executable's folder joined with the path from
/// the install's bin folder to lib/refzarr (in the build tree: build/lib/refzarr). kIo when the
/// executable's path cannot be read (/proc/self/exe).
Result<std::filesystem::path> ModuleDir();

/// Loads the module `file` ("refzarr_formats.so") from ModuleDir(), if not loaded yet, and returns
/// the address of its factory `symbol`. kIo naming the module's path and dlerror() when it is
/// missing, cannot be loaded (a library it needs is missing) or lacks the symbol.
Result<void*> LoadModuleSymbol(std::string_view file, const char* symbol);

/// LoadModuleSymbol, then calls the factory (a `const T* ()` function) and returns its table.
template <typename T>
Result<const T*> LoadModule(std::string_view file, const char* symbol) {
  Result<void*> factory = LoadModuleSymbol(file, symbol);
  if (!factory.ok()) return factory.status();
  const T* table = reinterpret_cast<const T* (*)()>(*factory)();
  if (table == nullptr) {
    return InternalError("module " + std::string(file) + ": " + symbol + "() returned no table");
  }
  return table;
}

}  // namespace refzarr
