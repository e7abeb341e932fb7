#!/usr/bin/python3
"""Smallest Neutron API that lets Nova manage servers booted with networks='none'.

Nova talks to Neutron even when a server has no network: showing and listing
servers reads GET /v2.0/ports?device_id=..., deleting one deallocates its
(zero) ports, and the info-cache healer lists security groups and extensions.
This stub answers every collection GET with an empty list, every DELETE with
204 and refuses writes with 501, so a server that asks for a real port fails
loudly instead of silently getting none. No authentication is checked: it
listens on 127.0.0.1 only.

    fake_neutron.py [HOST] [PORT]      (default 127.0.0.1 9696)
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

HOST = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 9696


def versions():
    href = "http://%s:%d/v2.0/" % (HOST, PORT)
    return {"versions": [{"id": "v2.0", "status": "CURRENT",
                          "links": [{"rel": "self", "href": href}]}]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, code, body=None):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def do_GET(self):
        parts = [p for p in urlparse(self.path).path.split("/") if p]
        if not parts:
            return self.reply(200, versions())
        if parts[0] == "v2.0":
            parts = parts[1:]
        if not parts:
            return self.reply(200, {"resources": []})
        # /v2.0/security-groups(.json) -> {"security_groups": []}
        collection = parts[0].removesuffix(".json").replace("-", "_")
        if len(parts) == 1:
            return self.reply(200, {collection: []})
        if collection == "quotas":
            return self.reply(200, {"quota": {}})
        return self.reply(404, {"NeutronError": {
            "type": "NotFound", "message": "fake neutron holds no %s" % collection,
            "detail": ""}})

    def do_DELETE(self):
        self.reply(204)

    def do_POST(self):
        self.reply(501, {"NeutronError": {
            "type": "NotImplemented",
            "message": "fake neutron: boot servers with networks='none'",
            "detail": ""}})

    do_PUT = do_POST

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.command, self.path))


if __name__ == "__main__":
    ThreadingHTTPServer((HOST, PORT), Handler).serve_forever()
