"""A handler that never returns: "spin" burns CPU, "sleep" sleeps, "deaf" blocks and ignores
every signal it can before spinning. Only the timeout (a SIGKILL of the instance) ends it.
"ok" returns at once (the next invocation, on a fresh instance)."""
import signal
import time


def handler(event, context):
    mode = event.get("mode", "spin")
    if mode == "ok":
        return {"ok": True}
    if mode == "deaf":
        for s in signal.valid_signals():
            try:
                signal.signal(s, signal.SIG_IGN)
            except (OSError, ValueError, RuntimeError):
                pass  # SIGKILL and SIGSTOP cannot be ignored
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    while True:
        if mode == "sleep":
            time.sleep(3600)
