"""Start the real ComfyUI server (main.py) with this pack linked, talk to it over HTTP, and always stop it by PID."""
import json
import os
import pathlib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import host_env

ROOT = host_env.ROOT


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyServer:
    """A ComfyUI server in a scratch base directory: custom_nodes/ links the pack (and the test nodes)."""

    def __init__(self, base, test_nodes=True, models=None, frontend=False):
        self.base = pathlib.Path(base)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        for sub in ("custom_nodes", "input", "output", "temp", "user", "frontend"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        (self.base / "custom_nodes" / "fireflow").symlink_to(ROOT)
        if test_nodes:
            (self.base / "custom_nodes" / "fireflow_testnodes").symlink_to(ROOT / "tests" / "host" / "testnodes")
        (self.base / "models").symlink_to(models or host_env.BASE / "models")
        (self.base / "frontend" / "index.html").write_text("<html><body>headless</body></html>")
        self.proc = None
        self.frontend = frontend  # True: the real frontend package; False: a stub page (headless API use)
        self.log = self.base / "server.log"

    def start(self, timeout=120):
        comfy = host_env.comfy_dir()
        cmd = [sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
               "--base-directory", str(self.base), "--disable-api-nodes",
               "--database-url", f"sqlite:///{self.base / 'user' / 'comfyui.db'}"]
        if not self.frontend:
            cmd += ["--front-end-root", str(self.base / "frontend")]
        env = {**os.environ, "PYTHONPATH": str(ROOT / "scripts")}
        self.proc = subprocess.Popen(cmd, cwd=comfy, stdout=open(self.log, "w"), stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                self.get("/system_stats")
                return self
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.5)
        raise TimeoutError(f"ComfyUI did not answer within {timeout} s:\n{self.log.read_text()[-3000:]}")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=30) as r:
            return json.loads(r.read())

    def post(self, path, data):
        req = urllib.request.Request(self.url + path, data=json.dumps(data).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                body = r.read()
                return json.loads(body) if body.strip() else {}
        except urllib.error.HTTPError as e:
            return {"http_error": e.code, **json.loads(e.read() or b"{}")}

    def run(self, prompt, timeout=300):
        """Queue an API-format prompt and wait for its history entry."""
        queued = self.post("/prompt", {"prompt": prompt, "client_id": "fireflow-e2e"})
        if "prompt_id" not in queued:
            return {"status": {"status_str": "rejected", "messages": queued}}
        pid = queued["prompt_id"]
        deadline = time.time() + timeout
        while time.time() < deadline:
            hist = self.get(f"/history/{pid}")
            if pid in hist and hist[pid].get("status", {}).get("completed") is not None:
                if hist[pid]["status"]["status_str"] in ("success", "error"):
                    return hist[pid]
            time.sleep(0.3)
        raise TimeoutError(f"prompt {pid} did not finish in {timeout} s")


    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
