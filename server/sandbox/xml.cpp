// XML rendering with pugixml (which does the escaping), raw format, with an
// XML declaration like Amazon's responses.
#include "sandbox/xml.hpp"

#include <pugixml.hpp>

#include <sstream>

#include "sandbox/catalog.hpp"
#include "sandbox/signature.hpp"

namespace recgate::sandbox {

namespace {

std::string to_string(const pugi::xml_document& doc) {
  std::ostringstream os;
  os << "<?xml version=\"1.0\"?>\n";
  doc.save(os, "", pugi::format_raw | pugi::format_no_declaration, pugi::encoding_utf8);
  os << '\n';
  return os.str();
}

void text_child(pugi::xml_node parent, const char* name, std::string_view text) {
  parent.append_child(name).text().set(std::string(text).c_str());
}

void append(pugi::xml_node parent, const XmlNode& n) {
  pugi::xml_node e = parent.append_child(n.name.c_str());
  if (n.children.empty()) {
    if (!n.text.empty()) e.text().set(n.text.c_str());
    return;
  }
  for (const auto& c : n.children) append(e, c);
}

pugi::xml_node response_root(pugi::xml_document& doc, std::string_view action) {
  pugi::xml_node root = doc.append_child((std::string(action) + "Response").c_str());
  root.append_attribute("xmlns").set_value(std::string(kMwsNamespace).c_str());
  return root;
}

void metadata(pugi::xml_node root, std::string_view request_id) {
  text_child(root.append_child("ResponseMetadata"), "RequestId", request_id);
}

}  // namespace

std::string render_error(const MwsError& e, std::string_view request_id) {
  pugi::xml_document doc;
  pugi::xml_node root = doc.append_child("ErrorResponse");
  root.append_attribute("xmlns").set_value(std::string(kErrorNamespace).c_str());
  pugi::xml_node err = root.append_child("Error");
  text_child(err, "Type", e.type);
  text_child(err, "Code", e.code);
  text_child(err, "Message", e.message);
  text_child(root, "RequestID", request_id);
  return to_string(doc);
}

std::string render_last_updated(
    const std::vector<std::pair<std::string, std::chrono::system_clock::time_point>>& per_category,
    std::string_view request_id) {
  pugi::xml_document doc;
  pugi::xml_node root = response_root(doc, "GetLastUpdatedTimeForRecommendations");
  pugi::xml_node result = root.append_child("GetLastUpdatedTimeForRecommendationsResult");
  for (const auto& [category, t] : per_category)
    text_child(result, (category + "RecommendationsLastUpdated").c_str(), format_iso_ms(t));
  metadata(root, request_id);
  return to_string(doc);
}

std::string render_list(std::string_view action,
                        const std::vector<std::pair<std::string, std::vector<const Item*>>>& lists,
                        const std::optional<std::string>& next_token, std::string_view request_id) {
  pugi::xml_document doc;
  pugi::xml_node root = response_root(doc, action);
  pugi::xml_node result = root.append_child((std::string(action) + "Result").c_str());
  for (const auto& [category, items] : lists) {
    pugi::xml_node list = result.append_child((category + "Recommendations").c_str());
    for (const Item* item : items) append(list, item->member);
  }
  if (next_token) text_child(result, "NextToken", *next_token);
  metadata(root, request_id);
  return to_string(doc);
}

std::string render_service_status(std::string_view status, std::chrono::system_clock::time_point now,
                                  std::string_view request_id) {
  pugi::xml_document doc;
  pugi::xml_node root = response_root(doc, "GetServiceStatus");
  pugi::xml_node result = root.append_child("GetServiceStatusResult");
  text_child(result, "Status", status);
  text_child(result, "Timestamp", format_iso_ms(now));
  metadata(root, request_id);
  return to_string(doc);
}

}  // namespace recgate::sandbox
