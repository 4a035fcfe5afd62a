"""Network probe: fetches URLs, connects to addresses, sends UDP datagrams (also from a spoofed
source address), or listens for a while, as its event asks, all at once; reports its interfaces, address, gateway,
resolver configuration and what each attempt gave ("OK", "TIMEOUT" or the errno's name)."""
import errno
import socket
import struct
import threading
import time
import urllib.request

IP_FREEBIND = 15  # binds an address that is not the instance's own, without any capability


def _err(e):
    if isinstance(e, socket.timeout):
        return "TIMEOUT"
    return errno.errorcode.get(e.errno, str(e.errno))


def _connect(host, port, source=None, timeout=2.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        if source:
            s.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
            s.bind((source, 0))
        s.connect((host, port))
        return "OK"
    except OSError as e:
        return _err(e)
    finally:
        s.close()


def _send(host, port, payload, source=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        if source:
            s.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
            s.bind((source, 0))
        s.sendto(payload.encode(), (host, port))
        return "SENT"
    except OSError as e:
        return _err(e)
    finally:
        s.close()


def _fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return r.read().decode()
    except Exception as e:  # the report says what went wrong
        reason = getattr(e, "reason", e)
        return "ERROR " + (_err(reason) if isinstance(reason, OSError) else repr(reason))


def _gateway():
    with open("/proc/net/route") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == "00000000":
                return socket.inet_ntoa(struct.pack("<I", int(fields[2], 16)))
    return None


def _address():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("198.18.0.1", 9))  # no packet is sent: only the route's source is chosen
        return s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()


def _listen(srv, seconds):
    srv.settimeout(0.2)
    accepted = 0
    end = time.time() + seconds
    while time.time() < end:
        try:
            c, _ = srv.accept()
            accepted += 1
            c.close()
        except socket.timeout:
            pass
    srv.close()
    return accepted


def handler(event, context):
    r = {
        "interfaces": [n for _, n in socket.if_nameindex()],
        "address": _address(),
        "gateway": _gateway(),
    }
    with open("/etc/resolv.conf") as f:
        r["resolv_conf"] = f.read()
    results = {}
    jobs = []
    if "listen" in event:  # listening before anything else starts
        port, seconds = int(event["listen"][0]), float(event["listen"][1])
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("0.0.0.0", port))
        srv.listen(16)
        jobs.append(threading.Thread(target=lambda: results.__setitem__("accepted", _listen(srv, seconds))))
    for name, url in event.get("fetch", {}).items():
        jobs.append(threading.Thread(target=lambda n=name, u=url: results.__setitem__(n, _fetch(u))))
    for name, target in event.get("connect", {}).items():
        host, port = target[0], int(target[1])
        host = {"$gateway": r["gateway"], "$self": r["address"]}.get(host, host)
        source = target[2] if len(target) > 2 else None
        if host is None:  # no gateway or address: nothing to connect to
            results[name] = "NOROUTE"
            continue
        jobs.append(threading.Thread(
            target=lambda n=name, h=host, p=port, s=source: results.__setitem__(n, _connect(h, p, s))))
    for name, target in event.get("udp", {}).items():  # one datagram each, its name as payload
        results[name] = _send(target[0], int(target[1]), name, target[2] if len(target) > 2 else None)
    for j in jobs:
        j.start()
    for j in jobs:
        j.join()
    r.update(results)
    return r
