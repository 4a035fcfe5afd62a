// Random ids from the kernel's CSPRNG: request ids (UUIDs, version 4, as Lambda's are) and log
// stream names, unique across every thread of the daemon.
#pragma once

#include <cstddef>
#include <string>

namespace forklet::core {

// 122 bits from the kernel's CSPRNG (getrandom), read 16 ids at a time per thread. Ids key the
// ledger and the event log: two alike would make one record shadow the other.
std::string NewRequestId();

// 2 * bytes lower-case hex digits of the same randomness.
std::string RandomHex(size_t bytes);

}  // namespace forklet::core
