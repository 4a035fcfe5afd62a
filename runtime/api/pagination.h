// Lambda's pagination of List operations: MaxItems and an opaque Marker in, NextMarker out.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/api/http_server.h"
#include "sandbox/error.h"

namespace forklet::api {

// One item of a listing: its sort key (unique, ascending order is the listing's order) and JSON.
using ListItem = std::pair<std::string, nlohmann::json>;

struct PageLimits {
  uint32_t max_items = 10000;  // the largest MaxItems a request may give (Lambda's per operation)
  uint32_t page_cap = 50;      // items in one response at most, whatever MaxItems says
};

// The page of `items` (sorted by key) that ?MaxItems= and ?Marker= ask for:
// {list_field: [...], "NextMarker": ...} (NextMarker only when more follow). A marker is the
// last key of the page before, encoded; a MaxItems out of range or a marker forklet did not
// write is InvalidParameterValueException. Items added or removed between pages are neither
// repeated nor skipped (a marker is a position in key order, not an index).
Result<nlohmann::json> ListPage(const HttpRequest& r, const std::vector<ListItem>& items,
                                const std::string& list_field, PageLimits limits = {});

}  // namespace forklet::api
