"""A warm `embed` round with and without a refreshed encoder (`techne refresh-encoder`), in
one process, taking turns. Prints JSON.

    python bench/round_tuned_bench.py [--pool 100000] [--labels 2000] [--repeat 3]

The store is round_bench.py's (random cached vectors, `--labels` random labels). The
"refreshed encoder" is a copy of the bundled MiniLM made current with its vectors cached,
as a refresh leaves it (what a round costs does not depend on the weights). Three blocks,
with the refreshed encoder's vectors beside the frozen ones, then without, then with again:
in each, one untimed round (a switch refits the temperature), then `--repeat` warm rounds
that keep it; one new label before each round. Target (issue 11): a
warm round at 2,000 labels and a 100k pool in <= 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from round_bench import add_label, build_store  # noqa: E402

from learning.encoders import Encoder  # noqa: E402
from learning.registry import checksum_folder  # noqa: E402
from learning.rounds import run_round  # noqa: E402
from learning.settings import LearningSettings  # noqa: E402
from learning.tuned import ENCODERS, TunedEncoder  # noqa: E402
from store import Repository, load_workspace  # noqa: E402


def make_current(models_dir: Path, repo: Repository) -> Path:
    """A refreshed encoder as `refresh_encoder` leaves one: folder, vectors, current.json."""
    name = "e-bench"
    folder = models_dir / ENCODERS / name
    shutil.copytree(Encoder().path, folder)
    tuned = TunedEncoder(name, folder, checksum_folder(folder), 0, "")
    ids = [m.id for m in repo.iter_messages()]
    vectors = np.random.default_rng(1).normal(size=(len(ids), 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    repo.artifacts.put_embedding_matrix(tuned.encoder("cpu").key, ids, vectors)
    pointer = models_dir / ENCODERS / "current.json"
    meta = {"name": name, "checksum": tuned.checksum, "labels": 0, "labels_digest": ""}
    pointer.write_text(json.dumps(meta))
    return pointer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pool", type=int, default=100_000)
    parser.add_argument("--labels", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    encoder = Encoder()
    runs: dict[str, list[dict]] = {"with_refreshed_encoder": [], "frozen_only": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        root.mkdir()
        build_store(root, args.pool, args.labels, encoder.dim, encoder.key)
        ws = load_workspace(root)
        repo = Repository.open(ws.db_url, codebook_key=ws.codebook_key)
        settings = LearningSettings.from_workspace(ws)
        pointer = make_current(ws.models_dir, repo)
        saved = pointer.read_text()
        for kind in ("with_refreshed_encoder", "frozen_only", "with_refreshed_encoder"):
            if kind == "with_refreshed_encoder":
                pointer.write_text(saved)
            else:
                pointer.unlink()
            for i in range(args.repeat + 1):  # the first after a switch refits, untimed
                add_label(repo, "reflection")
                started = time.perf_counter()
                result = run_round(repo, ws.models_dir, settings)
                wall = round(time.perf_counter() - started, 3)
                tuned = result.metrics.get("tuned_encoder") is not None
                assert tuned == (kind == "with_refreshed_encoder")
                if i:
                    runs[kind].append({"wall_s": wall, "stages_s": result.timings})
        repo.close()
    print(
        json.dumps(
            {
                "benchmark": "round_tuned",
                "pool_messages": args.pool,
                "labels": args.labels,
                "target_s": 2.0,
                "warm_median_s": {
                    k: round(statistics.median(r["wall_s"] for r in v), 3) for k, v in runs.items()
                },
                "runs": runs,
                "machine": f"{os.cpu_count()} cpus",
                "load_average_1m_after": round(os.getloadavg()[0], 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
