// Runs nftables scripts through the `nft` binary (the nftables package): forklet's own tables only.
#pragma once

#include <string>

#include "sandbox/error.h"

namespace forklet::sandbox::net {

// `nft -f -` with script on its stdin (one atomic transaction). nft: the binary; empty: /usr/sbin/nft,
// else nft on $PATH. Fails with nft's own message.
Status RunNft(const std::string& script, const std::string& nft = "");

// A script that removes the table (family inet, bridge, ...) when it exists, and does nothing else.
std::string DeleteTableScript(const std::string& family, const std::string& table);

}  // namespace forklet::sandbox::net
