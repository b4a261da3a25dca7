"""What hostile image uploads cost a running server (issue 15): its RSS growth per upload.

For each probe it starts a fresh ``stylesearch serve`` on an index (so that no probe reuses
memory an earlier one left in the allocator), warms it with three ordinary uploads, resets the
server's peak-RSS counter (``/proc/PID/clear_refs``), sends the probe (once, or N at once from
N threads) and reads the peak back (``VmHWM``). Every probe is
an image within the server's default limits of bytes and pixels: very elongated images, 16-bit
greyscale, alpha, palettes, large PNG / TIFF / JPEG, each as large as the limits let it be.

    .venv/bin/python benchmarks/upload_memory.py --index runs/demo/index
    .venv/bin/python benchmarks/upload_memory.py --index runs/demo/index --at-once 8

Linux only (it reads ``/proc``). Prints one row per probe: HTTP status, error code, the peak
RSS growth over the warm server, and the time.
"""

from __future__ import annotations

import io
import subprocess
import sys
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

import _common

#: (name, Pillow mode, width, height, format): each at or near what the default limits accept
PROBES = [
    ("25,000,000 x 1 grey", "L", 25_000_000, 1, "PNG"),
    ("1,000,000 x 25 RGB", "RGB", 1_000_000, 25, "PNG"),
    ("16-bit grey 25 Mpx", "I;16", 5000, 5000, "PNG"),
    ("16-bit grey 12 Mpx", "I;16", 3460, 3460, "PNG"),
    ("RGB PNG 25 Mpx", "RGB", 5000, 5000, "PNG"),
    ("RGB PNG 12 Mpx", "RGB", 3460, 3460, "PNG"),
    ("RGBA PNG 6 Mpx", "RGBA", 2500, 2500, "PNG"),
    ("palette PNG 25 Mpx", "P", 5000, 5000, "PNG"),
    ("1-bit PNG 25 Mpx", "1", 5000, 5000, "PNG"),
    ("RGB 20:1 PNG 12 Mpx", "RGB", 15_480, 774, "PNG"),
    ("float TIFF 2 Mpx", "F", 1500, 1500, "TIFF"),
    ("RGB JPEG 25 Mpx", "RGB", 5000, 5000, "JPEG"),
    ("CMYK JPEG 25 Mpx", "CMYK", 5000, 5000, "JPEG"),
]


def encode(mode: str, width: int, height: int, fmt: str) -> bytes:
    """A flat image (it compresses to a few kilobytes, like a decompression bomb)."""
    buf = io.BytesIO()
    Image.new(mode, (width, height)).save(buf, format=fmt)
    return buf.getvalue()


def multipart(data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="q"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def post(url: str, data: bytes) -> tuple[int, str]:
    body, ctype = multipart(data)
    request = urllib.request.Request(url, data=body, headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            return response.status, "ok"
    except urllib.error.HTTPError as exc:
        code = exc.read().decode(errors="replace").split('"error":"')[-1].split('"')[0]
        return exc.code, code
    except OSError as exc:  # the server closed the connection
        return 0, type(exc).__name__


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} for process {pid}")


def start_server(index: Path, model: Path | None, port: int) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("stylesearch")
    cmd = [str(exe), "serve", "--index", str(index), "--port", str(port)]
    if model is not None:
        cmd += ["--model", str(model)]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited: {server.stderr.read().decode()[-2000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=5)
            return server
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit("the server did not answer within 300 s")


def main() -> None:
    parser = _common.parser(__doc__)
    parser.add_argument("--index", type=Path, required=True, help="an index folder")
    parser.add_argument("--model", type=Path, help="its model folder (default: the recorded one)")
    parser.add_argument("--at-once", type=int, default=1, help="send each probe N times at once")
    args = parser.parse_args()
    if not args.index.is_dir():
        raise SystemExit(f"no index at {args.index}: build one with `stylesearch index`")
    print(f"{'probe':24s} {'bytes':>9s} {'status':>6s} {'error':16s} {'+RSS MB':>8s} {'s':>6s}")
    for name, mode, width, height, fmt in PROBES:
        data = encode(mode, width, height, fmt)
        port = _common.free_port()
        server = start_server(args.index, args.model, port)  # a fresh one: no reused arenas
        url = f"http://127.0.0.1:{port}/api/search"
        try:
            warm = encode("RGB", 600, 800, "JPEG")
            for _ in range(3):
                post(url, warm)
            base = status_kb(server.pid, "VmRSS")
            Path(f"/proc/{server.pid}/clear_refs").write_text("5")  # reset VmHWM to VmRSS
            t0 = time.perf_counter()
            with ThreadPoolExecutor(args.at_once) as pool:
                results = list(pool.map(post, [url] * args.at_once, [data] * args.at_once))
            seconds = time.perf_counter() - t0
            grown = (status_kb(server.pid, "VmHWM") - base) / 1024
        finally:
            server.terminate()
            server.wait(timeout=30)
        statuses = sorted(set(results))
        status = ",".join(str(s) for s, _ in statuses)
        code = ",".join(c for _, c in statuses)
        print(f"{name:24s} {len(data):9d} {status:>6s} {code:16s} {grown:8.0f} {seconds:6.2f}")


if __name__ == "__main__":
    _common.limit_threads()  # the servers it starts: one thread each
    main()
