// handle_mws: the order Amazon applies (parameters, key, signature, time,
// seller, action), then the throttle bucket, then injected faults, then the
// operation itself.
#include "sandbox/mws_service.hpp"

#include <cstdio>
#include <random>

#include "core/log.hpp"
#include "sandbox/catalog.hpp"
#include "sandbox/xml.hpp"

namespace recgate::sandbox {

namespace {

std::uint64_t random64() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng();
}

std::string response_context() {
  std::string raw;
  for (int i = 0; i < 6; ++i) {
    const std::uint64_t r = random64();
    raw.append(reinterpret_cast<const char*>(&r), sizeof r);
  }
  return base64_encode(raw);
}

void finish_headers(MwsOutcome& out, Now now) {
  out.headers.emplace_back("Content-Type", "text/xml");
  out.headers.emplace_back("x-mws-request-id", out.request_id);
  out.headers.emplace_back("x-mws-timestamp", format_iso_ms(now.wall));
  out.headers.emplace_back("x-mws-response-context", response_context());
  out.headers.emplace_back("Date", format_http_date(now.wall));
}

void set_error(MwsOutcome& out, const MwsError& e) {
  out.status = e.status;
  out.error_code = e.code;
  out.body = render_error(e, out.request_id);
}

MwsError fault_error(const Fault& f) {
  MwsError e;
  e.status = f.status;
  e.code = f.code;
  if (e.code.empty()) {
    e.code = f.status == 500   ? "InternalError"
             : f.status == 503 ? "ServiceUnavailable"
             : f.status == 400 ? "InvalidParameterValue"
             : f.status == 401 ? "AccessDenied"
             : f.status == 403 ? "SignatureDoesNotMatch"
             : f.status == 404 ? "InvalidAddress"
                               : "InternalError";
  }
  e.type = (e.code == "RequestThrottled" || e.code == "QuotaExceeded" || f.status < 500) ? "Sender" : "Receiver";
  e.message = f.message;
  if (e.message.empty()) {
    e.message = e.code == "InternalError"        ? "We encountered an internal error. Please try again."
                : e.code == "RequestThrottled"   ? "Request is throttled"
                : e.code == "ServiceUnavailable" ? "Service is unavailable. Please try again later."
                                                 : "Injected fault";
  }
  return e;
}

// Leaves the XML whole but not well-formed: an element opened after the
// root's start tag is never closed, so the root's end tag mismatches.
void break_xml(std::string& body) {
  const auto root = body.find('<', body.rfind("?>") == std::string::npos ? 0 : body.find("?>") + 2);
  const auto after = root == std::string::npos ? std::string::npos : body.find('>', root);
  body.insert(after == std::string::npos ? body.size() : after + 1, "<Unclosed>");
}

// The body and header parts of a fault, applied to the answer it replaces.
// Headers go to `extra`, which the caller sends after the usual ones.
void apply_fault(MwsOutcome& out, const Fault& f, std::vector<std::pair<std::string, std::string>>& extra) {
  if (f.body) out.body = *f.body;
  if (f.malformed) out.body.resize(out.body.size() / 2);
  if (f.invalid_xml) break_xml(out.body);
  if (f.drop) {
    out.drop = true;
    out.body += "<!--" + std::string(4096, ' ') + "-->";
  }
  if (!f.content_type.empty()) extra.emplace_back("Content-Type", f.content_type);
  if (!f.retry_after.empty()) extra.emplace_back("Retry-After", f.retry_after);
  out.wire = f.wire;
  out.wire_bytes = f.wire_bytes;
}

MwsResult<std::string> run_operation(SandboxState& state, const Authenticated& auth, const Operation& op, Now now,
                                     std::string_view request_id) {
  const SandboxConfig& cfg = state.config();
  const std::string& seller = auth.seller->seller_id;
  if (op.action == "GetServiceStatus") return render_service_status("GREEN", now.wall, request_id);
  if (op.action == "GetLastUpdatedTimeForRecommendations") {
    std::vector<std::pair<std::string, std::chrono::system_clock::time_point>> times;
    for (const auto& c : offered_categories(op.marketplace_id)) {
      if (!has_last_updated(c)) continue;
      const CategorySnapshot s = state.snapshot(seller, op.marketplace_id, c);
      if (s.last_updated) times.emplace_back(c, *s.last_updated);
    }
    return render_last_updated(times, request_id);
  }
  ListCursor cursor;
  if (op.action == "ListRecommendations") {
    cursor.seller_id = seller;
    cursor.marketplace_id = op.marketplace_id;
    for (const auto& c : op.categories) {
      const CategorySnapshot s = state.snapshot(seller, op.marketplace_id, c);
      CategoryRequest cr;
      cr.category = c;
      cr.generation = s.generation;
      if (s.last_updated)
        cr.last_updated_ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(s.last_updated->time_since_epoch()).count();
      if (auto it = op.filters.find(c); it != op.filters.end()) cr.filters = it->second;
      cursor.categories.push_back(std::move(cr));
    }
  } else {
    auto decoded = decode_next_token(op.next_token);
    bool ok = decoded && decoded->seller_id == seller && find_marketplace(decoded->marketplace_id);
    if (ok)
      for (const auto& c : decoded->categories) ok = ok && category_offered(decoded->marketplace_id, c.category);
    if (!ok)
      return MwsError{400, "Sender", "NextTokenCorrupted",
                      "The NextToken is corrupted or was not issued to this seller. Call ListRecommendations again."};
    cursor = std::move(*decoded);
  }
  return render_list_page(op.action, cursor, cfg.page_size, cfg.items_per_category, request_id);
}

}  // namespace

std::string new_request_id() {
  const std::uint64_t a = random64(), b = random64();
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x-%04x-4%03x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xFFFF), static_cast<unsigned>(a & 0xFFF),
                static_cast<unsigned>(0x8000 | ((b >> 48) & 0x3FFF)),
                static_cast<unsigned long long>(b & 0xFFFFFFFFFFFFULL));
  return buf;
}

std::string render_list_page(std::string_view action, const ListCursor& cursor, int page_size,
                             int items_per_category, std::string_view request_id) {
  const MarketplaceInfo* mk = find_marketplace(cursor.marketplace_id);
  std::vector<std::vector<Item>> per_category;
  std::size_t total = 0;
  for (const auto& c : cursor.categories) {
    CategorySnapshot snap{c.category, c.generation, std::nullopt};
    if (c.last_updated_ms)
      snap.last_updated = std::chrono::system_clock::time_point(
          std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::milliseconds(*c.last_updated_ms)));
    std::vector<Item> items;
    if (mk)
      for (auto& item : generate_items(cursor.seller_id, *mk, snap, items_per_category))
        if (item_matches(item, c.filters)) items.push_back(std::move(item));
    total += items.size();
    per_category.push_back(std::move(items));
  }
  const std::size_t begin = static_cast<std::size_t>(cursor.offset);
  const std::size_t end = begin + static_cast<std::size_t>(page_size);
  std::vector<std::pair<std::string, std::vector<const Item*>>> lists;
  std::size_t index = 0;
  for (std::size_t i = 0; i < cursor.categories.size(); ++i) {
    std::vector<const Item*> on_page;
    for (const auto& item : per_category[i]) {
      if (index >= begin && index < end) on_page.push_back(&item);
      ++index;
    }
    if (!on_page.empty() || (begin == 0 && per_category[i].empty()))
      lists.emplace_back(cursor.categories[i].category, std::move(on_page));
  }
  std::optional<std::string> next;
  if (end < total) {
    ListCursor more = cursor;
    more.offset = end;
    next = encode_next_token(more);
  }
  return render_list(action, lists, next, request_id);
}

MwsOutcome handle_mws(SandboxState& state, const HttpInput& in, Now now) {
  MwsOutcome out;
  out.request_id = new_request_id();
  std::vector<std::pair<std::string, std::string>> fault_headers;
  RequestRecord rec;
  rec.time = format_iso_ms(now.wall);
  rec.request_id = out.request_id;

  auto params = collect_params(in);
  if (auto* e = std::get_if<MwsError>(&params)) {
    set_error(out, *e);
  } else {
    rec.params = std::get<Params>(params);
    for (const auto& [k, v] : rec.params)
      if (k == "Action") out.action = v;
    std::string expected;
    auto auth = authenticate(state.config(), in, rec.params, now.wall, &expected);
    if (auto* ae = std::get_if<MwsError>(&auth)) {
      set_error(out, *ae);
      if (ae->code == "SignatureDoesNotMatch") state.record_signature_failure(expected, in.host, rec.time);
    } else {
      const Authenticated& a = std::get<Authenticated>(auth);
      rec.seller_id = a.seller->seller_id;
      const std::string_view group = throttle_group(a.action);
      if (!state.take_token(a.seller->seller_id, group, now.mono)) {
        log_warn("request throttled", {{"seller", a.seller->seller_id},
                                       {"operation", std::string(group)},
                                       {"action", a.action},
                                       {"mws_request_id", out.request_id}});
        set_error(out, MwsError{503, "Sender", "RequestThrottled", "Request is throttled"});
      } else {
        std::optional<Fault> fault = state.take_fault(a.action);
        if (fault) {
          out.latency = std::chrono::milliseconds(fault->latency_ms);
          log_info("fault injected", {{"action", a.action},
                                      {"latency_ms", fault->latency_ms},
                                      {"status", fault->status},
                                      {"malformed", fault->malformed ? "true" : "false"},
                                      {"drop", fault->drop ? "true" : "false"},
                                      {"wire", std::string(wire_mode_name(fault->wire))}});
        }
        if (fault && fault->status != 0 && fault->body) {
          out.status = fault->status;  // a page from something in front of MWS, not an MWS error
        } else if (fault && fault->status != 0) {
          set_error(out, fault_error(*fault));
        } else {
          auto op = parse_operation(a);
          MwsResult<std::string> body = std::holds_alternative<MwsError>(op)
                                            ? MwsResult<std::string>(std::get<MwsError>(op))
                                            : run_operation(state, a, std::get<Operation>(op), now, out.request_id);
          if (auto* oe = std::get_if<MwsError>(&body)) set_error(out, *oe);
          else out.body = std::move(std::get<std::string>(body));
        }
        if (fault) apply_fault(out, *fault, fault_headers);
      }
    }
  }
  finish_headers(out, now);
  for (auto& h : fault_headers) out.headers.push_back(std::move(h));
  rec.action = out.action;
  rec.status = out.status;
  rec.code = out.error_code;
  state.record(std::move(rec));
  return out;
}

}  // namespace recgate::sandbox
