#include "cli/library_init.h"

#include <curl/curl.h>
#include <tiffio.h>

namespace refzarr {

LibraryInit::LibraryInit() {
  TIFFSetErrorHandler(nullptr);
  TIFFSetWarningHandler(nullptr);
  curl_global_init(CURL_GLOBAL_DEFAULT);
}

LibraryInit::~LibraryInit() { curl_global_cleanup(); }

}  // namespace refzarr
