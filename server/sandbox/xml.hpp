// Renders the sandbox's answers in the shapes real MWS sends (reference
// A.2, A.4): <OpResponse> with <OpResult> and <ResponseMetadata>, <member>
// lists, and Amazon's ErrorResponse. Pure: pugixml only.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sandbox/data.hpp"

namespace recgate::sandbox {

struct MwsError {
  int status = 400;
  std::string type = "Sender";  // Sender / Receiver
  std::string code;
  std::string message;
};

std::string render_error(const MwsError& e, std::string_view request_id);

// One element per category that has a timestamp (absent = null).
std::string render_last_updated(
    const std::vector<std::pair<std::string, std::chrono::system_clock::time_point>>& per_category,
    std::string_view request_id);

// `lists`: per category, in result order, the members on this page; a
// category with an empty vector is rendered as an empty list element.
std::string render_list(std::string_view action,
                        const std::vector<std::pair<std::string, std::vector<const Item*>>>& lists,
                        const std::optional<std::string>& next_token, std::string_view request_id);

std::string render_service_status(std::string_view status, std::chrono::system_clock::time_point now,
                                  std::string_view request_id);

}  // namespace recgate::sandbox
