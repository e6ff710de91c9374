"""Shared fixtures: isolated environment, stores on SQLite and PostgreSQL, workspaces."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import seeds
from store import Repository, load_codebook_file
from tests.postgres import PostgresServer, find_bin

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
ANNOMI_SIMPLE = SHARED / "annomi" / "AnnoMI-simple.csv"
ANNOMI_FULL = SHARED / "annomi" / "AnnoMI-full.csv"
DATA = Path(__file__).resolve().parent / "data"

ANNOMI_ARGS = [
    "--text",
    "utterance_text",
    "--speaker",
    "interlocutor",
    "--conversation",
    "transcript_id",
    "--order",
    "utterance_id",
    "--label",
    "main_therapist_behaviour",
    "--annotator",
    "annomi",
    "--labelable-speaker",
    "therapist",
]


@pytest.fixture(scope="session", autouse=True)
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One cache folder per test session for the encoder's ONNX exports (learning/
    onnx_export.py): the bundled MiniLM is exported at most once per session, and never
    into the developer's own cache (set before module-scoped fixtures run, too)."""
    path = tmp_path_factory.mktemp("techne-cache")
    before = os.environ.get("TECHNE_CACHE_DIR")
    os.environ["TECHNE_CACHE_DIR"] = str(path)
    yield path
    if before is None:
        os.environ.pop("TECHNE_CACHE_DIR", None)
    else:
        os.environ["TECHNE_CACHE_DIR"] = before


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, onnx_cache: Path) -> None:
    """Keep a developer's own workspace, database, home and caches out of every test."""
    for var in ("TECHNE_WORKSPACE", "TECHNE_DB_URL"):
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("TECHNE_CACHE_DIR", str(onnx_cache))


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the session (skips locally when not installed)."""
    if not find_bin("initdb"):
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed; .ci/run should have installed it")
        pytest.skip("PostgreSQL binaries not installed (apt-get install postgresql)")
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'techne.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.new_database()


@pytest.fixture
def annomi_repo(store_url: str) -> Iterator[Repository]:
    """A store on either backend with the AnnoMI codebook installed."""
    repo = Repository.open(store_url, create=True)
    repo.install_codebook(load_codebook_file(seeds.CODEBOOKS / "annomi.toml"))
    repo.codebook_key = "annomi"
    yield repo
    repo.close()


@pytest.fixture
def annomi_csv() -> Path:
    if not ANNOMI_SIMPLE.exists():
        pytest.skip(f"AnnoMI not available: {ANNOMI_SIMPLE} is missing (../shared absent)")
    return ANNOMI_SIMPLE


@pytest.fixture(scope="session")
def trained_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo workspace after one embed round (real MiniLM), built once per test run."""
    from sqlalchemy import text

    from store import load_workspace

    path = tmp_path_factory.mktemp("trained") / "demo"
    build_exact_demo(path)
    ws = load_workspace(path)
    repo = Repository.open(ws.db_url)
    with repo.engine.connect() as conn:
        conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    repo.close()
    return path


@pytest.fixture(scope="session")
def trained_demo_pg(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer) -> Path:
    """The same trained demo with its store in PostgreSQL (team mode)."""

    path = tmp_path_factory.mktemp("trained-pg") / "demo"
    build_exact_demo(path, db=postgres.new_database())
    return path


def build_exact_demo(path: Path, db: str | None = None) -> None:
    """The demo workspace trained on fp32 ONNX vectors (`runtime = "onnx"`), not the CPU
    default int8 ones: int8 kernels differ between CPU types (AVX2 / AVX-512 VNNI), which
    moved the demo model's numbers and queue, and so the snapshots, from one machine to
    another. fp32 vectors agree to about 1e-6 everywhere."""
    from tui.demo import build_demo

    build_demo(path, train=False, db=db)
    config = path / "techne.toml"
    text = config.read_text(encoding="utf-8")
    assert '# runtime = "auto"' in text
    config.write_text(text.replace('# runtime = "auto"', 'runtime = "onnx"  '), encoding="utf-8")
    build_demo(path, db=db)


def copy_workspace(source: Path, target: Path, postgres: PostgresServer | None = None) -> Path:
    """A private copy of a workspace: its folder, and on PostgreSQL a copy of its database."""
    import shutil

    from store import load_workspace

    shutil.copytree(source, target)
    if postgres is not None:
        config = target / "techne.toml"
        url = load_workspace(source).db_url
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace(url, postgres.clone_database(url)), encoding="utf-8")
    return target


def predicted_and_stored(repo, predictor, model, count: int):  # noqa: ANN001, ANN201
    """A saved model's probabilities computed from text for the pool's first `count`
    messages, and the ones its round stored for them (rows alike, techniques in order)."""
    import numpy as np

    from learning.inputs import following_turns
    from learning.pool import Pool
    from learning.rounds import pool_inputs

    pool = Pool.build(repo, repo.codebook())
    card = predictor.card
    after = following_turns(card.context_mode, card.context_turns)
    inputs = pool_inputs(repo, pool, card.context_turns, after)[:count]
    ids = [int(i) for i in pool.message_ids[:count]]
    stored = repo.artifacts.predictions(model.id, ids)
    expected = np.array([[stored[m].probabilities[k] for k in pool.labels] for m in ids])
    return np.asarray(predictor.predict_proba(inputs)), expected
