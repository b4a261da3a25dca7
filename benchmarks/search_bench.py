"""Search benchmark on synthetic catalogs (issue 4): build time, memory, latency, recall@10.

For each N in ``--sizes``: a synthetic index (:mod:`stylesearch.testing.synthetic`: N clustered
unit vectors of ``--dim`` dimensions, 256 by default, a vocabulary of ``--vocab`` words in
attribute groups with attribute
probabilities and metadata words) is written with the faiss HNSW backend, loaded, and queried
one query at a time on one thread, each method after ``--warmup`` untimed queries (other than
the timed ones). Per method it reports the p50 / p99 latency of the search step (wall clock,
and the thread's CPU time, which other processes on the machine do not inflate; query vector
given; the image encoder is timed separately, once, on a random-weight default model), the
three slowest queries, and recall@10 against brute force of the same score over the whole
catalog (computed after every method was timed).

Methods: ``visual`` (cosine top-k; the search step of ``text`` and ``arithmetic`` is the same
operation with another query vector), ``arithmetic`` (image + random word vectors), ``filter``
and ``combined`` (soft filter, exact top-k), ``filter-hard-1%`` (a must word kept by
about 1 % of the items) and ``filter-hard`` (the query's own words as must / must-not).

    .venv/bin/python benchmarks/search_bench.py --sizes 100000 --out runs/bench/search.json
    .venv/bin/python benchmarks/search_bench.py --sizes 100000 1000000 1500000
    .venv/bin/python benchmarks/search_bench.py --sizes 100000 --backends faiss milvus
    .venv/bin/python benchmarks/search_bench.py --sizes 1500000 --dim 288   # with a look

``--backends faiss milvus`` runs the same catalog and queries on both backends (issue 7). Milvus:
the server at ``--milvus-uri``, or a local standalone server (PyPI ``milvus``) started on
127.0.0.1 in the work folder and stopped by its PID at the end; the server's own resident-set
growth is reported (``server_rss_growth_mb``), and every search is a gRPC round trip.

Memory: ``rss_mb`` is the growth of the process's resident set from before loading the index
to after all queries (the index's own files are memory-mapped, so only touched pages count);
``index_mb`` lists the parts: faiss (vectors + graph, in RAM), the float16 attribute matrix
(memory-mapped, a query touches only its words' columns and the rows it scores), the sorted
per-word attribute lists (memory-mapped, a query reads a prefix of one), the rest. ``paths``
counts how the exact soft-filter top-k finished (search.md).
"""

from __future__ import annotations

import _common

_common.limit_threads()  # single-thread query latency

import argparse
import gc
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from stylesearch.index.coarse import COARSE_FILES, build_coarse
from stylesearch.index.store import FORMAT_VERSION, Index
from stylesearch.search.scoring import compose_query
from stylesearch.search.topk import (
    attribute_probs,
    hard_filter_mask,
    hard_filter_topk,
    soft_filter_topk,
)
from stylesearch.testing.index_arrays import write_index_arrays
from stylesearch.testing.oracle import exact_topk
from stylesearch.testing.synthetic import make_synthetic_catalog

DIM = 256
K = 10


def file_mb(folder: Path, *names: str) -> float:
    return sum((folder / n).stat().st_size for n in names) / 2**20


def add_coarse_partition(folder: Path, clusters: int | None = None) -> None:
    """Bring an index built earlier to the current format: give it its coarse partition if it
    lacks one (the same :func:`build_coarse` the writer runs, recorded in its manifest with its
    build time) and record the current ``FORMAT_VERSION`` (format 3 is format 2 with the
    partition always present and no ``cosine_profile``); ``clusters``: rewrite the partition
    with that many clusters (0: the default) even if it has one."""
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    before = dict(manifest)
    if clusters is not None or (manifest.get("coarse") or {}).get("count") != manifest["count"]:
        t0 = time.perf_counter()
        vectors = np.load(folder / "vectors.npy", mmap_mode="r")
        attributes = np.load(folder / "attributes.npy", mmap_mode="r")
        coarse = build_coarse(vectors, attributes, folder, clusters=clusters or None)
        coarse["build_seconds"] = round(time.perf_counter() - t0, 3)
        manifest["coarse"] = coarse
        print(f"  wrote the coarse partition of {folder}: {coarse}", file=sys.stderr)
    manifest["format_version"] = FORMAT_VERSION
    manifest.pop("cosine_profile", None)
    if manifest != before:
        tmp = manifest_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(manifest, indent=1))
        tmp.replace(manifest_path)


def make_queries(cat, n_queries: int, seed: int, word_vectors: np.ndarray):
    """Query image vectors near catalog items, and words drawn from the attribute groups."""
    rng = np.random.default_rng(seed)
    dim = cat.vectors.shape[1]
    queries = []
    for _ in range(n_queries):
        v = cat.vectors[rng.integers(len(cat.vectors))]
        v = v + 0.5 * rng.standard_normal(dim).astype(np.float32) / np.sqrt(dim)
        v = (v / np.linalg.norm(v)).astype(np.float32)
        groups = rng.choice(len(cat.groups), size=3, replace=False)
        add = [int(rng.choice(cat.groups[g])) for g in groups[: rng.integers(1, 3)]]
        remove = [int(rng.choice(cat.groups[groups[2]]))] if rng.random() < 0.5 else []
        q_arith = compose_query(v, word_vectors[add], word_vectors[remove])
        queries.append((v, q_arith, add, remove))
    return queries


def benchmark_queries(cat, n_queries: int, vocab: int, seed: int, warmup: bool = False):
    """The benchmark's queries for a catalog generated with ``seed`` (the same seeds in every
    script that replays them: seed + 1 for the word vectors, seed + 2 for the queries; the
    untimed ``warmup`` queries are other ones, from seed + 3)."""
    rng = np.random.default_rng(seed + 1)
    word_vectors = rng.standard_normal((vocab, cat.vectors.shape[1])).astype(np.float32)
    return make_queries(cat, n_queries, seed + (3 if warmup else 2), word_vectors)


def replay_queries(n: int, n_queries: int, vocab: int = 300, seed: int = 0, dim: int = DIM):
    """Regenerate the catalog of size ``n`` (defaults as ``search_bench.py``'s) and return its
    benchmark queries; the catalog itself is dropped."""
    cat = make_synthetic_catalog(n, dim, vocab, seed=seed)
    return benchmark_queries(cat, n_queries, vocab, seed)


def time_image_encoder(n: int = 30) -> dict[str, float]:
    """Single-image, single-thread forward pass of the default model (random weights)."""
    import torch

    from stylesearch.config import ModelConfig
    from stylesearch.model.joint import JointModel

    torch.set_num_threads(1)
    cfg = ModelConfig()
    model = JointModel(cfg, 300, load_backbone_weights=False).eval()
    x = torch.randn(1, 3, cfg.image_size, cfg.image_size)
    times = []
    with torch.no_grad():
        for i in range(n + 3):
            t0 = time.perf_counter()
            model.encode_images(x, normalize=True)
            if i >= 3:
                times.append((time.perf_counter() - t0) * 1e3)
    return {
        "backbone": cfg.backbone,
        "image_size": cfg.image_size,
        "p50_ms": float(np.percentile(times, 50)),
        "p99_ms": float(np.percentile(times, 99)),
    }


def run_size(
    n: int, args: argparse.Namespace, backend: str = "faiss", milvus: tuple | None = None
) -> dict:
    """One catalog size on one backend; ``milvus`` = ``(uri, server pid or None)``."""
    import faiss

    work = _common.bench_folder(args.workdir, n, backend)
    build_key = {
        "n": n,
        "vocab": args.vocab,
        "seed": args.seed,
        **({} if args.dim == DIM else {"dim": args.dim}),  # indexes of the default keep their key
        "M": args.M,
        "ef_construction": args.ef_construction,
    }
    key_file = work / "build_key.json"
    reuse = (
        args.reuse
        and backend == "faiss"  # a Milvus collection lives in the server: always rebuilt
        and (work / "index" / "manifest.json").exists()
        and key_file.exists()
        and json.loads(key_file.read_text()) == build_key
    )
    if not reuse:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
    t0 = time.perf_counter()
    cat = make_synthetic_catalog(n, args.dim, args.vocab, seed=args.seed)
    gen_s = time.perf_counter() - t0
    queries = benchmark_queries(cat, args.queries, args.vocab, args.seed)
    warmup = benchmark_queries(cat, args.warmup, args.vocab, args.seed, warmup=True)
    faiss.omp_set_num_threads(args.build_threads)
    params = {"M": args.M, "ef_construction": args.ef_construction}
    server_pid = None
    if backend == "milvus":
        assert milvus is not None
        params |= {"uri": milvus[0], "collection": f"bench_n{n}_{os.getpid()}"}
        server_pid = milvus[1]
    server_rss0 = _common.rss_mb(server_pid)
    t0 = time.perf_counter()
    if reuse:
        print(f"  n={n}: reusing the index built earlier in {work}", file=sys.stderr)
        add_coarse_partition(work / "index")
    else:
        write_index_arrays(
            work / "index",
            cat.vectors,
            cat.attributes,
            metadata=cat.metadata,
            backend="faiss-hnsw" if backend == "faiss" else backend,
            backend_params=params,
        )
        key_file.write_text(json.dumps(build_key))
    write_s = time.perf_counter() - t0
    offsets, words = cat.metadata
    counts = np.bincount(words, minlength=args.vocab)
    one_percent = int(np.argmin(np.abs(counts / n - 0.01)))
    del cat, offsets, words
    gc.collect()

    faiss.omp_set_num_threads(1)
    rss0 = _common.rss_mb()
    t0 = time.perf_counter()
    index = Index.load(work / "index")
    load_s = time.perf_counter() - t0
    manifest = index.manifest
    results: dict[str, dict] = {}
    hard_1pct = hard_filter_mask(index, [one_percent], [])

    def visual(v, qa, add, remove):
        return index.backend.search(v[None], K)[1][0]

    def arithmetic(v, qa, add, remove):
        return index.backend.search(qa[None], K)[1][0]

    paths: dict[str, dict[str, int]] = {"filter": {}, "combined": {}}

    def soft(name, q, add, remove):
        top = soft_filter_topk(index, q, K, add, remove)
        path = top.stats.path
        paths[name][path] = paths[name].get(path, 0) + 1
        return top.rows

    def filter_soft(v, qa, add, remove):
        return soft("filter", v, add, remove)

    def combined(v, qa, add, remove):
        return soft("combined", qa, add, remove)

    def filter_hard_1pct(v, qa, add, remove):
        return hard_filter_topk(index, v, K, hard_1pct)[1]

    def filter_hard(v, qa, add, remove):
        allowed = hard_filter_mask(index, add, remove)
        return hard_filter_topk(index, v, K, allowed)[1]

    def oracle(name, v, qa, add, remove):
        vec = qa if name in ("arithmetic", "combined") else v
        soft = name in ("filter", "combined")
        allowed = None
        if name == "filter-hard-1%":
            allowed = hard_1pct
        elif name == "filter-hard":
            allowed = hard_filter_mask(index, add, remove)
        a, r = (add, remove) if soft else ([], [])
        return exact_topk(
            index.vectors, index.attributes, vec, K, a, r, soft=soft, allowed=allowed
        ).rows

    methods = {
        "visual": visual,
        "arithmetic": arithmetic,
        "filter": filter_soft,
        "combined": combined,
        "filter-hard-1%": filter_hard_1pct,
        "filter-hard": filter_hard,
    }
    # every method's queries timed back to back, as a server's stream of queries, after
    # `warmup` other queries (a process's first soft-filter queries find cold caches); the
    # recall afterwards, for all methods at once (an oracle pass over the whole catalog would
    # make the next method's first queries cold again). docs/performance.md, "Protocol".
    timed: dict[str, tuple[list[float], list[float], list]] = {}
    for name, fn in methods.items():
        for qv in warmup:
            fn(*qv)
        times, cpu_times, found = [], [], []
        for qv in queries:
            c0 = time.thread_time()
            t0 = time.perf_counter()
            rows = fn(*qv)
            times.append((time.perf_counter() - t0) * 1e3)
            cpu_times.append((time.thread_time() - c0) * 1e3)
            found.append(rows)
            if args.cold:  # the oracle's pass over the whole catalog flushes the caches
                found[-1] = (rows, oracle(name, *qv))
        timed[name] = (times, cpu_times, found)
    for name, (times, cpu_times, found) in timed.items():
        recalls = []
        for qv, rows in zip(queries, found, strict=True):
            rows, truth = rows if args.cold else (rows, oracle(name, *qv))
            got = {int(r) for r in rows if r >= 0}
            want = {int(r) for r in truth}
            recalls.append(len(got & want) / len(want) if want else 1.0)
        results[name] = {
            "p50_ms": round(float(np.percentile(times, 50)), 3),
            "p99_ms": round(float(np.percentile(times, 99)), 3),
            "cpu_p50_ms": round(float(np.percentile(cpu_times, 50)), 3),
            "cpu_p99_ms": round(float(np.percentile(cpu_times, 99)), 3),
            "recall@10": round(float(np.mean(recalls)), 4),
            # (query position, CPU ms) of the slowest: a tail at the start is the caches
            "slowest": [[int(i), round(cpu_times[i], 2)] for i in np.argsort(cpu_times)[::-1][:3]],
        }
        print(f"  n={n} {name:15s} {results[name]}", file=sys.stderr, flush=True)
    # the soft filter's attribute gather for the results (part of building a response)
    _ = attribute_probs(index.attributes, np.arange(K), [0], [])
    rss = _common.rss_mb() - rss0
    folder = work / "index"
    raw_vectors_mb = n * args.dim * 4 / 2**20
    index_mb = {
        **(
            {"faiss (vectors + graph)": round(file_mb(folder, "hnsw.faiss"), 1)}
            if backend == "faiss"
            else {"local vectors (memory-mapped)": round(file_mb(folder, "vectors.npy"), 1)}
        ),
        "attributes float16": round(file_mb(folder, "attributes.npy"), 1),
        "attribute lists": round(
            file_mb(
                folder,
                "attr_postings_offsets.npy",
                "attr_postings_rows.npy",
                "attr_postings_values.npy",
                "attr_postings_floor.npy",
            ),
            1,
        ),
        "coarse partition": round(file_mb(folder, *COARSE_FILES), 1),
        "list-order cluster + angle copies (RAM)": round(
            sum(
                getattr(getattr(index.coarse, name, None), "nbytes", 0)
                for name in ("list_cluster", "list_angle")
            )
            / 2**20,
            1,
        ),
        "metadata + postings + items": round(
            file_mb(
                folder,
                "metadata_offsets.npy",
                "metadata_words.npy",
                "postings_offsets.npy",
                "postings_rows.npy",
                "items.jsonl",
                "items_offsets.npy",
            ),
            1,
        ),
    }
    summary = {
        "backend": backend,
        "load_s": round(load_s, 2),
        "server_rss_growth_mb": round(_common.rss_mb(server_pid) - server_rss0, 1),
        "n": n,
        "dim": args.dim,
        "vocab": args.vocab,
        "queries": args.queries,
        "protocol": "cold (oracle between queries)" if args.cold else "stream (back to back)",
        "generate_s": round(gen_s, 1),
        "write_index_s": round(write_s, 1),
        "hnsw_build_s": manifest["build_seconds"],
        "coarse_build_s": (manifest.get("coarse") or {}).get("build_seconds"),
        "build_threads": args.build_threads,
        "hnsw": manifest["backend"]["params"],
        "one_percent_word_fraction": round(float(hard_1pct.mask.mean()), 4),
        "raw_vectors_mb": round(raw_vectors_mb, 1),
        "index_mb": index_mb,
        "rss_growth_mb": round(rss, 1),
        "attribute_lists": manifest.get("attribute_postings"),
        "soft_filter_paths": paths,
        "methods": results,
    }
    index.close()
    if backend == "milvus" and not args.keep:
        from stylesearch.index.backends.milvus import drop_collection

        drop_collection(params["uri"], params["collection"])
    if not (args.keep or (args.reuse and backend == "faiss")):
        shutil.rmtree(work, ignore_errors=True)
    return summary


def main() -> None:
    parser = _common.parser(__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--vocab", type=int, default=300)
    parser.add_argument(
        "--dim", type=int, default=DIM,
        help="Vector dimension: 256 for a joint embedding alone, 288 with a model's look "
        "(32 more) as the demo's index stores it.",
    )  # fmt: skip
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--M", type=int, default=32)
    parser.add_argument("--ef-construction", type=int, default=100)
    parser.add_argument("--build-threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--warmup",
        type=int,
        default=30,
        help="Untimed queries (other than the timed ones) before each method's timed run.",
    )
    _common.add_workdir(parser)
    parser.add_argument("--keep", action="store_true", help="Keep the index folders.")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="Keep the index folders and reuse one built earlier with the same N, vocabulary, "
        "seed and HNSW parameters (build times then come from its manifest; one of an "
        "older format gets its coarse partition and the current format version).",
    )
    parser.add_argument("--out", type=Path, default=None, help="Write the results as JSON here.")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="Run each query's brute-force oracle right after it (the benchmark's earlier "
        "protocol): the oracle reads the whole catalog, so every timed query starts with "
        "cold caches. Default: all queries timed back to back, recall computed afterwards.",
    )
    parser.add_argument(
        "--backends", nargs="+", choices=["faiss", "milvus"], default=["faiss"],
        help="Backends to compare on the same catalogs and queries.",
    )  # fmt: skip
    parser.add_argument(
        "--milvus-uri", default=None,
        help="A running Milvus; default: start a local standalone server on 127.0.0.1.",
    )  # fmt: skip
    args = parser.parse_args()

    report = {"image_encoder": time_image_encoder(), "sizes": []}
    print(f"image encoder (one image, one thread): {report['image_encoder']}", file=sys.stderr)
    server = None
    milvus = None
    if "milvus" in args.backends:
        if args.milvus_uri:
            milvus = (args.milvus_uri, None)
        else:
            from stylesearch.testing.milvus_local import LocalMilvus

            server = LocalMilvus(Path(args.workdir) / "milvus-server", start_timeout=300)
            milvus = (server.start(), server.pid)
    try:
        for n in args.sizes:
            for backend in args.backends:
                report["sizes"].append(run_size(n, args, backend, milvus))
    finally:
        if server is not None:
            server.stop()
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    enc = report["image_encoder"]
    print(
        f"image encoding ({enc['backbone']} {enc['image_size']}px, 1 thread): "
        f"p50 {enc['p50_ms']:.1f} ms, p99 {enc['p99_ms']:.1f} ms"
    )
    for s in report["sizes"]:
        print(
            f"\nN = {s['n']:,} [{s['backend']}]: HNSW build {s['hnsw_build_s']} s, coarse "
            f"partition {s['coarse_build_s']} s ({s['build_threads']} threads), "
            f"load {s['load_s']} s, "
            f"RSS growth {s['rss_growth_mb']} MB (Milvus server: {s['server_rss_growth_mb']} MB), "
            f"raw vectors {s['raw_vectors_mb']} MB"
        )
        print("index parts (MB): " + ", ".join(f"{k} {v}" for k, v in s["index_mb"].items()))
        print(f"1% hard filter keeps {s['one_percent_word_fraction']:.2%} of the items")
        print(
            f"attribute lists: {s['attribute_lists']}; soft-filter paths (incl. warm-up): "
            f"{s['soft_filter_paths']}"
        )
        print(
            "| method | p50 ms | p99 ms | CPU p50 ms | CPU p99 ms | recall@10 |\n"
            "|---|---|---|---|---|---|"
        )
        for name, m in s["methods"].items():
            print(
                f"| {name} | {m['p50_ms']} | {m['p99_ms']} | {m['cpu_p50_ms']} | "
                f"{m['cpu_p99_ms']} | {m['recall@10']} |"
            )


if __name__ == "__main__":
    main()
