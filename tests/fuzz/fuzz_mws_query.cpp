// libFuzzer target: MWS query-string validation (recommendations and
// last-updated). Input: a query string ("marketplace=..&category=..&filter=..").
// Checks what the service relies on: a valid query names an offered category
// list in upstream order with normalized filters; a rejection is a 400 problem
// whose body is one JSON object.
#include <algorithm>

#include "core/mws/model.hpp"
#include "core/mws/sigv2.hpp"
#include "fuzz_util.hpp"

namespace {

using recgate::Problem;
namespace mws = recgate::mws;

void check_problem(const Problem& p, std::string_view in) {
  FUZZ_CHECK(p.status == 400, in);
  FUZZ_CHECK(!p.code.empty() && !p.detail.empty(), in);
  FUZZ_CHECK(recgate::fuzz::is_json(recgate::problem_body(p)), recgate::problem_body(p));
}

void check_query(const mws::Query& q, std::string_view in) {
  const mws::Marketplace* m = mws::find_marketplace(q.marketplace_id);
  FUZZ_CHECK(m != nullptr, in);
  FUZZ_CHECK(!q.categories.empty(), in);
  const auto offered = mws::categories_for(*m);
  std::size_t last = 0;
  for (const auto& c : q.categories) {
    auto it = std::find(offered.begin(), offered.end(), c);
    FUZZ_CHECK(it != offered.end(), in);  // offered by this marketplace
    const auto pos = static_cast<std::size_t>(it - offered.begin()) + 1;
    FUZZ_CHECK(pos > last, in);  // upstream order, no duplicates
    last = pos;
  }
  FUZZ_CHECK(q.filters.empty() || q.categories.size() == 1, in);
  FUZZ_CHECK(std::is_sorted(q.filters.begin(), q.filters.end()), in);
  FUZZ_CHECK(std::adjacent_find(q.filters.begin(), q.filters.end()) == q.filters.end(), in);
  for (const auto& c : q.categories) {
    const auto params = mws::list_params(q.marketplace_id, c, q.filters);
    FUZZ_CHECK(!params.empty(), in);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in = recgate::fuzz::as_view(data, size);
  mws::Params raw;
  if (!mws::parse_form(in, raw)) return 0;  // the server rejects bad escapes before validation

  auto rec = mws::validate_recommendations_query(raw);
  if (rec) check_query(*rec, in);
  else check_problem(rec.error(), in);

  auto lu = mws::validate_last_updated_query(raw);
  if (lu) FUZZ_CHECK(mws::find_marketplace(*lu) != nullptr, in);
  else check_problem(lu.error(), in);
  return 0;
}
