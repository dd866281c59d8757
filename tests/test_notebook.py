"""The walkthrough notebook runs top to bottom (nbclient, the venv's python3 kernel) on a small
generated dataset through its parameters, so it cannot rot; it is committed without outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.paths import ROOT

NOTEBOOK = ROOT / "notebooks" / "doom_vs_animal_crossing.ipynb"


def test_notebook_is_committed_without_outputs() -> None:
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(not c["outputs"] and c["execution_count"] is None for c in code)
    assert any("parameters" in c["metadata"].get("tags", []) for c in code)


def test_notebook_runs_on_generated_memes(
    report_models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nbclient = pytest.importorskip("nbclient")
    import nbformat

    data = report_models.parent / "data"
    monkeypatch.setenv("MEMEBOT_NOTEBOOK_DATA", str(data))
    monkeypatch.setenv("MEMEBOT_NOTEBOOK_MODELS", str(report_models))
    monkeypatch.setenv("MEMEBOT_NOTEBOOK_CACHE", str(report_models.parent / "cache"))
    monkeypatch.setenv("MEMEBOT_NOTEBOOK_PERMUTATIONS", "3")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=900,
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    text = "\n".join(o.get("text", "") for o in outputs)
    html = "\n".join(o.get("data", {}).get("text/html", "") for o in outputs)
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors
    for answer in ("Answer 1:", "Answer 2:", "Answer 3:", "Answer 4:"):
        assert answer in text, answer
    for section in ("metrics", "mistakes", "lucky", "neither", "new_class"):
        assert f'<section id="{section}">' in html, section
    assert html.count("data:image/png;base64,") >= 6
