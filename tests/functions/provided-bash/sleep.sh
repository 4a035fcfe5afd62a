# Extra handler for the tutorial's bootstrap: sleeps for the event's seconds ({"seconds": N}).
function handler () {
  sleep "$(echo "$1" | tr -cd '0-9')"
  echo '"slept"'
}
