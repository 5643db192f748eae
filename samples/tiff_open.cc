#include "samples/tiff_open.h"

#include <cstdarg>
#include <cstdio>

namespace refzarr::samples {
namespace {

struct OptionsDeleter {
  void operator()(TIFFOpenOptions* o) const { TIFFOpenOptionsFree(o); }
};

int CollectError(TIFF*, void* user_data, const char* module, const char* fmt, va_list ap) {
  char buf[1024];
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  auto* log = static_cast<std::string*>(user_data);
  if (!log->empty()) *log += "; ";
  *log += (module != nullptr ? std::string(module) + ": " : std::string()) + buf;
  return 1;
}

int IgnoreWarning(TIFF*, void*, const char*, const char*, va_list) { return 1; }

}  // namespace

TiffPtr OpenTiffForWriting(const std::string& path, const std::string& mode, std::string* log) {
  std::unique_ptr<TIFFOpenOptions, OptionsDeleter> options(TIFFOpenOptionsAlloc());
  TIFFOpenOptionsSetErrorHandlerExtR(options.get(), CollectError, log);
  TIFFOpenOptionsSetWarningHandlerExtR(options.get(), IgnoreWarning, nullptr);
  return TiffPtr(TIFFOpenExt(path.c_str(), mode.c_str(), options.get()));
}

}  // namespace refzarr::samples
