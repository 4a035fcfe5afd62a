# Extra handler for the tutorial's bootstrap: counts its calls in the instance's own /tmp.
function handler () {
  echo $(( $(cat /tmp/calls 2>/dev/null || echo 0) + 1 )) > /tmp/calls
  echo "{\"calls\": $(cat /tmp/calls)}"
}
