// The codecs module's one export: the linked table (codec_libs.cc), for a binary that loads it.
#include "formats/core/module_loader.h"
#include "store/codecs/codecs.h"

REFZARR_MODULE_EXPORT const refzarr::CodecLibs* refzarr_codecs_module() {
  return &refzarr::LinkedCodecLibs();
}
