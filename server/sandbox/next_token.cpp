// NextToken = base64(16-byte HMAC-SHA256 prefix || compact JSON of the cursor).
#include "sandbox/next_token.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "sandbox/signature.hpp"

namespace recgate::sandbox {

namespace {

constexpr std::string_view kTokenKey = "recgate-sandbox/next-token/v1";
constexpr std::size_t kMacBytes = 16;

std::string mac_of(std::string_view payload) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), kTokenKey.data(), static_cast<int>(kTokenKey.size()),
       reinterpret_cast<const unsigned char*>(payload.data()), payload.size(), mac, &len);
  return std::string(reinterpret_cast<const char*>(mac), kMacBytes);
}

}  // namespace

std::string encode_next_token(const ListCursor& c) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("v");
  w.Int(1);
  w.Key("s");
  w.String(c.seller_id.c_str(), static_cast<rapidjson::SizeType>(c.seller_id.size()));
  w.Key("m");
  w.String(c.marketplace_id.c_str(), static_cast<rapidjson::SizeType>(c.marketplace_id.size()));
  w.Key("o");
  w.Uint64(c.offset);
  w.Key("c");
  w.StartArray();
  for (const auto& cat : c.categories) {
    w.StartArray();
    w.String(cat.category.c_str(), static_cast<rapidjson::SizeType>(cat.category.size()));
    w.Uint64(cat.generation);
    if (cat.last_updated_ms) w.Int64(*cat.last_updated_ms);
    else w.Null();
    w.StartArray();
    for (const auto& [n, v] : cat.filters) {
      w.String(n.c_str(), static_cast<rapidjson::SizeType>(n.size()));
      w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
    }
    w.EndArray();
    w.EndArray();
  }
  w.EndArray();
  w.EndObject();
  std::string payload(sb.GetString(), sb.GetSize());
  return base64_encode(mac_of(payload) + payload);
}

std::optional<ListCursor> decode_next_token(std::string_view token) {
  std::string raw;
  if (token.size() > 8192 || !base64_decode(token, raw) || raw.size() <= kMacBytes) return std::nullopt;
  const std::string payload = raw.substr(kMacBytes);
  if (!constant_time_equal(mac_of(payload), std::string_view(raw).substr(0, kMacBytes))) return std::nullopt;
  rapidjson::Document d;
  d.Parse(payload.data(), payload.size());
  if (d.HasParseError() || !d.IsObject()) return std::nullopt;
  auto str = [&](const char* k) -> const rapidjson::Value* {
    auto it = d.FindMember(k);
    return it != d.MemberEnd() && it->value.IsString() ? &it->value : nullptr;
  };
  auto v = d.FindMember("v"), o = d.FindMember("o"), c = d.FindMember("c");
  if (v == d.MemberEnd() || !v->value.IsInt() || v->value.GetInt() != 1 || !str("s") || !str("m") ||
      o == d.MemberEnd() || !o->value.IsUint64() || c == d.MemberEnd() || !c->value.IsArray())
    return std::nullopt;
  ListCursor out;
  out.seller_id = str("s")->GetString();
  out.marketplace_id = str("m")->GetString();
  out.offset = o->value.GetUint64();
  for (const auto& e : c->value.GetArray()) {
    if (!e.IsArray() || e.Size() != 4 || !e[0].IsString() || !e[1].IsUint64() ||
        !(e[2].IsNull() || e[2].IsInt64()) || !e[3].IsArray() || e[3].Size() % 2 != 0)
      return std::nullopt;
    CategoryRequest cr;
    cr.category = e[0].GetString();
    cr.generation = e[1].GetUint64();
    if (e[2].IsInt64()) cr.last_updated_ms = e[2].GetInt64();
    const auto& f = e[3];
    for (rapidjson::SizeType i = 0; i < f.Size(); i += 2) {
      if (!f[i].IsString() || !f[i + 1].IsString()) return std::nullopt;
      cr.filters.emplace_back(f[i].GetString(), f[i + 1].GetString());
    }
    out.categories.push_back(std::move(cr));
  }
  return out;
}

}  // namespace recgate::sandbox
