// Deterministic recommendation data: every member of every category is a
// pure function of (seller, marketplace, category, generation, last-updated
// time), with every field of docs/upstreams.md A.2, plus the hidden attributes that
// CategoryQuery filters select on. No I/O, no clock.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sandbox/catalog.hpp"

namespace recgate::sandbox {

struct XmlNode {
  std::string name;
  std::string text;
  std::vector<XmlNode> children;

  XmlNode& add(std::string child_name, std::string child_text = {});
};

struct Item {
  std::string category;
  XmlNode member;  // <member>...</member>
  // What the filters look at (some also appear as fields).
  std::string brand;
  std::string product_category;
  std::string quality_set;     // ListingQuality: Defect / Quarantine
  std::string listing_status;  // ListingQuality: Active / Inactive
  bool common = false;         // Selection: common to all sellers
};

struct CategorySnapshot {
  std::string category;
  std::uint64_t generation = 1;  // 0: no active recommendations
  std::optional<std::chrono::system_clock::time_point> last_updated;
};

// Members of one category, in a stable order.
std::vector<Item> generate_items(std::string_view seller_id, const MarketplaceInfo& marketplace,
                                 const CategorySnapshot& snapshot, int items_per_category);

// FilterOption pairs of one CategoryQuery: different names must all match,
// repeated names match any of their values.
using Filters = std::vector<std::pair<std::string, std::string>>;
bool item_matches(const Item& item, const Filters& filters);

// Names used by the generator (tests pick filter values from these).
const std::vector<std::string>& brand_names();
const std::vector<std::string>& product_categories();

}  // namespace recgate::sandbox
