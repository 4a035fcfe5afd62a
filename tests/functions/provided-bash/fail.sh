# Extra handler for the tutorial's bootstrap: fails, so `set -e` ends the bootstrap.
function handler () {
  echo "failing on purpose" 1>&2
  return 3
}
