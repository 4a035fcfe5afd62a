# Module state survives between warm invocations of one instance.
calls = 0


def handler(event, context):
    global calls
    calls += 1
    return {"calls": calls}
