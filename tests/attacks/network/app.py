"""Tries to reach the host's loopback services (the daemon's port over
IPv4 and IPv6), raw and packet sockets, and reconfiguring its interfaces over netlink. Also
checks that its own loopback works. Reports what worked; sends nothing off the host."""
import errno
import socket
import struct


def _err(e):
    return errno.errorcode.get(e.errno, str(e.errno))


def _connect(family, addr):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(addr)
        return "OK"
    except OSError as e:
        return _err(e)
    finally:
        s.close()


def _socket(*args):
    try:
        socket.socket(*args).close()
        return "OK"
    except OSError as e:
        return _err(e)


def _netlink_add_address():
    # RTM_NEWADDR 127.0.0.2/8 on lo: needs CAP_NET_ADMIN (in its own namespace, even).
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)  # NETLINK_ROUTE
    try:
        s.bind((0, 0))
        ifindex = socket.if_nametoindex("lo")
        ifa = struct.pack("=BBBBI", socket.AF_INET, 8, 0, 0, ifindex)
        rta = struct.pack("=HH4s", 8, 2, socket.inet_aton("127.0.0.2"))  # IFA_LOCAL
        body = ifa + rta
        hdr = struct.pack("=IHHII", 16 + len(body), 20, 0x1 | 0x4 | 0x400 | 0x200, 1, 0)
        s.send(hdr + body)
        reply = s.recv(4096)
        err = struct.unpack_from("=i", reply, 16)[0]
        return "OK" if err == 0 else errno.errorcode.get(-err, str(-err))
    finally:
        s.close()


def handler(event, context):
    port = int(event["daemon_port"])
    r = {
        "interfaces": [n for _, n in socket.if_nameindex()],
        "host_v4": _connect(socket.AF_INET, ("127.0.0.1", port)),
        "host_v6": _connect(socket.AF_INET6, ("::1", port)),
        "raw_socket": _socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP),
        "packet_socket": _socket(socket.AF_PACKET, socket.SOCK_RAW, 0),
        "netlink_add_address": _netlink_add_address(),
    }
    with open("/proc/net/route") as f:
        r["routes_v4"] = len(f.readlines()) - 1
    with open("/proc/net/ipv6_route") as f:
        r["routes_v6"] = [line.split()[-1] for line in f]
    # Its own loopback is its to use.
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    r["own_loopback"] = _connect(socket.AF_INET, srv.getsockname())
    srv.close()
    return r
