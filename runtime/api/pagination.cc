// MaxItems/Marker/NextMarker over a sorted listing.
#include "runtime/api/pagination.h"

namespace forklet::api {
namespace {

// Hex of a tag and the key: opaque, and safe in a query string without escaping.
constexpr const char* kMarkerTag = "forklet-marker:";

std::string EncodeMarker(const std::string& key) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : std::string(kMarkerTag) + key) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

Result<std::string> DecodeMarker(const std::string& marker) {
  auto nibble = [](char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
  };
  std::string text;
  bool ok = marker.size() % 2 == 0;
  for (size_t i = 0; ok && i < marker.size(); i += 2) {
    int hi = nibble(marker[i]), lo = nibble(marker[i + 1]);
    ok = hi >= 0 && lo >= 0;
    text += static_cast<char>(hi * 16 + lo);
  }
  const std::string tag = kMarkerTag;
  if (!ok || text.rfind(tag, 0) != 0)
    return Error{"InvalidParameterValueException", 0,
                 "Invalid Marker '" + marker.substr(0, 100) +
                     "': pass the NextMarker of the previous page unchanged"};
  return text.substr(tag.size());
}

Result<uint32_t> ReadMaxItems(const HttpRequest& r, uint32_t max_items) {
  auto it = r.query.find("MaxItems");
  if (it == r.query.end()) return max_items;
  const std::string& v = it->second;
  bool digits = !v.empty() && v.size() <= 9 && v.find_first_not_of("0123456789") == std::string::npos;
  uint64_t n = digits ? std::stoull(v) : 0;
  if (!digits || n < 1 || n > max_items)
    return Error{"InvalidParameterValueException", 0,
                 "1 validation error detected: Value '" + v.substr(0, 100) +
                     "' at 'maxItems' failed to satisfy constraint: Member must have value "
                     "between 1 and " + std::to_string(max_items)};
  return static_cast<uint32_t>(n);
}

}  // namespace

Result<nlohmann::json> ListPage(const HttpRequest& r, const std::vector<ListItem>& items,
                                const std::string& list_field, PageLimits limits) {
  auto max = ReadMaxItems(r, limits.max_items);
  if (!max) return max.error();
  size_t take = std::min<size_t>(*max, limits.page_cap);
  size_t begin = 0;
  if (auto m = r.query.find("Marker"); m != r.query.end() && !m->second.empty()) {
    auto after = DecodeMarker(m->second);
    if (!after) return after.error();
    while (begin < items.size() && items[begin].first <= *after) ++begin;
  }
  nlohmann::json page = nlohmann::json::array();
  size_t end = std::min(items.size(), begin + take);
  for (size_t i = begin; i < end; ++i) page.push_back(items[i].second);
  nlohmann::json out{{list_field, std::move(page)}};
  if (end < items.size()) out["NextMarker"] = EncodeMarker(items[end - 1].first);
  return out;
}

}  // namespace forklet::api
