// libFuzzer target: the Ads request body validation and the other pure
// parsers of the Ads path (upstream error body, Retry-After, media types).
// Input: a request body. A valid body yields a request whose cache key and
// upstream body are JSON; a rejection is a 400 problem with a JSON body.
#include <cmath>

#include "core/ads/request.hpp"
#include "core/config.hpp"
#include "fuzz_util.hpp"

namespace ads = recgate::ads;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in = recgate::fuzz::as_view(data, size);

  const std::size_t max_asins = recgate::AdsConfig{}.max_asins;  // ads.max_asins's default
  auto r = ads::validate_request(in, max_asins);
  if (r) {
    FUZZ_CHECK(!r->ad_asins.empty(), in);
    FUZZ_CHECK(r->ad_asins.size() <= max_asins, in);
    for (const auto& a : r->ad_asins) FUZZ_CHECK(ads::is_asin(a), in);
    FUZZ_CHECK(r->count >= 1, in);
    bool known_locale = false;
    for (const char* l : ads::kLocales) known_locale = known_locale || r->locale == l;
    FUZZ_CHECK(known_locale, in);
    FUZZ_CHECK(recgate::fuzz::is_json(ads::canonical_key(*r)), ads::canonical_key(*r));
    FUZZ_CHECK(recgate::fuzz::is_json(ads::upstream_body(*r)), ads::upstream_body(*r));
    FUZZ_CHECK(!ads::accept_for(r->group_by).empty(), in);
  } else {
    const auto& p = r.error();
    FUZZ_CHECK(p.status == 400, in);
    FUZZ_CHECK(p.code == "invalid_body" || p.code == "invalid_field", p.code);
    FUZZ_CHECK(recgate::fuzz::is_json(recgate::problem_body(p)), recgate::problem_body(p));
  }

  // The same bytes as an upstream answer and as header values.
  (void)ads::parse_upstream_error(in);
  (void)ads::is_json_document(in);
  (void)ads::is_json_media_type(in);
  if (auto ra = ads::parse_retry_after(in)) FUZZ_CHECK(std::isfinite(*ra) && *ra >= 0, in);
  return 0;
}
