// Removal of retired trees (runtime/registry/code_tree.h).
#include "runtime/registry/code_tree.h"

#include "runtime/registry/durable_fs.h"

namespace forklet::registry {

CodeTree::~CodeTree() {
  if (!retired_.load()) return;
  RemoveTree(dir);
  if (!zip.empty()) RemoveTree(zip);
  RemoveTree(dir + ".erofs");  // its image (runtime/core/code_mounts.h), if one was made
}

}  // namespace forklet::registry
