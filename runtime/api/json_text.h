// Checks that bytes are one JSON text (RFC 8259) without converting it: numbers of any size and
// precision (1e400, a 5,000-digit integer) are valid, as they are to Lambda, and pass through as
// they came.
#pragma once

#include <string_view>

namespace forklet::api {

// True when text is exactly one JSON value, with optional surrounding whitespace; strings must be
// valid UTF-8. Iterative: nesting depth costs memory, not stack.
bool IsJsonText(std::string_view text);

}  // namespace forklet::api
