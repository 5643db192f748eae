// Fuzz target: the OME-XML parser (pugixml underneath) and the TiffData plane mapping the TIFF
// scanner runs on what it parsed. Input: the XML text. Seeds: OME-XML of the samples, realdata and
// make_seeds.py (tests/fuzz/ome_xml/); dictionary ome_xml.dict.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "formats/ome/ome_xml.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace refzarr;
  const std::string_view xml(reinterpret_cast<const char*>(data), size);
  Result<OmeDocument> doc = ParseOmeXml(xml);
  if (!doc.ok()) return 0;
  for (const OmeImage& image : doc->images) {
    for (bool big_endian : {false, true}) (void)OmePixelTypeToDType(image.pixels.type, big_endian);
  }
  // A file of 1,024 IFDs named fuzz.ome.tif holding this XML, as the scanner would describe it.
  PlaneMapContext context{1024, doc->uuid, "fuzz.ome.tif"};
  (void)MapAllPlanes(*doc, context);
  return 0;
}
