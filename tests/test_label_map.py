"""Import label mapping: `--label-map FILE` (CSV or TOML) and techniques matched by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from store import InputError, Repository
from store.io import ColumnMap, import_file
from tui.cli import main

COLUMNS = ColumnMap(text="text", conversation="talk", order="n", label="code", annotator="lab")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def coded(tmp_path: Path, *codes: str) -> Path:
    rows = "".join(f"t,{i},message {i},{code}\n" for i, code in enumerate(codes))
    return write(tmp_path / "coded.csv", "talk,n,text,code\n" + rows)


def gold(repo: Repository) -> list[tuple[str, ...] | None]:
    found = repo.gold()
    return [found[m.id].labels if m.id in found else None for m in repo.iter_messages()]


def test_labels_match_technique_names_in_any_case(annomi_repo: Repository, tmp_path: Path) -> None:
    """ "Question" is the technique named Question; "THERAPIST INPUT" its name in capitals;
    keys still work as they are."""
    source = coded(tmp_path, "Question", "THERAPIST INPUT", "reflection", "Other")
    report = import_file(annomi_repo, source, COLUMNS)
    assert report.labels_added == 4
    assert gold(annomi_repo) == [("question",), ("therapist_input",), ("reflection",), ("other",)]


@pytest.mark.parametrize("kind", ["csv", "toml"])
def test_label_map_file_maps_the_files_names_to_keys(
    annomi_repo: Repository, tmp_path: Path, kind: str
) -> None:
    source = coded(tmp_path, "Providing Suggestions", "Simple Reflection", "Question")
    if kind == "csv":
        mapping = write(
            tmp_path / "map.csv",
            "label,technique\nProviding Suggestions,therapist_input\n"
            "Simple Reflection,Reflection\n",
        )
    else:
        mapping = write(
            tmp_path / "map.toml",
            '[labels]\n"Providing Suggestions" = "therapist_input"\n'
            '"Simple Reflection" = "reflection"\n',
        )
    import_file(annomi_repo, source, ColumnMap(**{**COLUMNS.__dict__, "label_map": mapping}))
    assert gold(annomi_repo) == [("therapist_input",), ("reflection",), ("question",)]


def test_an_unmapped_label_fails_with_file_line_and_column(
    annomi_repo: Repository, tmp_path: Path
) -> None:
    source = coded(tmp_path, "Question", "Providing Suggestions")
    with pytest.raises(InputError) as caught:
        import_file(annomi_repo, source, COLUMNS)
    assert str(caught.value).startswith(
        f"{source}, line 3, column 'code': unknown technique 'Providing Suggestions'"
    )
    assert "--label-map" in str(caught.value)
    assert list(annomi_repo.iter_messages()) == []  # nothing partially written


def test_a_bad_label_map_names_its_file_and_line(annomi_repo: Repository, tmp_path: Path) -> None:
    source = coded(tmp_path, "Question")
    mapping = write(tmp_path / "map.csv", "Question,question\nAdvice,advising\n")
    with pytest.raises(InputError, match=r"map.csv, line 2: 'advising' \(for 'Advice'\) is not"):
        import_file(annomi_repo, source, ColumnMap(**{**COLUMNS.__dict__, "label_map": mapping}))
    mapping = write(tmp_path / "map.toml", '"Advice" = 3\n')
    with pytest.raises(InputError, match="must map to a technique key"):
        import_file(annomi_repo, source, ColumnMap(**{**COLUMNS.__dict__, "label_map": mapping}))


def test_import_command_takes_a_label_map(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = ["-w", str(tmp_path / "w")]
    assert main(["init", str(tmp_path / "w"), "--codebook", "annomi"]) == 0
    source = coded(tmp_path, "Providing Suggestions", "question")
    mapping = write(tmp_path / "map.csv", "Providing Suggestions,therapist_input\n")
    args = ["import", str(source), "--conversation", "talk", "--order", "n", "--label", "code"]
    capsys.readouterr()
    code = main([*ws, *args, "--annotator", "lab"])
    err = capsys.readouterr().err
    assert code == 1 and "line 2, column 'code': unknown technique 'Providing Suggestions'" in err
    assert main([*ws, *args, "--annotator", "lab", "--label-map", str(mapping)]) == 0
    assert "2 labels" in capsys.readouterr().out
    assert main([*ws, "import", str(source), "--label-map", str(mapping)]) == 2
