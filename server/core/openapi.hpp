// docs/openapi.yaml as compiled into the binary (cmake/embed_file.cmake), so
// recgate serves its own contract at GET /openapi.yaml with no file beside it.
#pragma once

#include <string_view>

namespace recgate {

std::string_view openapi_document();

}  // namespace recgate
