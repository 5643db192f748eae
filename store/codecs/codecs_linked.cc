// Codecs() for every program but the refzarr binary: the libraries are linked in.
#include "store/codecs/codecs.h"

namespace refzarr {

Result<const CodecLibs*> Codecs() { return &LinkedCodecLibs(); }

}  // namespace refzarr
