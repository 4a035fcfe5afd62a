"""What an instance finds of its predecessors in its network: first the sockets and connections
its namespace already holds (/proc/net/tcp, tcp6, udp, udp6, raw), then, as the event asks, it
listens on a TCP port, binds a UDP port, fetches a URL (reading to the server's close, so that
the closing leaves no TIME_WAIT here) and opens an outbound connection that it keeps: all left
open when the instance ends. Reports its namespace (/proc/self/ns/net) and eth0 address."""
import os
import socket

_kept = []  # sockets left open until the instance ends


def _sockets():
    found = []
    for table in ("tcp", "tcp6", "udp", "udp6", "raw", "raw6"):
        try:
            with open("/proc/net/" + table) as f:
                for line in f.readlines()[1:]:
                    fields = line.split()
                    if len(fields) > 3:
                        found.append(" ".join([table, fields[1], fields[2], fields[3]]))
        except OSError as e:
            found.append(table + " unreadable: " + str(e))
    return found


def _address():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("198.18.0.1", 9))  # no packet is sent: only the route's source is chosen
        return s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()


def _fetch(host, port, path):
    s = socket.create_connection((host, port), timeout=3)
    try:
        s.sendall(("GET " + path + " HTTP/1.0\r\nHost: " + host + "\r\n\r\n").encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:  # the server closed first: its side keeps the TIME_WAIT
                break
            data += chunk
        return data.split(b"\r\n\r\n", 1)[-1].decode()
    except OSError as e:
        return "ERROR " + str(e)
    finally:
        s.close()


def handler(event, context):
    try:
        ns = os.readlink("/proc/self/ns/net")
    except OSError as e:
        ns = "unreadable: " + str(e)
    r = {"found": _sockets(), "netns": ns, "address": _address()}
    if "listen" in event:
        srv = socket.socket()
        srv.bind(("0.0.0.0", int(event["listen"])))
        srv.listen(4)
        _kept.append(srv)
    if "udp" in event:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("0.0.0.0", int(event["udp"])))
        _kept.append(u)
    if "fetch" in event:
        host, port, path = event["fetch"]
        r["fetched"] = _fetch(host, int(port), path)
    if "keep" in event:
        host, port = event["keep"]
        _kept.append(socket.create_connection((host, int(port)), timeout=3))
    r["own"] = _sockets()
    return r
