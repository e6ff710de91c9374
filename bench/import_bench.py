"""Import throughput: N synthetic messages (CSV) into a fresh SQLite workspace. Prints JSON.

    python bench/import_bench.py [--messages 1000000] [--format csv|jsonl|parquet]

Target (issue 2): >= 33,000 messages/s, i.e. 1M messages in <= 30 s.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import seeds  # noqa: E402
from store import Repository, load_codebook_file, sqlite_url  # noqa: E402
from store.io import ColumnMap, import_file  # noqa: E402

WORDS = (
    "so you feel like the drinking has been creeping up and that worries you a bit what would "
    "it take for things to change it sounds like work has been really stressful lately and you "
    "have been using cigarettes to cope how do you feel about that I hear that you want to be "
    "there for your kids"
).split()
LABELS = ["reflection", "question", "therapist_input", "other"]


def generate(path: Path, n: int, fmt: str, seed: int = 0) -> None:
    """Write n messages in conversations of 100 turns, AnnoMI-like lengths, 10% labelled."""
    rng = random.Random(seed)
    rows = []

    def row(i: int) -> dict[str, object]:
        conv, turn = divmod(i, 100)
        speaker = "therapist" if turn % 2 == 0 else "client"
        text = " ".join(rng.choices(WORDS, k=rng.randint(4, 30))).capitalize() + "."
        label = rng.choice(LABELS) if speaker == "therapist" and rng.random() < 0.2 else ""
        return {
            "conversation": f"c{conv}",
            "turn": turn,
            "speaker": speaker,
            "text": text,
            "label": label,
            "topic": "synthetic",
        }

    if fmt == "csv":
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(
                fh, ["conversation", "turn", "speaker", "text", "label", "topic"]
            )
            writer.writeheader()
            for i in range(n):
                writer.writerow(row(i))
    elif fmt == "jsonl":
        with path.open("w", encoding="utf-8") as fh:
            for i in range(n):
                fh.write(json.dumps(row(i)) + "\n")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        writer = None
        for start in range(0, n, 100_000):
            rows = [row(i) for i in range(start, min(n, start + 100_000))]
            table = pa.Table.from_pylist(rows)
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
        assert writer is not None
        writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--format", default="csv", choices=["csv", "jsonl", "parquet"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / f"synthetic.{args.format}"
        t0 = time.perf_counter()
        generate(data, args.messages, args.format)
        generated_s = time.perf_counter() - t0
        file_mb = round(data.stat().st_size / 1e6, 1)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        repo = Repository.open(sqlite_url(Path(tmp) / "techne.db"), create=True)
        repo.install_codebook(load_codebook_file(seeds.CODEBOOKS / "annomi.toml"))
        repo.codebook_key = "annomi"
        columns = ColumnMap(
            text="text",
            speaker="speaker",
            conversation="conversation",
            order="turn",
            label="label",
            annotator="bench",
            labelable_speakers=("therapist",),
            conversation_fields=("topic",),
        )
        t0 = time.perf_counter()
        report = import_file(repo, data, columns)
        seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = import_file(repo, data, columns)
        reimport_s = time.perf_counter() - t0
        counts = repo.counts()
        repo.close()
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {
        "benchmark": "import",
        "format": args.format,
        "messages": report.messages_added,
        "labels": report.labels_added,
        "conversations": counts["conversations"],
        "file_mb": file_mb,
        "seconds": round(seconds, 2),
        "messages_per_s": round(report.messages_added / seconds),
        "target_messages_per_s": 33_000,
        "reimport_seconds": round(reimport_s, 2),
        "reimport_added": again.messages_added,
        "peak_rss_mb": round(peak_kib / 1024, 1),
        "rss_before_import_mb": round(rss_before / 1024, 1),
        "generate_seconds": round(generated_s, 1),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cpus",
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
