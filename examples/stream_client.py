#!/usr/bin/env python3
"""Command-line client for the gateway's GPS stream (/api/v1/stream).

Standard library only: it speaks just enough RFC 6455 over a plain socket
(handshake with Sec-WebSocket-Accept check, masked client frames, text,
binary, ping, pong, close and continuation frames), so it runs anywhere
Python 3.8+ does, with nothing to install.

Usage:
    python3 examples/stream_client.py --device-ids 0848086072
    python3 examples/stream_client.py --device-ids SIM-0001,SIM-0002 --count 10
    python3 examples/stream_client.py --url ws://gw.example:8080/api/v1/stream \\
        --device-ids SIM-0001 --json --timeout 30 | jq .data.data.LAT

Output: one human-readable line per frame on stdout, or with --json each
received frame as one raw JSON line. Error events and the close code go to
stderr.

Exit status:
    0  --count messages received, or the server closed with 1000/1001
    1  could not connect, handshake refused, or --timeout elapsed with no frame
    2  any other close (4500 invalid request, 4000 slow consumer, ...),
       or the connection dropped without a close frame
  130  interrupted (Ctrl-C); a 1000 close is sent first
"""

import argparse
import base64
import hashlib
import json
import os
import socket
import ssl
import struct
import sys
from urllib.parse import quote, urlsplit

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class HandshakeError(Exception):
    pass


class WebSocket:
    """A minimal blocking WebSocket client connection (no extensions)."""

    def __init__(self, url, subprotocol="json", timeout=None):
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss"):
            raise HandshakeError("URL must start with ws:// or wss://: " + url)
        secure = parts.scheme == "wss"
        host = parts.hostname or "localhost"
        port = parts.port or (443 if secure else 80)
        path = (parts.path or "/") + ("?" + parts.query if parts.query else "")

        sock = socket.create_connection((host, port), timeout=timeout or 10)
        if secure:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        # Small frames on a latency path: do not let Nagle hold our pongs and closes.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.buf = b""
        self._handshake(parts.netloc, path, subprotocol)
        sock.settimeout(timeout)

    def _handshake(self, netloc, path, subprotocol):
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {netloc}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {subprotocol}\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise HandshakeError("connection closed during the handshake")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)  # any rest is already frames
        lines = head.decode("iso-8859-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if lines[0].split(" ")[1:2] != ["101"]:
            raise HandshakeError("server answered " + lines[0])
        expected = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        if headers.get("sec-websocket-accept") != expected:
            raise HandshakeError("bad Sec-WebSocket-Accept")
        chosen = headers.get("sec-websocket-protocol")
        if chosen not in (None, subprotocol):
            raise HandshakeError(f"server chose subprotocol {chosen!r}, asked for {subprotocol!r}")

    def _read_exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buf)))
            if not chunk:
                raise ConnectionError("connection closed without a close frame")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def _read_frame(self):
        b0, b1 = self._read_exact(2)
        fin, opcode, length = bool(b0 & 0x80), b0 & 0x0F, b1 & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._read_exact(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._read_exact(8))
        mask = self._read_exact(4) if b1 & 0x80 else None  # servers must not mask; tolerate it
        payload = self._read_exact(length)
        return fin, opcode, _apply_mask(payload, mask) if mask else payload

    def send_frame(self, opcode, payload=b""):
        header = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)  # RFC 6455 section 5.3: every client frame is masked
        self.sock.sendall(header + mask + _apply_mask(payload, mask))

    def send_text(self, text):
        self.send_frame(OP_TEXT, text.encode())

    def close(self, code=1000, reason="", wait=True):
        """Send a close frame, wait briefly for the server's unless it already
        came (wait=False), then drop the socket."""
        try:
            self.send_frame(OP_CLOSE, struct.pack("!H", code) + reason.encode()[:123])
            self.sock.settimeout(2)
            while wait and self._read_frame()[1] != OP_CLOSE:
                pass
        except OSError:
            pass  # the server may already be gone; closing is all that is left to do
        finally:
            self.sock.close()

    def receive(self):
        """Return (opcode, payload) of the next data message or close frame.

        Pings are answered here; continuation frames are joined.
        """
        parts, first_opcode = [], None
        while True:
            fin, opcode, payload = self._read_frame()
            if opcode == OP_PING:
                self.send_frame(OP_PONG, payload)
            elif opcode == OP_PONG:
                continue
            elif opcode == OP_CLOSE:
                return opcode, payload
            else:
                if opcode != OP_CONT:
                    first_opcode = opcode
                parts.append(payload)
                if fin:
                    return first_opcode, b"".join(parts)


def _apply_mask(payload, mask):
    if not payload:
        return payload
    repeated = (mask * (len(payload) // 4 + 1))[: len(payload)]
    value = int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")
    return value.to_bytes(len(payload), "big")


def describe(frame):
    """One human-readable line for a decoded server frame."""
    event, data = frame.get("event"), frame.get("data") or {}
    if event == "message":
        pos = data.get("data") or {}
        fields = " ".join(
            f"{k.lower()}={pos[k]}" for k in ("LAT", "LON", "SPEED", "HEADING") if k in pos
        )
        return f"{data.get('timestamp', '-')}  {pos.get('DEVICE_ID', '?')}  {fields}"
    if event == "ping":
        return "keep-alive ping"
    if event in ("subscribed", "unsubscribed"):
        return f"{event}: {', '.join(data.get('device_ids', []))}"
    return f"{event}: {json.dumps(data)}"


def build_url(base, device_ids):
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}device_ids={quote(device_ids, safe=',')}"


def run(args):
    url = build_url(args.url, args.device_ids)
    try:
        ws = WebSocket(url, timeout=args.timeout)
    except (OSError, HandshakeError) as err:
        print(f"cannot connect to {url}: {err}", file=sys.stderr)
        return 1
    print(f"connected to {url}", file=sys.stderr)
    messages = 0
    try:
        while args.count is None or messages < args.count:
            opcode, payload = ws.receive()
            if opcode == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                reason = payload[2:].decode("utf-8", "replace")
                print(f"closed by server: {code} {reason}".rstrip(), file=sys.stderr)
                ws.close(code if code != 1005 else 1000, wait=False)  # echo it (RFC 6455 5.5.1)
                return 0 if code in (1000, 1001) else 2
            if opcode == OP_BINARY:
                print(f"binary frame ({len(payload)} bytes) ignored", file=sys.stderr)
                continue
            text = payload.decode("utf-8", "replace")
            try:
                frame = json.loads(text)
            except ValueError:
                print(f"not JSON: {text[:200]}", file=sys.stderr)
                continue
            if args.json:
                print(text if "\n" not in text else json.dumps(frame), flush=True)
            elif frame.get("event") != "error":
                print(describe(frame), flush=True)
            if frame.get("event") == "error":
                data = frame.get("data") or {}
                print(f"error {data.get('code', '')}: {data.get('message', '')}", file=sys.stderr)
            elif frame.get("event") == "message":
                messages += 1
    except socket.timeout:
        print(f"no frame for {args.timeout} s, giving up", file=sys.stderr)
        ws.close(1000)
        return 1
    except OSError as err:
        print(f"connection lost (1006): {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        ws.close(1000)
        return 130
    ws.close(1000)
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="ws://localhost:8080/api/v1/stream",
                        help="stream endpoint (default: %(default)s)")
    parser.add_argument("--device-ids", required=True,
                        help="comma-separated device ids, e.g. 0848086072,0848086073")
    parser.add_argument("--count", type=int, metavar="N",
                        help="exit 0 after N message events (default: run until closed)")
    parser.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="exit 1 if no frame arrives for this long (default: wait forever)")
    parser.add_argument("--json", action="store_true",
                        help="print each received frame as one raw JSON line")
    args = parser.parse_args()
    if args.count is not None and args.count < 1:
        parser.error("--count must be at least 1")
    try:
        sys.exit(run(args))
    except KeyboardInterrupt:  # during the handshake; run() handles it afterwards
        sys.exit(130)


if __name__ == "__main__":
    main()
