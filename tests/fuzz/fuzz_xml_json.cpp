// libFuzzer target: upstream MWS XML -> JSON (ListRecommendations pages,
// GetLastUpdatedTime answers, ErrorResponse). Input: first byte picks the
// category, the rest is the XML. Every converted member must be one JSON
// object; a failure must be a 502 upstream_malformed problem.
#include "core/mws/model.hpp"
#include "fuzz_util.hpp"

namespace mws = recgate::mws;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  constexpr std::size_t kCount = std::size(mws::kCategories);
  const std::string category = mws::kCategories[data[0] % kCount];
  const std::string_view xml = recgate::fuzz::as_view(data + 1, size - 1);

  auto page = mws::parse_list_page(xml, category);
  if (page) {
    for (const auto& m : page->members_json) {
      FUZZ_CHECK(recgate::fuzz::is_json(m), m);
      FUZZ_CHECK(!m.empty() && m.front() == '{', m);
    }
  } else {
    FUZZ_CHECK(page.error().status == 502, xml);
    FUZZ_CHECK(recgate::fuzz::is_json(recgate::problem_body(page.error())), recgate::problem_body(page.error()));
  }

  auto lu = mws::parse_last_updated(xml);
  if (lu) FUZZ_CHECK(lu->per_category.size() == kCount, xml);
  else FUZZ_CHECK(lu.error().status == 502, xml);

  (void)mws::parse_error_response(xml);
  return 0;
}
