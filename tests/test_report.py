"""The model report (issue 14): built from generated memes by the real pipeline and retrain, every
section, figure and embedded image present; opened in Debian's Chromium with the network cut, it
makes no request and every image decodes."""

from __future__ import annotations

import base64
import io
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")

from PIL import Image

from bot.cli import main
from inference.metadata import REPORT_FILE, ModelMeta, resolve_model_dir
from model_training.report.build import build_report
from model_training.report.context import ReportOptions

SECTIONS = ("metrics", "mistakes", "lucky", "neither", "new_class", "cost")
FIGURES = ("confusion_matrix", "training_curves", "reliability", "permutation_null",
           "ood_histogram", "ood_per_source", "learning_curve_genshin")
DATA_URI = re.compile(r'src="(data:image/(png|jpeg);base64,([A-Za-z0-9+/=]+))"')


@pytest.fixture(scope="module")
def report(report_models: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The retrained version's report, a few permutations (the default is 200)."""
    folder = resolve_model_dir(report_models)
    cache = report_models.parent / "cache"
    result = build_report(folder, cache_dir=cache, options=ReportOptions(permutations=5))
    assert result.path == folder / REPORT_FILE
    return result.path, result.path.read_text(encoding="utf-8")


def test_every_section_and_figure_is_there(report: tuple[Path, str]) -> None:
    _, html = report
    for sec in SECTIONS:
        assert f'<section id="{sec}">' in html, sec
    for name in FIGURES:
        assert f'data-figure="{name}"' in html, name
    assert "Wilson 95% interval" in html and "precision" in html and "ECE before" in html
    assert "image alone" in html and "image + words (served)" in html
    assert "refitted 5 times on shuffled labels" in html and "Binomial test" in html
    for baseline in ("majority class", "colour histogram", "size, aspect, brightness",
                     "words alone"):
        assert baseline in html, baseline
    assert "AUROC" in html and "FPR at 95% TPR" in html
    assert "Added at a retrain of" in html and "sign test" in html


def test_mistakes_gallery_has_memes_heat_maps_and_causes(report: tuple[Path, str]) -> None:
    _, html = report
    gallery = html.split('data-gallery="worst_mistakes"', 1)[1].split("</section>", 1)[0]
    cards = gallery.count('class="card"')
    assert cards >= 1  # a third of the doom memes are drawn as Animal Crossing
    assert gallery.count('alt="Grad-CAM heat map"') == cards
    assert gallery.count("true: doom") >= 1 and "words read:" in gallery and "causes:" in gallery
    assert "error rate" in html and "low resolution" in html  # generated memes are 96 px


def test_every_image_is_embedded_and_decodes(report: tuple[Path, str]) -> None:
    _, html = report
    assert not re.search(r'src="(?!data:)', html) and "<script" not in html and "<link" not in html
    found = DATA_URI.findall(html)
    assert len(found) >= len(FIGURES) + 2
    for _, kind, payload in found:
        img = Image.open(io.BytesIO(base64.b64decode(payload)))
        assert img.format == ("PNG" if kind == "png" else "JPEG") and img.size[0] > 10


def test_cli_reports_a_version_without_a_new_class(report_models: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    base = next(p for p in report_models.iterdir() if (p / "meta.json").is_file()
                and not ModelMeta.load(p).training.get("retrained_from"))
    code = main(["report", "--model", base.name, "--model-dir", str(report_models),
                 "--out", str(tmp_path), "--cache-dir", str(report_models.parent / "cache"),
                 "--permutations", "2", "--no-gradcam"])
    assert code == 0
    assert "report:" in capsys.readouterr().out
    html = (tmp_path / REPORT_FILE).read_text(encoding="utf-8")
    assert "No class was added in this version" in html
    assert "Grad-CAM heat maps were left out" in html and "refitted 2 times" in html


def test_cli_says_plainly_when_the_dataset_is_gone(report_models: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "models"
    base = resolve_model_dir(report_models)
    shutil.copytree(base, copy / base.name)
    code = main(["report", "--model", str(copy / base.name), "--data", str(tmp_path / "gone"),
                 "--cache-dir", str(tmp_path / "cache")])
    assert code != 0
    assert "does not exist" in capsys.readouterr().err


CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(),
                    reason="Debian's chromium is not installed at /usr/bin/chromium")
async def test_report_opens_offline_without_a_single_request(report: tuple[Path, str]) -> None:
    async_api = pytest.importorskip("playwright.async_api")
    from tests.support.browser import ARGS

    path, _ = report
    async with async_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS,
                                          timeout=30_000)
        try:
            context = await browser.new_context(offline=True)
            requests: list[str] = []

            async def only_the_file(route: Any) -> None:  # anything else on the network is cut
                if route.request.url == path.as_uri():
                    await route.continue_()
                else:
                    await route.abort()

            await context.route("**/*", only_the_file)
            page = await context.new_page()
            page.on("request", lambda r: requests.append(r.url))
            await page.goto(path.as_uri())
            await page.wait_for_load_state("load")
            broken = await page.evaluate(
                "() => [...document.images]"
                ".filter(i => !i.complete || i.naturalWidth === 0).length")
            shown = await page.evaluate("() => document.images.length")
        finally:
            await browser.close()
    assert shown >= len(FIGURES) and broken == 0
    assert [u for u in requests if u != path.as_uri() and not u.startswith("data:")] == []
    assert requests and requests[0] == path.as_uri()


async def test_console_serves_the_report_and_model_points_to_it(
    report: tuple[Path, str], report_models: Path, tmp_path: Path
) -> None:
    import aiohttp

    from bot.console.runner import start_console
    from bot.core.messages import Actor, ChatRef, Command
    from bot.core.runtime import open_runtime
    from tests.support.console import console_settings

    models = tmp_path / "models"
    shutil.copytree(report_models, models)
    async with open_runtime(console_settings(tmp_path, models), file_origins=()) as rt:
        version = rt.models.current.version
        result = await rt.service.handle_command(
            Command(ChatRef("console", "c"), Actor("console", "u", "u"), "model"), None)
        # People read it on the console's Models page; a server path means nothing in a chat.
        assert result is not None and "Models page" in result.reply.text
        assert str(models) not in result.reply.text
        server = await start_console(rt)
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(server.url + "api/models") as r:
                    listed = {v["version"]: v["reports"] for v in (await r.json())["versions"]}
                assert REPORT_FILE in listed[version]
                async with http.get(server.url + f"api/models/{version}/files/{REPORT_FILE}") as r:
                    assert r.status == 200 and r.headers["Content-Type"].startswith("text/html")
                    assert "sandbox" in r.headers["Content-Security-Policy"]
                    assert 'section id="lucky"' in await r.text()
        finally:
            await server.close()
