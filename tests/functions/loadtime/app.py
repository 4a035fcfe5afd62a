# When this module ran (wall clock), for PreforkTest: an instance forked ahead of demand may
# compile it while it waits, but runs it only when it starts.
import time

LOADED_AT = time.time()


def handler(event, context):
    return {"loaded_at": LOADED_AT}
