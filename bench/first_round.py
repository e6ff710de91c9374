"""The first-round case of round_bench.py (`--first-round`): a new user's import and first
`techne retrain`, each a fresh process, nothing cached (see round_bench's docstring)."""

from __future__ import annotations

import csv
import os
import platform
import random
import tempfile
from pathlib import Path
from typing import Any

from round_bench import ANNOMI, run_child, techne

import seeds
from store import Repository, load_codebook_file, load_workspace
from store.workspace import write_config


def first_round(messages: int, labelled: int, warm_export: bool, runtime: str) -> dict[str, Any]:
    """Import then the first `techne retrain`, each a fresh process, nothing cached."""
    with ANNOMI.open(encoding="utf-8") as fh:
        source = list(csv.DictReader(fh))
    source.sort(key=lambda r: (int(r["transcript_id"]), int(r["utterance_id"])))
    rng = random.Random(0)
    therapist = [
        i for i in range(messages) if source[i % len(source)]["interlocutor"] == "therapist"
    ]
    chosen = set(rng.sample(therapist, min(labelled, len(therapist))))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        root.mkdir()
        write_config(root, name="bench", codebook="annomi", db_url=None)
        repo = Repository.open(load_workspace(root).db_url, create=True)
        repo.install_codebook(load_codebook_file(seeds.CODEBOOKS / "annomi.toml"))
        repo.close()
        config = root / "techne.toml"
        config.write_text(
            config.read_text().replace("[model]\n", f'[model]\nruntime = "{runtime}"\n')
        )
        data = Path(tmp) / "corpus.csv"
        with data.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["id", "conversation", "turn", "speaker", "text", "label"])
            for i in range(messages):
                r = source[i % len(source)]
                label = r["main_therapist_behaviour"] if i in chosen else ""
                conv = f"{r['transcript_id']}-{i // len(source)}"
                w.writerow(
                    [i, conv, r["utterance_id"], r["interlocutor"], r["utterance_text"], label]
                )
        env = dict(os.environ)
        if not warm_export:
            env["TECHNE_CACHE_DIR"] = str(Path(tmp) / "cache")  # the export is made in the round
        common = [*techne(), "-w", str(root)]
        imported = run_child(
            [
                *common,
                "import",
                str(data),
                "--id",
                "id",
                "--conversation",
                "conversation",
                "--order",
                "turn",
                "--speaker",
                "speaker",
                "--label",
                "label",
                "--annotator",
                "annomi",
                "--labelable-speaker",
                "therapist",
                "--json",
            ],
            env,
        )
        retrained = run_child([*common, "retrain", "--json"], env)
    report = retrained[1]
    return {
        "benchmark": "first round",
        "messages": messages,
        "labelable": len(therapist),
        "labelled": len(chosen),
        "runtime_setting": runtime,
        "export_cache": "warm" if warm_export else "empty (export made in the round)",
        "import_process_s": round(imported[0], 1),
        "retrain_process_s": round(retrained[0], 1),
        "retrain_target_s": 180,
        "retrain_peak_rss_mb": round(retrained[2], 1),
        "round_stages_s": report["timings_s"],
        "runtime_check": report["metrics"].get("runtime_check"),
        "held_out_macro_f1": report["metrics"].get("macro_f1"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
        "load_average_1m_after": round(os.getloadavg()[0], 2),
    }
