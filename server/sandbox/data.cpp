// The generator behind the sandbox's recommendation lists: a product pool per
// (seller, marketplace), a window of it per category and generation, and
// numbers drawn from a hash so equal inputs give equal output.
#include "sandbox/data.hpp"

#include <cstdio>

#include "sandbox/signature.hpp"

namespace recgate::sandbox {

namespace {

std::uint64_t fnv1a(std::string_view s, std::uint64_t h = 1469598103934665603ULL) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  int range(int lo, int hi) { return lo + static_cast<int>(next() % static_cast<std::uint64_t>(hi - lo + 1)); }

 private:
  std::uint64_t state_;
};

std::uint64_t seed_of(std::initializer_list<std::string_view> parts) {
  std::uint64_t h = 1469598103934665603ULL;
  for (auto p : parts) {
    h = fnv1a(p, h);
    h = fnv1a("\x1f", h);
  }
  return h;
}

const std::vector<std::string>& item_names() {
  static const std::vector<std::string> names = {
      "Café ☕ – Größe 日本",
      "Bolts & Nuts <Heavy Duty> Set",
      "Stainless Steel Water Bottle 750 ml",
      "Kaffeebecher \"Größe L\" 'Classic'",
      "日本茶 セット",
      "Desk Lamp 💡 Warm White",
      "Ünïcödé Spice Rack",
      "Plain Cotton T-Shirt",
  };
  return names;
}

struct Product {
  std::string asin;
  std::string sku;
  std::string upc;  // empty: the product has none
  std::string name;
  std::string brand;
  std::string product_category;
};

Product product(std::string_view seller, const MarketplaceInfo& m, int p) {
  Rng rng(seed_of({"product", seller, m.id, std::to_string(p)}));
  static const char* alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  Product out;
  out.asin = "B0";
  for (int i = 0; i < 8; ++i) out.asin += alnum[rng.next() % 36];
  char sku[48];
  if (p % 6 == 5)
    std::snprintf(sku, sizeof sku, "Größe-L/%s-%04d", std::string(m.code).c_str(), p);
  else
    std::snprintf(sku, sizeof sku, "SKU-%s-%04d", std::string(m.code).c_str(), p);
  out.sku = sku;
  if (p % 4 != 3) {
    std::string digits;
    int odd = 0, even = 0;
    for (int i = 0; i < 11; ++i) {
      const int d = static_cast<int>(rng.next() % 10);
      digits += static_cast<char>('0' + d);
      (i % 2 == 0 ? odd : even) += d;
    }
    digits += static_cast<char>('0' + (10 - (odd * 3 + even) % 10) % 10);
    out.upc = digits;
  }
  const auto& names = item_names();
  out.name = names[static_cast<std::size_t>(p) % names.size()] + " #" + std::to_string(p);
  out.brand = brand_names()[static_cast<std::size_t>(p) % brand_names().size()];
  out.product_category = product_categories()[static_cast<std::size_t>(p / 2) % product_categories().size()];
  return out;
}

std::string money(long long cents) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s%lld.%02lld", cents < 0 ? "-" : "", (cents < 0 ? -cents : cents) / 100,
                (cents < 0 ? -cents : cents) % 100);
  return buf;
}

std::string decimal1(int tenths) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%d.%d", tenths / 10, tenths % 10);
  return buf;
}

void add_price(XmlNode& parent, const char* name, std::string_view currency, long long cents) {
  XmlNode& p = parent.add(name);
  p.add("CurrencyCode", std::string(currency));
  p.add("Amount", money(cents));
}

void add_measure(XmlNode& parent, const char* name, int hundredths, const char* unit) {
  XmlNode& d = parent.add(name);
  d.add("Value", money(hundredths));
  d.add("Unit", unit);
}

void add_identifier(XmlNode& member, const Product& p) {
  XmlNode& id = member.add("ItemIdentifier");
  id.add("Asin", p.asin);
  id.add("Sku", p.sku);
  if (!p.upc.empty()) id.add("Upc", p.upc);
}

std::string recommendation_id(std::string_view category, std::string_view reason, const Product& p) {
  std::string out(category);
  for (std::string_view part : {reason, std::string_view(p.asin), std::string_view(p.sku), std::string_view(p.upc),
                                std::string_view(p.name)}) {
    out += '-';
    out += part;
  }
  return out;
}

// Fields shared by Selection, Fulfillment, GlobalSelling and Advertising up to SalesRank.
void add_brand_block(XmlNode& m, const Product& p, Rng& rng) {
  m.add("BrandName", p.brand);
  m.add("ProductCategory", p.product_category);
  m.add("SalesRank", std::to_string(rng.range(1, 250000)));
}

void add_dimensions(XmlNode& m, const MarketplaceInfo& mk, Rng& rng) {
  XmlNode& d = m.add("ItemDimensions");
  const char* len = mk.metric ? "centimeters" : "inches";
  add_measure(d, "Height", rng.range(100, 6000), len);
  add_measure(d, "Width", rng.range(100, 6000), len);
  add_measure(d, "Length", rng.range(100, 6000), len);
  add_measure(d, "Weight", rng.range(5, 2500), mk.metric ? "kilograms" : "pounds");
}

}  // namespace

XmlNode& XmlNode::add(std::string child_name, std::string child_text) {
  children.push_back(XmlNode{std::move(child_name), std::move(child_text), {}});
  return children.back();
}

const std::vector<std::string>& brand_names() {
  static const std::vector<std::string> brands = {"Acme & Co", "Contoso", "Größe GmbH", "<Fabrikam>", "日本ブランド"};
  return brands;
}

const std::vector<std::string>& product_categories() {
  static const std::vector<std::string> cats = {"Home Improvement", "Kitchen & Dining", "Toys & Games",
                                                "Electronics"};
  return cats;
}

std::vector<Item> generate_items(std::string_view seller_id, const MarketplaceInfo& mk,
                                 const CategorySnapshot& snap, int items_per_category) {
  std::vector<Item> out;
  const int ci = category_index(snap.category);
  if (ci < 0 || snap.generation == 0 || !category_offered(mk.id, snap.category)) return out;
  const auto gen = static_cast<int>(snap.generation % 100000);
  const int count = items_per_category + (gen % 2 == 0 ? 1 : 0);
  const auto updated = snap.last_updated.value_or(std::chrono::system_clock::time_point{});
  const std::string_view cat = snap.category;
  const std::string_view cur = mk.currency;

  for (int k = 0; k < count; ++k) {
    const int pidx = ci * 3 + k + 2 * (gen - 1);
    const Product p = product(seller_id, mk, pidx);
    Rng rng(seed_of({"item", seller_id, mk.id, cat, std::to_string(snap.generation), std::to_string(k)}));
    Item item;
    item.category = snap.category;
    item.brand = p.brand;
    item.product_category = p.product_category;
    XmlNode& m = item.member;
    m.name = "member";
    const std::string last_updated = format_iso_s(updated - std::chrono::minutes(7 * k) -
                                                  std::chrono::seconds(rng.range(0, 59)));
    std::string reason;

    if (cat == "ListingQuality") {
      item.quality_set = pidx % 2 == 0 ? "Defect" : "Quarantine";
      item.listing_status = pidx % 3 == 1 ? "Inactive" : "Active";
      static const char* groups[][3] = {{"Images", "main_image_url", "MissingMainImage"},
                                        {"Description", "product_description", "MissingDescription"},
                                        {"Identifiers", "external_product_id", "InvalidUPC"}};
      const auto& g = groups[pidx % 3];
      reason = g[2];
      m.add("QualitySet", item.quality_set);
      m.add("DefectGroup", g[0]);
      m.add("DefectAttribute", g[1]);
      add_identifier(m, p);
      m.add("ItemName", p.name);
    } else {
      m.add("LastUpdated", last_updated);
      add_identifier(m, p);
      m.add("ItemName", p.name);
      if (cat == "Inventory") {
        static const char* reasons[] = {"OutOfStock", "LowStock", "TooMuchStock", "PopularOutOfStock"};
        reason = reasons[k % 4];
        const int s30 = rng.range(0, 300);
        m.add("FulfillmentChannel", k % 2 == 0 ? "AFN" : "MFN");
        m.add("SalesForTheLast14Days", std::to_string(s30 / 2));
        m.add("SalesForTheLast30Days", std::to_string(s30));
        m.add("AvailableQuantity", std::to_string(reason == "OutOfStock" ? 0 : rng.range(1, 500)));
        m.add("DaysUntilStockRunsOut", std::to_string(rng.range(0, 60)));
        m.add("InboundQuantity", std::to_string(rng.range(0, 200)));
        m.add("RecommendedInboundQuantity", std::to_string(rng.range(10, 400)));
        m.add("DaysOutOfStockLast30Days", std::to_string(rng.range(0, 30)));
        m.add("LostSalesInLast30Days", std::to_string(rng.range(0, 120)));
      } else if (cat == "Selection") {
        item.common = pidx % 3 == 0;
        reason = item.common ? "PopularInYourCategories" : "BasedOnYourCatalog";
        add_brand_block(m, p, rng);
        add_price(m, "BuyboxPrice", cur, rng.range(199, 49999));
        m.add("NumberOfOffers", std::to_string(rng.range(1, 40)));
        m.add("AverageCustomerReview", decimal1(rng.range(10, 50)));
        m.add("NumberOfCustomerReviews", std::to_string(rng.range(0, 5000)));
      } else if (cat == "Pricing") {
        static const char* reasons[] = {"TooExpensive", "AboveMedianPrice"};
        static const char* subconditions[] = {"New", "Mint", "VeryGood", "Good", "Acceptable"};
        reason = reasons[k % 2];
        const bool used = k % 3 == 2;
        const long long lowest = rng.range(199, 29999);
        const long long yours = lowest + rng.range(1, 5000);
        m.add("Condition", used ? "Used" : "New");
        m.add("SubCondition", used ? subconditions[1 + rng.range(0, 3)] : "New");
        m.add("FulfillmentChannel", k % 2 == 0 ? "MFN" : "AFN");
        add_price(m, "YourPricePlusShipping", cur, yours);
        add_price(m, "LowestPricePlusShipping", cur, lowest);
        add_price(m, "PriceDifferenceToLowPrice", cur, yours - lowest);
        add_price(m, "MedianPricePlusShipping", cur, lowest + (yours - lowest) / 2);
        add_price(m, "LowestMerchantFulfilledOfferPrice", cur, lowest + rng.range(0, 300));
        add_price(m, "LowestAmazonFulfilledOfferPrice", cur, lowest + rng.range(0, 600));
        const int mfn = rng.range(0, 20), afn = rng.range(1, 20);
        m.add("NumberOfOffers", std::to_string(mfn + afn));
        m.add("NumberOfMerchantFulfilledOffers", std::to_string(mfn));
        m.add("NumberOfAmazonFulfilledOffers", std::to_string(afn));
      } else if (cat == "Fulfillment" || cat == "GlobalSelling") {
        reason = cat == "Fulfillment" ? (k % 2 == 0 ? "UseFBA" : "HighDemandWithPrime")
                                      : (k % 2 == 0 ? "SellInNewMarketplace" : "HighDemandAbroad");
        add_brand_block(m, p, rng);
        add_price(m, "BuyboxPrice", cur, rng.range(199, 49999));
        const int offers = rng.range(1, 40);
        m.add("NumberOfOffers", std::to_string(offers));
        m.add("NumberOfOffersFulfilledByAmazon", std::to_string(rng.range(0, offers)));
        m.add("AverageCustomerReview", decimal1(rng.range(10, 50)));
        m.add("NumberOfCustomerReviews", std::to_string(rng.range(0, 5000)));
        add_dimensions(m, mk, rng);
      } else {  // Advertising
        reason = k % 2 == 0 ? "SponsoredProductsOpportunity" : "LowVisibility";
        add_brand_block(m, p, rng);
        const long long lowest = rng.range(199, 29999);
        add_price(m, "YourPricePlusShipping", cur, lowest + rng.range(0, 3000));
        add_price(m, "LowestPricePlusShipping", cur, lowest);
        m.add("AvailableQuantity", std::to_string(rng.range(1, 500)));
        m.add("SalesForTheLast30Days", std::to_string(rng.range(0, 300)));
      }
    }
    m.add("RecommendationId", recommendation_id(cat, reason, p));
    m.add("RecommendationReason", reason);
    out.push_back(std::move(item));
  }
  return out;
}

bool item_matches(const Item& item, const Filters& filters) {
  for (const auto& [name, value] : filters) {
    bool any = false, checked = false;
    for (const auto& [n2, v2] : filters) {
      if (n2 != name) continue;
      checked = true;
      if (n2 == "BrandName") any = any || item.brand == v2;
      else if (n2 == "ProductCategory") any = any || item.product_category == v2;
      else if (n2 == "QualitySet") any = any || item.quality_set == v2;
      else if (n2 == "ListingStatus") any = any || item.listing_status == v2;
      else if (n2 == "IncludeCommonRecommendations") any = any || v2 == "true" || !item.common;
      else any = true;
    }
    if (checked && !any) return false;
  }
  return true;
}

}  // namespace recgate::sandbox
