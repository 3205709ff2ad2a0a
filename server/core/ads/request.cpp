// Ads request validation and shaping (see request.hpp). RapidJSON for
// parsing and writing; every problem names the member, what was sent and
// what is allowed.
#include "core/ads/request.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cctype>
#include <cmath>
#include <limits>
#include <set>

#include "core/errors.hpp"
#include "core/json.hpp"

namespace recgate::ads {

namespace {

using rapidjson::Value;
using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

constexpr std::int64_t kMaxCount = std::numeric_limits<std::int32_t>::max();

std::string locale_list() {
  std::string out;
  for (const char* l : kLocales) {
    if (!out.empty()) out += ", ";
    out += l;
  }
  return out;
}

std::string type_name(const Value& v) {
  if (v.IsNull()) return "null";
  if (v.IsBool()) return "a boolean";
  if (v.IsString()) return "the string \"" + std::string(v.GetString(), v.GetStringLength()) + "\"";
  if (v.IsNumber()) return v.IsInt64() || v.IsUint64() ? "an integer" : "a non-integer number";
  if (v.IsArray()) return "an array";
  return "an object";
}

Problem field_problem(const std::string& field, std::string detail) {
  Problem p = to_problem(Error::invalid_field, std::move(detail));
  p.extensions.emplace_back("field", field);
  return p;
}

void write_string(Writer& w, std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); }

void write_asins(Writer& w, const ProductRequest& r) {
  w.Key("adAsins");
  w.StartArray();
  for (const auto& a : r.ad_asins) write_string(w, a);
  w.EndArray();
}

}  // namespace

std::int64_t default_count(GroupBy g) { return g == GroupBy::theme ? 5 : 100; }

const char* group_by_name(GroupBy g) { return g == GroupBy::theme ? "theme" : "asin"; }

bool is_asin(std::string_view s) {
  if (s.size() != 10) return false;
  for (char c : s)
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) return false;
  return true;
}

Expected<ProductRequest> validate_request(std::string_view body, std::size_t max_asins) {
  rapidjson::Document d;
  json::ParseOptions opts;
  opts.reject_controls = true;
  if (auto e = json::parse(d, body, opts)) {
    if (e->kind == json::ParseError::Kind::bad_string && !e->field.empty()) return field_problem(e->field, e->message);
    if (e->kind == json::ParseError::Kind::bad_string) return to_problem(Error::invalid_body, e->message);
    if (e->kind == json::ParseError::Kind::too_deep) return to_problem(Error::invalid_body, "the body is " + e->message);
    return to_problem(Error::invalid_body,
                        "the body is not valid JSON (" + e->message +
                            "); send {\"adAsins\":[\"B09LJWZT6G\"],\"count\":5,\"locale\":\"en_US\",\"cursor\":null,"
                            "\"groupBy\":\"asin\"}");
  }
  if (!d.IsObject())
    return to_problem(Error::invalid_body,
                        "the body must be a JSON object with adAsins (required), count, locale, cursor, groupBy; got " +
                            type_name(d));
  std::set<std::string> seen;
  for (auto it = d.MemberBegin(); it != d.MemberEnd(); ++it) {
    std::string name(it->name.GetString(), it->name.GetStringLength());
    if (name != "adAsins" && name != "count" && name != "locale" && name != "cursor" && name != "groupBy")
      return to_problem(Error::invalid_body,
                          "unknown member \"" + name + "\"; allowed: adAsins, count, locale, cursor, groupBy");
    if (!seen.insert(name).second) return to_problem(Error::invalid_body, "member \"" + name + "\" appears twice");
  }

  ProductRequest r;
  if (auto it = d.FindMember("groupBy"); it != d.MemberEnd()) {
    const Value& v = it->value;
    const std::string s = v.IsString() ? std::string(v.GetString(), v.GetStringLength()) : std::string();
    if (s == "asin") r.group_by = GroupBy::asin;
    else if (s == "theme") r.group_by = GroupBy::theme;
    else return field_problem("groupBy", "groupBy must be \"asin\" (the default) or \"theme\"; got " + type_name(v));
  }

  auto asins = d.FindMember("adAsins");
  if (asins == d.MemberEnd())
    return field_problem("adAsins", "adAsins is required: a non-empty array of 10-character ASINs (A-Z, 0-9)");
  if (!asins->value.IsArray() || asins->value.Empty())
    return field_problem("adAsins", "adAsins must be a non-empty array of 10-character ASINs (A-Z, 0-9); got " +
                                        (asins->value.IsArray() ? std::string("an empty array")
                                                                : type_name(asins->value)));
  if (asins->value.Size() > max_asins)
    return field_problem("adAsins", "adAsins holds " + std::to_string(asins->value.Size()) + " ASINs; at most " +
                                        std::to_string(max_asins) + " are allowed (ads.max_asins)");
  for (rapidjson::SizeType i = 0; i < asins->value.Size(); ++i) {
    const Value& a = asins->value[i];
    const std::string where = "adAsins[" + std::to_string(i) + "]";
    if (!a.IsString() || !is_asin(std::string_view(a.GetString(), a.GetStringLength())))
      return field_problem("adAsins", where + " must be an ASIN: 10 characters of A-Z and 0-9; got " + type_name(a));
    r.ad_asins.emplace_back(a.GetString(), a.GetStringLength());
  }

  r.count = default_count(r.group_by);
  if (auto it = d.FindMember("count"); it != d.MemberEnd()) {
    const Value& v = it->value;
    if (v.IsString())
      return field_problem("count", "count must be a JSON integer (e.g. 5), not a string; got " + type_name(v));
    if (!v.IsInt64())
      return field_problem("count", "count must be an integer >= 1 (asin default 100, theme default 5); got " +
                                        type_name(v));
    if (v.GetInt64() < 1 || v.GetInt64() > kMaxCount)
      return field_problem("count", "count must be an integer from 1 to " + std::to_string(kMaxCount) + "; got " +
                                        std::to_string(v.GetInt64()));
    r.count = v.GetInt64();
  }

  if (auto it = d.FindMember("locale"); it != d.MemberEnd()) {
    const Value& v = it->value;
    std::string s = v.IsString() ? std::string(v.GetString(), v.GetStringLength()) : std::string();
    if (s == "ja_JP") s = "jp_JP";  // the usual spelling; the spec's is jp_JP
    bool known = false;
    for (const char* l : kLocales) known = known || s == l;
    if (!known)
      return field_problem("locale", "locale must be one of " + locale_list() + " (ja_JP is accepted for jp_JP); got " +
                                         type_name(v));
    r.locale = s;
  }

  if (auto it = d.FindMember("cursor"); it != d.MemberEnd()) {
    const Value& v = it->value;
    if (v.IsString() && v.GetStringLength() > 0) r.cursor = std::string(v.GetString(), v.GetStringLength());
    else if (!v.IsNull())
      return field_problem("cursor", "cursor must be null or a non-empty string from a previous answer's "
                                     "nextCursor/previousCursor; got " + type_name(v));
  }
  return r;
}

std::string canonical_key(const ProductRequest& r) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  write_asins(w, r);
  w.Key("count");
  w.Int64(r.count);
  w.Key("locale");
  write_string(w, r.locale);
  w.Key("groupBy");
  w.String(group_by_name(r.group_by));
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

std::string upstream_body(const ProductRequest& r) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  write_asins(w, r);
  w.Key("count");
  w.Int64(r.count);
  w.Key("locale");
  write_string(w, r.locale);
  if (r.cursor) {
    w.Key("cursor");
    write_string(w, *r.cursor);
  }
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

std::string_view accept_for(GroupBy g) { return g == GroupBy::theme ? kThemesMediaType : kAsinsMediaType; }

std::string regional_host(std::string_view region) {
  if (region == "NA") return "https://advertising-api.amazon.com";
  if (region == "EU") return "https://advertising-api-eu.amazon.com";
  if (region == "FE") return "https://advertising-api-fe.amazon.com";
  return "";
}

bool is_json_media_type(std::string_view ct) {
  const auto semi = ct.find(';');
  std::string_view mt = ct.substr(0, semi);
  while (!mt.empty() && (mt.back() == ' ' || mt.back() == '\t')) mt.remove_suffix(1);
  while (!mt.empty() && (mt.front() == ' ' || mt.front() == '\t')) mt.remove_prefix(1);
  constexpr std::string_view want = "application/json";
  if (mt.size() != want.size()) return false;
  for (std::size_t i = 0; i < mt.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(mt[i])) != want[i]) return false;
  return true;
}

std::optional<UpstreamError> parse_upstream_error(std::string_view body) {
  rapidjson::Document d;
  if (json::parse(d, body) || !d.IsObject()) return std::nullopt;
  auto code = d.FindMember("code");
  if (code == d.MemberEnd()) return std::nullopt;
  UpstreamError e;
  if (code->value.IsString()) e.code.assign(code->value.GetString(), code->value.GetStringLength());
  else if (code->value.IsInt64()) e.code = std::to_string(code->value.GetInt64());
  else return std::nullopt;
  if (auto det = d.FindMember("details"); det != d.MemberEnd() && det->value.IsString())
    e.details.assign(det->value.GetString(), det->value.GetStringLength());
  return e;
}

bool is_json_document(std::string_view body) {
  rapidjson::Document d;
  return !json::parse(d, body);
}

std::optional<double> parse_retry_after(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  if (v.empty() || v.size() > 9) return std::nullopt;
  double out = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    out = out * 10 + (c - '0');
  }
  return out;
}

}  // namespace recgate::ads
