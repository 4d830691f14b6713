#!/usr/bin/env python3
"""ssehops.py FILE GATEWAY_PORT UPSTREAM_PORT: where the time to first SSE
event goes, from a loopback capture (tcpdump -w) of bench/sse.sh's load.

Packet timestamps on lo are taken when the sender transmits, so per stream:
  answer    the client's request (POST) to the first response bytes on the
            same connection: the time to first event on the wire;
  upstream  the gateway's request to the upstream's first response bytes
            (for direct, answer is that time);
  hold in   the client's request to the gateway's request upstream;
  hold out  the upstream's first response bytes to the gateway's.
The holds pair the n-th request in with the n-th out (and responses alike),
each with one sent before it: exact while the gateway keeps their order,
which is why only their medians and p90 are shown. Prints medians and p90
in microseconds."""
import struct
import sys


def packets(path):
    with open(path, "rb") as f:
        head = f.read(24)
        magic = struct.unpack("<I", head[:4])[0]
        scale = 1e9 if magic == 0xA1B23C4D else 1e6
        link = struct.unpack("<I", head[20:24])[0]
        off = {1: 14, 113: 16}.get(link, 0)  # Ethernet (lo), Linux cooked
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            sec, frac, incl, _ = struct.unpack("<IIII", rec)
            data = f.read(incl)
            ip = data[off:]
            tcp = ip[(ip[0] & 15) * 4:]
            sport, dport = struct.unpack(">HH", tcp[:4])
            payload = tcp[(tcp[12] >> 4) * 4:]
            if payload:
                yield sec + frac / scale, sport, dport, payload[:8]


def answers(pk, port):
    """(request, response) times per exchange on connections to port."""
    sent, out = {}, []
    for t, sp, dp, pl in pk:
        if dp == port and pl.startswith(b"POST"):
            sent[sp] = t
        elif sp == port and pl.startswith(b"HTTP/1.") and dp in sent:
            out.append((sent.pop(dp), t))
    return out


def holds(before, after):
    """Pairs each time in after with the oldest unpaired one in before."""
    before, out, i = sorted(before), [], 0
    for t in sorted(after):
        if i < len(before) and before[i] <= t:
            out.append(t - before[i])
            i += 1
    return out


def show(name, v):
    v = sorted(x * 1e6 for x in v)
    if not v:
        print("%-9s none" % name)
        return
    print("%-9s p50 %5.0f us  p90 %5.0f us  (%d)" % (name, v[len(v) // 2], v[len(v) * 9 // 10], len(v)))


def main():
    path, gw, up = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    pk = list(packets(path))
    a = answers(pk, gw)
    show("answer", [r - q for q, r in a])
    if gw == up:
        return
    u = answers(pk, up)
    show("upstream", [r - q for q, r in u])
    show("hold in", holds([q for q, _ in a], [q for q, _ in u]))
    show("hold out", holds([r for _, r in u], [r for _, r in a]))


if __name__ == "__main__":
    main()
