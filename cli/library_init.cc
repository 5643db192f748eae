#include "cli/library_init.h"

#include <tiffio.h>

namespace refzarr {

LibraryInit::LibraryInit() {
  TIFFSetErrorHandler(nullptr);
  TIFFSetWarningHandler(nullptr);
}

LibraryInit::~LibraryInit() = default;

}  // namespace refzarr
