# Extra handler for the tutorial's bootstrap: holds the event's megabytes ({"mb": N}) in bash.
function handler () {
  local big
  big=$(head -c "$(( $(echo "$1" | tr -cd '0-9') * 1048576 ))" /dev/zero | tr '\0' x)
  echo "\"held ${#big} bytes\""
}
