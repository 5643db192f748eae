// The table of source openers, the same in both builds of the registry: opening a local file
// needs no module. Remote schemes (https://, s3://) join it as lines here.
#include "formats/registry/registry.h"

namespace refzarr {

const SourceOpeners& DefaultSourceOpeners() { return LocalSourceOpeners(); }

}  // namespace refzarr
