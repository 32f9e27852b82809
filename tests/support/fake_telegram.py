"""A stand-in for the Telegram Bot API on a lab host (which has no route out): enough of it for OpenClaw's Telegram
channel to start, pass its live probe (getMe) and long-poll (getUpdates, answered empty). Run on the host as
`python3 fake_telegram.py PORT`, pointed at by `channels.telegram.apiRoot: http://127.0.0.1:PORT`."""

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BOT = {"id": 123456789, "is_bot": True, "first_name": "Lab", "username": "lab_fake_bot", "can_join_groups": True,
       "can_read_all_group_messages": False, "supports_inline_queries": False}


class Handler(BaseHTTPRequestHandler):
    def answer(self) -> None:
        n = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(n) if n else b""
        method = self.path.split("?")[0].rsplit("/", 1)[-1]
        res: object = True
        if method == "getMe":
            res = BOT
        elif method == "getUpdates":
            try:
                wait = float(json.loads(body or b"{}").get("timeout") or 0)
            except (ValueError, AttributeError):
                wait = 0.0
            time.sleep(min(wait, 10.0))
            res = []
        elif method == "getWebhookInfo":
            res = {"url": "", "has_custom_certificate": False, "pending_update_count": 0}
        elif method == "getMyCommands":
            res = []
        data = json.dumps({"ok": True, "result": res}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = answer

    def log_message(self, *args: object) -> None:
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
