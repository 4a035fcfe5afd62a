# Extra handler for the tutorial's bootstrap: what the sandbox looks like from a process in it.
function handler () {
  cat /proc/self/status
}
