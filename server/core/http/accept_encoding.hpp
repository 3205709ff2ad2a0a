// Content negotiation on Accept-Encoding (RFC 9110 §12.5.3): whether an
// answer may go out gzip-encoded. A pure function of the field value.
#pragma once

#include <string_view>

namespace recgate::http {

// True when the field value lets the answer be sent as gzip: "gzip" (or its
// alias "x-gzip", or "*" when neither is listed) with a q-value above 0, and
// not ranked below identity ("identity", or "*" standing for it, with a
// higher q). Empty, malformed elements or q-values: that element is ignored,
// so a garbled field falls back to identity.
bool accepts_gzip(std::string_view accept_encoding);

}  // namespace recgate::http
