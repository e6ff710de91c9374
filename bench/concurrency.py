"""Team mode under load: N annotator processes each claim and label M messages at once.

    python bench/concurrency.py [--backend sqlite|postgres|both] [--processes 8]
        [--labels 500] [--messages 12000] [--overlap 0.2]

Each process is one expert: it asks the store for its queue, claims the next message
(store.team: serialised claim transactions), saves a label (the claim is released in the
same transaction) and repeats. Afterwards the store is checked: events stored vs labels
saved (lost), and messages with more coders than the overlap policy allows (double
assignments). Prints JSON per backend with p50/p99 save and claim latency in ms. PostgreSQL
runs on a throwaway local server (tests/postgres.py, fsync on), over a unix socket;
SQLite runs in WAL mode with synchronous=NORMAL, as Techne always opens it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import seeds  # noqa: E402
from store import Repository, TeamPolicy, load_codebook_file  # noqa: E402
from store.io import ColumnMap, import_file  # noqa: E402

LABELS = ["reflection", "question", "therapist_input", "other"]


def prepare(url: str, messages: int, folder: Path) -> None:
    repo = Repository.open(url, create=True)
    repo.install_codebook(load_codebook_file(seeds.CODEBOOKS / "annomi.toml"))
    rows = folder / "pool.csv"
    with rows.open("w", encoding="utf-8") as f:
        f.write("conv,turn,text\n")
        for i in range(messages):
            f.write(f"c{i // 20},{i % 20},message number {i} in a synthetic session\n")
    import_file(repo, rows, ColumnMap(text="text", conversation="conv", order="turn"))
    repo.close()


def annotator(args: tuple[str, str, int, float, int]) -> dict[str, Any]:
    url, name, labels, overlap, seed = args
    rng = random.Random(seed)
    repo = Repository.open(url, codebook_key="annomi", team=TeamPolicy(overlap=overlap))
    repo.ensure_annotator(name)
    saves: list[float] = []
    claims: list[float] = []
    coded: list[int] = []
    queue: list[int] = []
    refreshes = 0
    while len(coded) < labels:
        if not queue:
            queue = [m for m in repo.queue(name, limit=200) if m not in set(coded)]
            refreshes += 1
            if not queue:
                break
        started = time.perf_counter()
        mid = repo.claim_next(name, queue)
        claims.append(time.perf_counter() - started)
        if mid is None:
            queue = []
            continue
        queue = queue[queue.index(mid) + 1 :]
        started = time.perf_counter()
        repo.add_event(mid, name, "label", [rng.choice(LABELS)], source="bench")
        saves.append(time.perf_counter() - started)
        coded.append(mid)
    repo.close()
    return {"name": name, "coded": coded, "saves": saves, "claims": claims, "refreshes": refreshes}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run(url: str, backend: str, opts: argparse.Namespace, folder: Path) -> dict[str, Any]:
    prepare(url, opts.messages, folder)
    jobs = [(url, f"expert{i}", opts.labels, opts.overlap, i) for i in range(opts.processes)]
    started = time.perf_counter()
    with mp.get_context("spawn").Pool(opts.processes) as pool:
        results = pool.map(annotator, jobs)
    wall = time.perf_counter() - started
    repo = Repository.open(url, codebook_key="annomi", team=TeamPolicy(overlap=opts.overlap))
    stored = repo.counts()["events"]
    coders: dict[int, set[str]] = defaultdict(set)
    for state in repo.iter_states():
        coders[state.message_id] |= set(state.coder_labels)
    saved = sum(len(r["coded"]) for r in results)
    double = sum(1 for mid, who in coders.items() if len(who) > repo.team.coders_needed(mid))
    overlap_items = sum(1 for mid, who in coders.items() if len(who) > 1)
    repo.close()
    saves = [s for r in results for s in r["saves"]]
    claims = [c for r in results for c in r["claims"]]
    return {
        "backend": backend,
        "processes": opts.processes,
        "labels_per_process": opts.labels,
        "overlap": opts.overlap,
        "labels_saved": saved,
        "events_stored": stored,
        "lost": saved - stored,
        "double_assignments_outside_overlap": double,
        "messages_coded": len(coders),
        "messages_coded_twice_by_policy": overlap_items,
        "save_ms_p50": round(percentile(saves, 0.5) * 1000, 2),
        "save_ms_p99": round(percentile(saves, 0.99) * 1000, 2),
        "claim_ms_p50": round(percentile(claims, 0.5) * 1000, 2),
        "claim_ms_p99": round(percentile(claims, 0.99) * 1000, 2),
        "wall_s": round(wall, 1),
        "labels_per_s": round(saved / wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--labels", type=int, default=500)
    parser.add_argument("--messages", type=int, default=12_000)
    parser.add_argument("--overlap", type=float, default=0.2)
    opts = parser.parse_args()
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if opts.backend in ("sqlite", "both"):
            out.append(run(f"sqlite:///{folder / 'bench.db'}", "sqlite", opts, folder))
        if opts.backend in ("postgres", "both"):
            from tests.postgres import PostgresServer

            server = PostgresServer(durable=True).start()
            try:
                out.append(run(server.new_database(), "postgresql", opts, folder))
            finally:
                server.stop()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
