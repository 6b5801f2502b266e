"""Load and abuse checks against a real ``kgchat serve`` on loopback.

    .venv/bin/python -m bench.service_load [--clients 20 --seconds 60 --out bench/out/service]

1. A scratch store: the sample film KB, the sample documents, and two watched KB files
   that together answer a two-hop question: ``Zorblat|directed_by|Quinn Arvel`` and
   ``Quinn Arvel|born_in|Oslo``. One ``kgchat refresh --no-train`` records them as seen.
2. ``kgchat serve`` with a token, its scheduler on. ``--clients`` threads ask questions over
   ``/chat`` for ``--seconds``; one in four is "where was the director of Zorblat born?".
3. A quarter of the way in, both files change at once (director Rhea Moss, born in Lima)
   and ``POST /refresh`` starts a pass with a small learning round. The refresh writes
   both files under one hold of the writer lock, so every Zorblat answer must be wholly
   old (Oslo via Quinn Arvel) or wholly new (Lima via Rhea Moss); any other answer to it
   (a mix, or nothing, which is what a half-written graph gives) counts as **mixed**.
4. Abuse, after the load: SPARQL UPDATE without the token, ``SERVICE`` to a loopback port,
   a cartesian product, a 100 MB upload, malformed JSON; each must get its refusal status
   and the server must still answer ``/healthz``.

Prints requests/s, p50/p95 latency, errors, mixed answers and the abuse statuses, and
writes them to ``OUT/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
KGCHAT = [sys.executable, "-m", "chatbot"]
TOKEN = "bench-token"
QUESTION = "where was the director of Zorblat born"
OLD = ("Quinn Arvel", "Oslo")
NEW = ("Rhea Moss", "Lima")
OTHERS = ["who directed Forrest Gump", "what films did Tom Hanks star in",
          "who wrote the films directed by Robert Zemeckis", "what genre is Forrest Gump",
          "which films share actors with Forrest Gump"]


def kgchat(store: Path, *args: str) -> None:
    subprocess.run([*KGCHAT, "--store", str(store), *args], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)


def facts(folder: Path, director: str, place: str) -> None:
    (folder / "zorblat-direction.txt").write_text(f"Zorblat|directed_by|{director}\n")
    (folder / "zorblat-people.txt").write_text(f"{director}|born_in|{place}\n")


def build(out: Path) -> tuple[Path, Path]:
    store, watched = out / "store", out / "watched"
    shutil.rmtree(out, ignore_errors=True)
    watched.mkdir(parents=True)
    facts(watched, *OLD)
    kgchat(store, "init")
    kgchat(store, "import", str(ROOT / "data/sample/kb/films.txt"),
           str(watched / "zorblat-direction.txt"), str(watched / "zorblat-people.txt"))
    kgchat(store, "ingest", str(ROOT / "data/sample/docs"))
    for f in sorted(watched.iterdir()):
        kgchat(store, "sources", "add", str(f), "--every", "1h")
    kgchat(store, "refresh", "--no-train")  # the watches' first pass: nothing changes
    return store, watched


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def verdict(answer: dict[str, Any] | None) -> str:
    """old | new | mixed, for an answer to QUESTION."""
    if not answer or not answer.get("entities"):
        return "mixed"
    first = answer["entities"][0]
    hops = {h["object"] for chain in answer.get("evidence", []) for h in chain} | \
        {h["subject"] for chain in answer.get("evidence", []) for h in chain}
    for name, (person, place) in (("old", OLD), ("new", NEW)):
        other = NEW if name == "old" else OLD
        if first == place and person in hops and not set(other) & hops:
            return name
    return "mixed"


def load(base: str, clients: int, seconds: float, on_quarter: Any) -> dict[str, Any]:
    lat: list[float] = []
    errors: list[str] = []
    seen: list[tuple[float, str]] = []  # (time since start, verdict) for QUESTION
    mutex = threading.Lock()
    start = time.perf_counter()
    stop_at = start + seconds

    def client(k: int) -> None:
        with httpx.Client(base_url=base, timeout=120) as http:
            i = 0
            while time.perf_counter() < stop_at:
                q = QUESTION if i % 4 == 0 else OTHERS[(i + k) % len(OTHERS)]
                i += 1
                t0 = time.perf_counter()
                try:
                    r = http.post("/chat", json={"session_id": f"client-{k}-{i}", "message": q})
                    ok = r.status_code == 200
                except httpx.HTTPError as exc:
                    ok, r = False, None
                    with mutex:
                        errors.append(f"{type(exc).__name__}: {exc}")
                took = time.perf_counter() - t0
                with mutex:
                    lat.append(took)
                    if r is not None and not ok:
                        errors.append(f"{r.status_code}: {r.text[:200]}")
                    if ok and q == QUESTION:
                        seen.append((round(t0 - start, 2), verdict(r.json().get("answer"))))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    time.sleep(seconds / 4)
    on_quarter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    lat.sort()
    return {"clients": clients, "seconds": round(wall, 1), "requests": len(lat),
            "requests_per_s": round(len(lat) / wall, 2),
            "p50_ms": round(1000 * statistics.median(lat), 1) if lat else None,
            "p95_ms": round(1000 * lat[int(0.95 * (len(lat) - 1))], 1) if lat else None,
            "errors": len(errors), "error_samples": errors[:5],
            "zorblat": {v: sum(1 for _, x in seen if x == v) for v in ("old", "new", "mixed")},
            "zorblat_timeline": seen}


def abuse(base: str) -> dict[str, Any]:
    """Each attempt → (status, expected statuses)."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    out: dict[str, Any] = {}
    with httpx.Client(base_url=base, timeout=120) as http:
        def record(name: str, expect: tuple[int, ...], call: Any) -> None:
            t0 = time.perf_counter()
            try:
                status = call().status_code
            except httpx.HTTPError as exc:  # e.g. the server closed a huge upload early
                status = type(exc).__name__
            out[name] = {"status": status, "expected": list(expect), "ok": status in expect,
                         "ms": round(1000 * (time.perf_counter() - t0))}

        record("update without token", (401,), lambda: http.post(
            "/sparql", content="INSERT DATA { <urn:x> <urn:p> <urn:o> }",
            headers={"Content-Type": "application/sparql-update"}))
        record("update with a wrong token", (403,), lambda: http.post(
            "/sparql", data={"update": "INSERT DATA { <urn:x> <urn:p> <urn:o> }"},
            headers={"Authorization": "Bearer nope"}))
        port = free_port()
        record("SERVICE to loopback", (403,), lambda: http.get("/sparql", params={
            "query": f"SELECT * WHERE {{ SERVICE <http://127.0.0.1:{port}/sparql> {{ ?s ?p ?o }} }}"}))
        record("cartesian product", (200, 503), lambda: http.get("/sparql", params={
            "query": "SELECT * WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }"},
            headers={"Accept": "application/sparql-results+json"}))
        big = b"x" * (100 * 1024 * 1024)
        record("100 MB upload", (413,), lambda: http.post(
            "/ingest", files={"files": ("big.txt", big, "text/plain")}, headers=auth))
        record("malformed JSON", (400, 422), lambda: http.post(
            "/chat", content=b'{"session_id": "x", "message": ', headers={"Content-Type": "application/json"}))
        record("still up (/healthz)", (200,), lambda: http.get("/healthz"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--pairs", type=int, default=300, help="learning round during the refresh: new pairs")
    ap.add_argument("--steps", type=int, default=100, help="learning round: generator steps")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/out/service")
    args = ap.parse_args()

    print("building the store…", flush=True)
    store, watched = build(args.out)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(args.out / "serve.log", "w")
    server = subprocess.Popen([*KGCHAT, "--store", str(store), "serve", "--port", str(port),
                               "--pairs", str(args.pairs), "--steps", str(args.steps),
                               "--log-level", "warning"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                              env={**os.environ, "KGCHAT_TOKEN": TOKEN})
    try:
        deadline = time.time() + 300
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.time() > deadline:
                raise SystemExit(f"the server did not start; see {args.out / 'serve.log'}")
            time.sleep(1)
        refresh: dict[str, Any] = {}

        def change() -> None:
            facts(watched, *NEW)
            t0 = time.perf_counter()
            r = httpx.post(f"{base}/refresh", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
            refresh["started"] = r.status_code
            refresh["t0"] = t0

        print(f"{args.clients} clients for {args.seconds:.0f} s; the refresh starts at "
              f"{args.seconds / 4:.0f} s…", flush=True)
        result = load(base, args.clients, args.seconds, change)
        while httpx.get(f"{base}/refresh", timeout=30).json()["running"]:
            time.sleep(1)
        status = httpx.get(f"{base}/refresh", timeout=30).json()
        refresh.update(seconds_to_done=round(time.perf_counter() - refresh.pop("t0"), 1), last=status["last"])
        after = httpx.post(f"{base}/chat", json={"session_id": "after", "message": QUESTION}, timeout=120)
        result["after_refresh"] = verdict(after.json().get("answer"))
        result["refresh"] = refresh
        result["abuse"] = abuse(base)
    finally:
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    (args.out / "results.json").write_text(json.dumps(result, indent=1))
    z = result["zorblat"]
    print(f"requests/s {result['requests_per_s']}  p50 {result['p50_ms']} ms  p95 {result['p95_ms']} ms  "
          f"errors {result['errors']}  ({result['requests']} requests, {result['clients']} clients, "
          f"{result['seconds']} s)")
    print(f"Zorblat answers: {z['old']} old, {z['new']} new, {z['mixed']} mixed; after the refresh: "
          f"{result['after_refresh']}; refresh: {refresh}")
    for name, a in result["abuse"].items():
        print(f"  {name:28} {a['status']!s:>6}  expected {a['expected']}  {'ok' if a['ok'] else 'FAIL'}")
    print(f"wrote {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
