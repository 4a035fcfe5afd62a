"""Fills socket buffers: opens `connections` loopback TCP connections inside its instance, and on
each writes without reading until the kernel refuses more. The connections stay open in the warm
instance after the response, so the test can read the host's TCP memory meanwhile. Reports the
bytes queued and the errno that stopped the writes."""
import errno
import socket

_held = []  # kept across invocations: what the host must not pay for


def handler(event, context):
    for s in _held:
        s.close()
    _held.clear()
    listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
    _held.append(listener)
    queued = 0
    stopped_by = {}
    chunk = b"x" * (1 << 20)
    for _ in range(int(event.get("connections", 100))):
        try:
            c = socket.create_connection(listener.getsockname())
            server_side, _ = listener.accept()  # never read: its receive buffer fills too
        except OSError as e:
            name = errno.errorcode.get(e.errno, str(e.errno))
            stopped_by["connect " + name] = stopped_by.get("connect " + name, 0) + 1
            break
        _held.extend([c, server_side])
        for s in (c, server_side):
            s.setblocking(False)
            while True:
                try:
                    queued += s.send(chunk)
                except OSError as e:
                    name = errno.errorcode.get(e.errno, str(e.errno))
                    stopped_by[name] = stopped_by.get(name, 0) + 1
                    break
    return {"queued_mb": queued / (1 << 20), "connections": (len(_held) - 1) // 2,
            "stopped_by": stopped_by}
