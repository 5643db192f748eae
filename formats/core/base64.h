// Base64 (RFC 4648, standard alphabet, '=' padding): how binary values travel in JSON (JPEG tables,
// fill values, inline chunks in kerchunk references).
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "formats/core/status.h"

namespace refzarr {

/// Encodes bytes with padding.
std::string EncodeBase64(std::span<const std::byte> bytes);
inline std::string EncodeBase64(std::string_view bytes) {
  return EncodeBase64(std::as_bytes(std::span(bytes.data(), bytes.size())));
}

/// Decodes base64, ignoring padding and line breaks. kInvalidArgument on any other character.
Result<std::string> DecodeBase64(std::string_view text);

}  // namespace refzarr
