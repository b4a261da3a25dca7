"""Bounded load test of ``stylesearch serve`` on 127.0.0.1: requests/s, p50 / p99 latency, errors.

    .venv/bin/python benchmarks/load_bench.py --index runs/demo/index --duration 60 --clients 8 \\
        --upload-share 0.2 --out runs/bench/load.json
    .venv/bin/python benchmarks/load_bench.py --url http://127.0.0.1:8000   # a running server

Without ``--url`` the server is started as a subprocess (``stylesearch serve``) on a free port
and stopped at the end. ``--clients`` concurrent clients (asyncio + httpx, keep-alive) send
``POST /api/search`` back to back for ``--duration`` seconds after a short warm-up: a mix of
every method, random catalog items as the query (``item_id``) or, for ``--upload-share`` of the
requests, an item's image uploaded as multipart (where image decoding and encoding dominate),
with 0-2 wanted and 0-1 unwanted words drawn from the vocabulary's most frequent words.

Latency is measured by the client (request sent to body read). Any non-200 answer or transport
error counts as an error. Prints one table and, with ``--out``, writes the numbers as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

import _common

METHODS = ("visual", "text", "arithmetic", "filter", "filter-hard", "combined")


def start_server(index: str, port: int, threads: int | None) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "stylesearch", "serve", "--index", index, "--port", str(port)]
    cmd += ["--log-level", "warning"]
    if threads:
        cmd += ["--threads", str(threads)]
    proc = subprocess.Popen(cmd)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with status {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    stop_server(proc)
    raise SystemExit("the server did not answer /api/health within 180 s")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


async def prepare(client: httpx.AsyncClient, n_uploads: int, seed: int) -> dict[str, Any]:
    items = (await client.get("/api/random-items", params={"n": 100, "seed": seed})).json()
    ids = [it["id"] for it in items["items"]]
    words = (await client.get("/api/vocabulary", params={"limit": 40})).json()["words"]
    images = []
    for item_id in ids[:n_uploads]:
        r = await client.get(f"/api/items/{item_id}/image")
        r.raise_for_status()
        images.append(r.content)
    return {"ids": ids, "words": [w["word"] for w in words], "images": images}


def make_request(rng: random.Random, data: dict[str, Any], upload_share: float) -> dict[str, Any]:
    words = rng.sample(data["words"], rng.randint(0, 3))
    add, remove = words[:2], words[2:]
    method = rng.choice(METHODS)
    if method == "text" and not add:
        add = [data["words"][0]]
    k = 12
    if data["images"] and rng.random() < upload_share:
        image = rng.choice(data["images"])
        fields = [("add", (None, w)) for w in add] + [("remove", (None, w)) for w in remove]
        fields += [("method", (None, method)), ("k", (None, str(k)))]
        fields.append(("image", ("query.png", image, "image/png")))
        return {"kind": "upload", "files": fields}
    body = {"item_id": rng.choice(data["ids"]), "add": add, "remove": remove}
    return {"kind": "item", "json": body | {"method": method, "k": k}}


async def client_loop(
    client: httpx.AsyncClient,
    data: dict[str, Any],
    args: argparse.Namespace,
    seed: int,
    until: float,
    out: dict[str, list[Any]],
) -> None:
    rng = random.Random(seed)
    while time.perf_counter() < until:
        req = make_request(rng, data, args.upload_share)
        kind = req.pop("kind")
        t0 = time.perf_counter()
        try:
            r = await client.post("/api/search", **req)
            ok = r.status_code == 200
            detail = None if ok else f"{r.status_code}: {r.text[:200]}"
        except httpx.HTTPError as exc:
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        ms = (time.perf_counter() - t0) * 1e3
        out[kind].append(ms)
        if not ok:
            out["errors"].append({"kind": kind, "detail": detail})


def summarise(latencies: list[float], seconds: float) -> dict[str, Any]:
    if not latencies:
        return {"requests": 0}
    a = np.asarray(latencies)
    return {
        "requests": int(a.size),
        "rps": round(a.size / seconds, 1),
        "p50_ms": round(float(np.percentile(a, 50)), 1),
        "p90_ms": round(float(np.percentile(a, 90)), 1),
        "p99_ms": round(float(np.percentile(a, 99)), 1),
        "max_ms": round(float(a.max()), 1),
    }


async def run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        data = await prepare(client, 8, args.seed)
        warm: dict[str, list[Any]] = {"item": [], "upload": [], "errors": []}
        end = time.perf_counter() + args.warmup
        await asyncio.gather(
            *(client_loop(client, data, args, 10_000 + i, end, warm) for i in range(args.clients))
        )
        out: dict[str, list[Any]] = {"item": [], "upload": [], "errors": []}
        t0 = time.perf_counter()
        end = t0 + args.duration
        await asyncio.gather(
            *(client_loop(client, data, args, args.seed + i, end, out) for i in range(args.clients))
        )
        seconds = time.perf_counter() - t0
        health = (await client.get("/api/health")).json()
    return {
        "url": url,
        "index_items": health["items"],
        "duration_s": round(seconds, 1),
        "clients": args.clients,
        "upload_share": args.upload_share,
        "cpu_count": os.cpu_count(),
        "total": summarise(out["item"] + out["upload"], seconds),
        "item": summarise(out["item"], seconds),
        "upload": summarise(out["upload"], seconds),
        "errors": len(out["errors"]),
        "error_examples": out["errors"][:5],
    }


def main() -> None:
    parser = _common.parser(__doc__)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--index", help="start `stylesearch serve --index INDEX` on a free port")
    where.add_argument("--url", help="use a server already running at this URL")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument("--upload-share", type=float, default=0.2, help="share of uploads")
    parser.add_argument("--threads", type=int, default=None, help="the server's --threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    args = parser.parse_args()
    if not 0.0 <= args.upload_share <= 1.0 or args.clients < 1 or args.duration <= 0:
        parser.error("need 0 <= --upload-share <= 1, --clients >= 1, --duration > 0")
    proc = None
    url = args.url
    if url is None:
        port = _common.free_port()
        proc = start_server(args.index, port, args.threads)
        url = f"http://127.0.0.1:{port}"
    try:
        result = asyncio.run(run(args, url.rstrip("/")))
    finally:
        if proc is not None:
            stop_server(proc)
    print(
        f"{result['clients']} clients, {result['duration_s']} s, {result['index_items']} items, "
        f"{result['cpu_count']} CPUs, upload share {result['upload_share']}"
    )
    print(f"{'queries':<8} {'requests':>8} {'req/s':>7} {'p50 ms':>7} {'p90 ms':>7} "
          f"{'p99 ms':>7} {'max ms':>7}")  # fmt: skip
    for kind in ("item", "upload", "total"):
        s = result[kind]
        if not s.get("requests"):
            continue
        print(
            f"{kind:<8} {s['requests']:>8} {s['rps']:>7} {s['p50_ms']:>7} {s['p90_ms']:>7} "
            f"{s['p99_ms']:>7} {s['max_ms']:>7}"
        )
    print(f"errors: {result['errors']}")
    for example in result["error_examples"]:
        print(f"  {example}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if result["errors"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
