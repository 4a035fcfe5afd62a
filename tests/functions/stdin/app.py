"""A plain program, deployed with FORKLET_HANDLER_CONVENTION=stdin and handler app.main: it reads
the event from stdin and writes its answer to stdout. event["do"] picks what it does."""
import json
import sys
import time


def main():
    event = json.load(sys.stdin)
    print("stdin function called with", event, file=sys.stderr)  # the log, not the body
    do = event.get("do", "greet")
    if do == "raise":
        raise RuntimeError("cannot do it: " + str(event.get("why", "no reason")))
    if do == "exit":
        print("partial output", flush=True)
        sys.exit(event["status"])
    if do == "return":
        return {"returned": event}
    if do == "sleep":
        time.sleep(float(event["seconds"]))
    if do == "hog":
        hog = [bytearray(1024 * 1024) for _ in range(int(event["mb"]))]  # touched: zero-filled
        print(len(hog), "MB")
        return None
    sys.stdout.write("Hello " + event.get("name", "stranger") + "!\n")
    sys.stdout.buffer.write(b"raw bytes: \xff\n")
