#include "formats/core/module_loader.h"

#include <dlfcn.h>

#include <string>
#include <system_error>

namespace refzarr {
namespace {

// dlerror() after a failed dlopen, without the path in front when it repeats the module's path.
std::string DlError(const std::string& path) {
  const char* error = dlerror();
  std::string message = error != nullptr ? error : "unknown dlopen error";
  if (message.rfind(path + ": ", 0) == 0) message.erase(0, path.size() + 2);
  return message;
}

}  // namespace

Result<std::filesystem::path> ModuleDir() {
  // The executable's own path, not argv[0] or $PATH: the modules are found wherever the binary
  // and its lib/refzarr folder were installed or copied together (like an $ORIGIN rpath).
  std::error_code ec;
  std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return IoError("find the modules: read /proc/self/exe: " + ec.message());
  return (exe.parent_path() / REFZARR_MODULE_DIR_FROM_BIN).lexically_normal();
}

Result<void*> LoadModuleSymbol(std::string_view file, const char* symbol) {
  ASSIGN_OR_RETURN(std::filesystem::path dir, ModuleDir());
  const std::string path = (dir / file).string();
  // RTLD_NOW: a library the module needs that is missing fails here, with its name, rather than
  // at the first call into it. RTLD_LOCAL: the module's symbols stay its own. dlopen of a loaded
  // module returns the same handle, so loading twice is cheap; it is never closed.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) return IoError("load module " + path + ": " + DlError(path));
  void* address = dlsym(handle, symbol);
  if (address == nullptr) {
    return IoError("load module " + path + ": no symbol " + symbol + ": " + DlError(path));
  }
  return address;
}

}  // namespace refzarr
