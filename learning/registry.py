"""Model versions on disk: one folder per version, checksummed, loadable as a Predictor."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from learning.calibration import softmax
from learning.inputs import ModelInput
from store import TechneError
from store.artifacts import ModelVersionView

if TYPE_CHECKING:
    from store import Repository


class ModelError(TechneError):
    """A model version that cannot be found, verified or loaded."""


@dataclass(frozen=True)
class ModelCard:
    """What a saved model needs to be used again, written as model.json beside its weights."""

    backend: str
    labels: list[str]
    multi_label: bool
    encoder: str
    context_mode: str
    context_turns: int
    max_length: int
    temperature: float = 1.0
    runtime: str = "torch"
    """The encoder runtime whose vectors trained an embed model (learning/runtimes.py)."""
    tuned_encoder: str = ""
    """An embed model's refreshed encoder (learning.tuned), under the models folder's
    encoders/; its vectors follow the frozen encoder's. Empty: none."""
    tuned_checksum: str = ""


def checksum_folder(folder: Path) -> str:
    """sha256 over every file's relative path and bytes, in a fixed order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode())
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def save_model(folder: Path, classifier: Any, card: ModelCard) -> str:
    """Write a model version's folder (replacing a half-written one); returns its checksum."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    classifier.save(folder / "classifier")
    (folder / "model.json").write_text(json.dumps(asdict(card), indent=2))
    return checksum_folder(folder)


def model_folder(models_dir: Path, version: ModelVersionView) -> Path:
    if not version.path:
        raise ModelError(f"model {version.tag} has no saved weights")
    path = Path(version.path)
    return path if path.is_absolute() else models_dir.parent / path


def activate_version(repo: Repository, models_dir: Path, ref: str) -> ModelVersionView:
    """Make a registered version (id or tag) the active one, a rollback or forward again,
    once its weights on disk still match their checksum."""
    version = repo.artifacts.version(ref)
    folder = model_folder(models_dir, version)
    if not folder.exists() or checksum_folder(folder) != version.checksum:
        raise ModelError(f"model {version.tag}: weights at {folder} are missing or changed")
    return repo.artifacts.activate(version.id)


class Predictor:
    """A loaded model version: probabilities for messages given as text with context."""

    def __init__(
        self, card: ModelCard, classifier: Any, device: str = "auto", runtime: str = "auto"
    ) -> None:
        self.card = card
        self.classifier = classifier
        self.device = device
        self.runtime = runtime
        """Encoder runtime: auto, torch, onnx or onnx-int8 (learning/fidelity.predict_runtime
        turns auto into one for a registered version)."""
        self.batch_size = 128
        self.encoded = 0
        """Texts encoded so far (each distinct text of a batch once)."""
        self._encoder: Any = None
        self.tuned: Any = None
        """The refreshed encoder (learning.tuned) of a model trained with one."""

    @property
    def labels(self) -> list[str]:
        return self.card.labels

    @property
    def encoder(self) -> Any:
        if self._encoder is None:
            from learning.encoders import Encoder

            self._encoder = Encoder(
                self.card.encoder,
                self.device,
                self.card.max_length,
                self.batch_size,
                runtime=self.runtime,
            )
        return self._encoder

    @property
    def runtime_used(self) -> str:
        """The encoder runtime that ran (torch for fine-tuned models)."""
        if self.card.backend != "embed":
            return "torch"
        return str(self.encoder.runtime)

    def features(self, inputs: list[ModelInput]) -> np.ndarray:
        """Embed-backend features computed from text (the same as the cached ones), the
        refreshed encoder's after the frozen one's when the model has one."""
        own = self._features(self.encoder, inputs)
        if self.tuned is None:
            return own
        return np.hstack([own, self._features(self.tuned, inputs)])

    def _features(self, encoder: Any, inputs: list[ModelInput]) -> np.ndarray:
        """One encoder's blocks. Each distinct text is encoded once: a turn is often the
        next message's context too."""
        sides: list[list[str]] = []
        if self.card.context_mode != "none":
            sides.append([i.context[-1].text if i.context else "" for i in inputs])
        if self.card.context_mode == "around":
            sides.append([i.following[0].text if i.following else "" for i in inputs])
        wanted = [i.text for i in inputs] + [t for side in sides for t in side if t]
        unique = list(dict.fromkeys(wanted))
        vectors = encoder.encode(unique)
        self.encoded += len(unique)
        row = {text: j for j, text in enumerate(unique)}
        own = vectors[[row[i.text] for i in inputs]]
        blocks = [own]
        for side in sides:
            block = np.zeros_like(own)
            for j, t in enumerate(side):
                if t:
                    block[j] = vectors[row[t]]
            blocks.append(block)
        return np.hstack(blocks) if sides else own

    def predict_proba(self, inputs: list[ModelInput]) -> np.ndarray:
        """Probabilities per technique. Embed models encode each distinct text once
        (`encoded` counts them); fine-tuned models encode every input."""
        if self.card.backend == "zeroshot":
            return np.asarray(self.classifier.predict_proba(self.features(inputs)))
        if self.card.backend == "embed":
            texts = [i.text for i in inputs]  # for a lexical head, when the model has one
            return np.asarray(self.classifier.predict_proba(self.features(inputs), texts))
        self.encoded += len(inputs)
        if self.card.multi_label:
            return np.asarray(self.classifier.predict_proba(inputs))
        logits = np.asarray(self.classifier.predict_logits(inputs))
        return softmax(logits, self.card.temperature)


def load_predictor(
    folder: Path, checksum: str | None = None, device: str = "auto", runtime: str = "auto"
) -> Predictor:
    """Load a saved model, refusing one whose files no longer match the registered checksum.
    `runtime` is the encoder's (auto: the one the model was trained on)."""
    if not (folder / "model.json").is_file():
        raise ModelError(f"{folder}: no saved model here (model.json missing)")
    if checksum and checksum_folder(folder) != checksum:
        raise ModelError(f"{folder}: files do not match the registered checksum; not loading")
    card = ModelCard(**json.loads((folder / "model.json").read_text()))
    tuned = None
    if card.tuned_encoder:
        from learning.tuned import ENCODERS, TunedEncoder

        where = folder.parent / ENCODERS / card.tuned_encoder
        if not where.is_dir() or checksum_folder(where) != card.tuned_checksum:
            raise ModelError(
                f"{folder}: its refreshed encoder {where} is missing or changed; not loading"
            )
        tuned = TunedEncoder(card.tuned_encoder, where, card.tuned_checksum, 0, "")
    if runtime == "auto" and card.backend == "embed":
        from learning.fidelity import predict_runtime

        runtime = predict_runtime(runtime, device, card.runtime, None)
    if card.backend == "embed":
        from learning.classifiers import EmbedClassifier

        classifier: Any = EmbedClassifier.load(folder / "classifier")
    elif card.backend == "zeroshot":
        from learning.codebook_model import CodebookClassifier

        classifier = CodebookClassifier.load(folder / "classifier")
    else:
        from learning.ensemble import load_finetune

        classifier = load_finetune(folder / "classifier", device=device)
    predictor = Predictor(card, classifier, device, runtime)
    if tuned is not None:
        predictor.tuned = tuned.encoder(device, card.max_length)
    return predictor
