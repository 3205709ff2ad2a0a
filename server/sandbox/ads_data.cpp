// Deterministic Ads answers and the sandbox's schema checks (see ads_data.hpp).
#include "sandbox/ads_data.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "sandbox/signature.hpp"

namespace recgate::sandbox {

namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

constexpr const char* kLocales[] = {"en_US", "en_GB", "zh_CN", "es_ES", "jp_JP", "de_DE", "fr_FR", "it_IT"};
constexpr std::size_t kMaxAsinAnswers = 1000;
constexpr std::size_t kMaxThemeAnswers = 10;

struct Translation {
  const char* locale;
  ThemeText themes[kThemeCount];
};

const Translation kTranslations[] = {
    {"en_US",
     {{"Top converting targets",
       "Products that converted best for shoppers of your products in the past 30 days, sorted by sales."},
      {"Similar items", "Products frequently viewed together with your products."},
      {"Complements", "Products that complement yours and are often bought with them."},
      {"Similar items with low ratings and reviews",
       "Similar products with fewer than 3 stars and/or fewer than 5 reviews."},
      {"Other books read by your readers", "Books that readers of your books also read."}}},
    {"de_DE",
     {{"Ziele mit den meisten Conversions",
       "Produkte mit den meisten Conversions bei Käufern Ihrer Produkte in den letzten 30 Tagen, nach Umsatz sortiert."},
      {"Ähnliche Artikel", "Produkte, die häufig zusammen mit Ihren Produkten angesehen werden."},
      {"Ergänzende Artikel", "Produkte, die Ihre Produkte ergänzen und oft mit ihnen gekauft werden."},
      {"Ähnliche Artikel mit wenigen Bewertungen",
       "Ähnliche Produkte mit weniger als 3 Sternen und/oder weniger als 5 Rezensionen."},
      {"Andere Bücher Ihrer Leser", "Bücher, die Leser Ihrer Bücher ebenfalls lesen."}}},
    {"fr_FR",
     {{"Cibles les plus performantes",
       "Produits ayant le mieux converti auprès des acheteurs de vos produits ces 30 derniers jours, triés par ventes."},
      {"Articles similaires", "Produits fréquemment consultés avec vos produits."},
      {"Articles complémentaires", "Produits qui complètent les vôtres et sont souvent achetés avec eux."},
      {"Articles similaires peu notés",
       "Produits similaires ayant moins de 3 étoiles et/ou moins de 5 commentaires."},
      {"Autres livres lus par vos lecteurs", "Livres également lus par les lecteurs de vos livres."}}},
    {"it_IT",
     {{"Obiettivi con più conversioni",
       "Prodotti con più conversioni tra gli acquirenti dei tuoi prodotti negli ultimi 30 giorni, ordinati per vendite."},
      {"Articoli simili", "Prodotti visualizzati spesso insieme ai tuoi prodotti."},
      {"Articoli complementari", "Prodotti che completano i tuoi e vengono spesso acquistati insieme."},
      {"Articoli simili con poche valutazioni", "Prodotti simili con meno di 3 stelle e/o meno di 5 recensioni."},
      {"Altri libri letti dai tuoi lettori", "Libri letti anche dai lettori dei tuoi libri."}}},
    {"es_ES",
     {{"Objetivos con más conversiones",
       "Productos con más conversiones entre los compradores de tus productos en los últimos 30 días, por ventas."},
      {"Artículos similares", "Productos vistos con frecuencia junto con tus productos."},
      {"Complementos", "Productos que complementan los tuyos y que a menudo se compran con ellos."},
      {"Artículos similares con pocas valoraciones",
       "Productos similares con menos de 3 estrellas y/o menos de 5 reseñas."},
      {"Otros libros leídos por tus lectores", "Libros que también leen los lectores de tus libros."}}},
    {"zh_CN",
     {{"转化率最高的目标", "过去 30 天内在您商品的买家中转化最好的商品，按销售额排序。"},
      {"相似商品", "经常与您的商品一起被浏览的商品。"},
      {"互补商品", "与您的商品互补、经常一起购买的商品。"},
      {"评分和评论较少的相似商品", "评分低于 3 星和/或评论少于 5 条的相似商品。"},
      {"您的读者还读过的其他图书", "您的图书读者还阅读过的图书。"}}},
    {"jp_JP",
     {{"コンバージョン上位のターゲット", "過去30日間にお客様の商品の購入者の間で最もコンバージョンした商品（売上順）。"},
      {"類似商品", "お客様の商品と一緒によく閲覧される商品。"},
      {"補完商品", "お客様の商品を補完し、一緒によく購入される商品。"},
      {"評価とレビューが少ない類似商品", "星3つ未満またはレビュー5件未満の類似商品。"},
      {"読者が読んでいる他の本", "お客様の本の読者が読んでいる他の本。"}}},
};

std::uint64_t fnv(std::string_view s, std::uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::uint64_t mix(std::uint64_t h, std::uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

std::string make_asin(std::uint64_t seed, std::uint64_t i) {
  static const char* alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  std::uint64_t h = mix(seed, i + 1);
  std::string a = "B0";
  for (int k = 0; k < 8; ++k) {
    a += alphabet[h % 36];
    h /= 36;
    if (h == 0) h = mix(seed ^ 0x5bd1e995, i * 31 + static_cast<std::uint64_t>(k));
  }
  return a;
}

std::string type_of(const rapidjson::Value& v) {
  if (v.IsNull()) return "null";
  if (v.IsBool()) return "boolean";
  if (v.IsString()) return "string";
  if (v.IsNumber()) return v.IsInt64() ? "integer" : "number";
  if (v.IsArray()) return "array";
  return "object";
}

void str(Writer& w, std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); }

void cursor_member(Writer& w, const char* name, std::optional<std::string> c) {
  w.Key(name);
  if (c) str(w, *c);
  else w.Null();
}

struct Universe {
  std::vector<std::string> pool;
  std::vector<int> themes;                   // present theme ids, in order
  std::vector<std::vector<std::size_t>> by_theme;  // pool indices per present theme
};

Universe build_universe(const AdsQuery& q, const AdsSandboxConfig& cfg) {
  std::uint64_t seed = 1469598103934665603ull;
  for (const auto& a : q.ad_asins) seed = fnv(a, fnv(",", seed));
  Universe u;
  for (int i = 0; i < cfg.pool_size; ++i) {
    std::string a = make_asin(seed, static_cast<std::uint64_t>(i));
    if (std::find(u.pool.begin(), u.pool.end(), a) == u.pool.end() &&
        std::find(q.ad_asins.begin(), q.ad_asins.end(), a) == q.ad_asins.end())
      u.pool.push_back(std::move(a));
  }
  // Not every input gets every theme: books (ISBN-style ASINs, starting with
  // a digit) get "other books read by your readers"; about one request in
  // three gets no low-ratings theme.
  const bool books = std::any_of(q.ad_asins.begin(), q.ad_asins.end(),
                                 [](const std::string& a) { return !a.empty() && a[0] >= '0' && a[0] <= '9'; });
  for (int t = 0; t < kThemeCount; ++t) {
    if (t == 4 && !books) continue;
    if (t == 3 && seed % 3 == 0) continue;
    std::vector<std::size_t> idx(u.pool.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) {
      const auto ha = mix(seed + static_cast<std::uint64_t>(t), a), hb = mix(seed + static_cast<std::uint64_t>(t), b);
      return ha != hb ? ha < hb : a < b;
    });
    idx.resize(std::min(idx.size(), static_cast<std::size_t>(cfg.asins_per_theme)));
    u.themes.push_back(t);
    u.by_theme.push_back(std::move(idx));
  }
  return u;
}

}  // namespace

std::string ads_error_body(const AdsError& e, std::string_view request_id) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  w.Key("code");
  str(w, e.code);
  w.Key("details");
  str(w, e.details);
  if (!request_id.empty()) {
    w.Key("requestId");
    str(w, request_id);
  }
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

bool is_documented_locale(std::string_view locale) {
  for (const char* l : kLocales)
    if (locale == l) return true;
  return false;
}

ThemeText theme_text(int theme, std::string_view locale) {
  if (theme < 0 || theme >= kThemeCount) return {};
  for (const auto& t : kTranslations)
    if (locale == t.locale) return t.themes[theme];
  return kTranslations[0].themes[theme];  // en_US, en_GB and fallbacks
}

std::variant<AdsQuery, AdsError> parse_ads_query(std::string_view body) {
  auto bad = [](std::string details) { return AdsError{400, "400", std::move(details)}; };
  auto invalid = [](std::string details) { return AdsError{422, "422", std::move(details)}; };
  rapidjson::Document d;
  d.Parse(body.data(), body.size());
  if (d.HasParseError() || !d.IsObject()) return bad("Malformed request body: expected a JSON object");
  for (auto it = d.MemberBegin(); it != d.MemberEnd(); ++it) {
    std::string_view k(it->name.GetString(), it->name.GetStringLength());
    if (k != "adAsins" && k != "count" && k != "locale" && k != "cursor")
      return bad("Unrecognized field '" + std::string(k) + "'; allowed: adAsins, count, cursor, locale");
  }
  AdsQuery q;
  auto asins = d.FindMember("adAsins");
  if (asins == d.MemberEnd()) return bad("Missing required field 'adAsins'");
  if (!asins->value.IsArray()) return bad("Field 'adAsins' must be an array; got " + type_of(asins->value));
  if (asins->value.Empty()) return invalid("Field 'adAsins' must contain at least one ASIN");
  for (const auto& a : asins->value.GetArray()) {
    if (!a.IsString()) return bad("Field 'adAsins' must contain strings; got " + type_of(a));
    if (a.GetStringLength() != 10)
      return invalid("Invalid ASIN '" + std::string(a.GetString(), a.GetStringLength()) +
                     "': an ASIN has exactly 10 characters");
    q.ad_asins.emplace_back(a.GetString(), a.GetStringLength());
  }
  if (auto c = d.FindMember("count"); c != d.MemberEnd()) {
    if (!c->value.IsInt64()) return bad("Field 'count' must be an integer; got " + type_of(c->value));
    if (c->value.GetInt64() < 1) return invalid("Field 'count' must be at least 1");
    q.count = c->value.GetInt64();
  }
  if (auto l = d.FindMember("locale"); l != d.MemberEnd()) {
    if (!l->value.IsString()) return bad("Field 'locale' must be a string; got " + type_of(l->value));
    q.locale.assign(l->value.GetString(), l->value.GetStringLength());
    if (!is_documented_locale(q.locale))
      return invalid("Unsupported locale '" + q.locale +
                     "'; supported: en_US, en_GB, zh_CN, es_ES, jp_JP, de_DE, fr_FR, it_IT");
  }
  if (auto c = d.FindMember("cursor"); c != d.MemberEnd() && !c->value.IsNull()) {
    if (!c->value.IsString()) return bad("Field 'cursor' must be a string; got " + type_of(c->value));
    q.cursor = std::string(c->value.GetString(), c->value.GetStringLength());
  }
  return q;
}

std::uint64_t query_fingerprint(const AdsQuery& q, bool themes) {
  std::uint64_t h = fnv(themes ? "themes" : "asins");
  for (const auto& a : q.ad_asins) h = fnv(a, fnv(",", h));
  return fnv(q.locale, fnv("|", h));
}

std::string encode_cursor(std::uint64_t fingerprint, std::size_t offset) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "c1.%016llx.%zu", static_cast<unsigned long long>(fingerprint), offset);
  return base64_encode(buf);
}

std::optional<std::size_t> decode_cursor(std::string_view cursor, std::uint64_t fingerprint) {
  std::string raw;
  if (!base64_decode(cursor, raw)) return std::nullopt;
  char expect[32];
  std::snprintf(expect, sizeof expect, "c1.%016llx.", static_cast<unsigned long long>(fingerprint));
  const std::string_view prefix(expect);
  if (raw.size() <= prefix.size() || raw.compare(0, prefix.size(), prefix) != 0 || raw.size() > prefix.size() + 9)
    return std::nullopt;
  std::size_t offset = 0;
  for (std::size_t i = prefix.size(); i < raw.size(); ++i) {
    if (raw[i] < '0' || raw[i] > '9') return std::nullopt;
    offset = offset * 10 + static_cast<std::size_t>(raw[i] - '0');
  }
  return offset;
}

std::variant<std::string, AdsError> render_recommendations(const AdsQuery& q, bool themes,
                                                           const AdsSandboxConfig& cfg) {
  const std::uint64_t fp = query_fingerprint(q, themes);
  std::size_t offset = 0;
  if (q.cursor) {
    auto o = decode_cursor(*q.cursor, fp);
    if (!o) return AdsError{400, "400", "Invalid cursor: it was not issued for this request"};
    offset = *o;
  }
  const Universe u = build_universe(q, cfg);
  const std::size_t count = static_cast<std::size_t>(std::min<std::int64_t>(q.count.value_or(themes ? 5 : 100), 1 << 20));

  // The items of this shape, in answer order (pool indices or theme slots).
  std::vector<std::size_t> items;
  if (themes) {
    for (std::size_t i = 0; i < u.themes.size() && i < kMaxThemeAnswers; ++i) items.push_back(i);
  } else {
    // Candidates in more themes rank first, then in pool order.
    std::vector<std::pair<std::size_t, std::size_t>> ranked;  // (themes, pool index)
    for (std::size_t p = 0; p < u.pool.size(); ++p) {
      std::size_t n = 0;
      for (const auto& members : u.by_theme) n += std::count(members.begin(), members.end(), p);
      if (n > 0) ranked.emplace_back(n, p);
    }
    std::stable_sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    for (std::size_t i = 0; i < ranked.size() && i < kMaxAsinAnswers; ++i) items.push_back(ranked[i].second);
  }
  if (offset > items.size()) return AdsError{400, "400", "Invalid cursor: beyond the end of the results"};
  const std::size_t end = std::min(items.size(), offset + count);

  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  cursor_member(w, "nextCursor", end < items.size() ? std::optional<std::string>(encode_cursor(fp, end)) : std::nullopt);
  cursor_member(w, "previousCursor",
                offset > 0 ? std::optional<std::string>(encode_cursor(fp, offset > count ? offset - count : 0))
                           : std::nullopt);
  w.Key("recommendations");
  w.StartArray();
  for (std::size_t i = offset; i < end; ++i) {
    w.StartObject();
    if (themes) {
      const ThemeText text = theme_text(u.themes[items[i]], q.locale);
      w.Key("theme");
      str(w, text.name);
      w.Key("description");
      str(w, text.description);
      w.Key("recommendedAsins");
      w.StartArray();
      for (std::size_t p : u.by_theme[items[i]]) str(w, u.pool[p]);
      w.EndArray();
    } else {
      const std::size_t p = items[i];
      w.Key("recommendedAsin");
      str(w, u.pool[p]);
      w.Key("themes");
      w.StartArray();
      for (std::size_t t = 0; t < u.themes.size(); ++t) {
        const auto& members = u.by_theme[t];
        if (std::find(members.begin(), members.end(), p) != members.end())
          str(w, theme_text(u.themes[t], q.locale).name);
      }
      w.EndArray();
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

}  // namespace recgate::sandbox
