// NextToken for ListRecommendations paging: an opaque base64 string carrying
// the query (seller, marketplace, per-category generation and filters) and
// the position, sealed with an HMAC so a tampered token is detected
// (NextTokenCorrupted). Pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/data.hpp"

namespace recgate::sandbox {

struct CategoryRequest {
  std::string category;
  std::uint64_t generation = 0;
  std::optional<std::int64_t> last_updated_ms;  // since the Unix epoch
  Filters filters;
};

struct ListCursor {
  std::string seller_id;
  std::string marketplace_id;
  std::vector<CategoryRequest> categories;  // in result order
  std::uint64_t offset = 0;                 // index of the first member of the next page
};

std::string encode_next_token(const ListCursor& cursor);
std::optional<ListCursor> decode_next_token(std::string_view token);

}  // namespace recgate::sandbox
