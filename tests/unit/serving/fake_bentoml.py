"""A stand-in for ``bentoml serve`` in the tests of ``recassets.bento.server.start``: an HTTP
server on 127.0.0.1 whose ``/readyz`` answers as the recommender's edge does, and whose log
lines are BentoML's. Run as ``python fake_bentoml.py PORT MODE``; MODE is ``ready`` (200 at
once), ``no-catalogue`` (the service's 503 without an item catalogue, for ever) or
``no-catalogue:N`` (that 503 for the first N probes, then 200: a store back, or busy for a
moment)."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

STORE_ERROR = "SQLite online store /home/x/artifacts/feast/online.db: the file is missing"
NOTE = "no item catalogue loaded (the online store is unavailable or holds no items)"


def main() -> None:
    port, mode = int(sys.argv[1]), sys.argv[2]
    left = -1 if mode == "no-catalogue" else int(mode.split(":")[1]) if ":" in mode else 0
    print(f'[INFO] [cli] Starting production HTTP BentoServer from "fake:Svc" listening on '
          f"http://127.0.0.1:{port} (Press CTRL+C to quit)", flush=True)  # fmt: skip

    class Readyz(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            nonlocal left
            if left != 0:
                left -= 1 if left > 0 else 0
                print(f"[WARNING] [entry_service:fake:1] degraded: {NOTE}: {STORE_ERROR} "
                      "(trace=8d38,span=5ffe,sampled=0,service.name=fake)", flush=True)  # fmt: skip
                said = {"status": "unavailable",
                        "detail": f"{NOTE} (the reason is in the service's log)"}  # fmt: skip
                body, status = json.dumps(said).encode(), 503
            else:
                body, status = b"\n", 200
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    def orphaned() -> None:  # its starter killed without stopping it: go too, not linger
        parent = os.getppid()
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=orphaned, daemon=True).start()
    HTTPServer(("127.0.0.1", port), Readyz).serve_forever()


if __name__ == "__main__":
    main()
