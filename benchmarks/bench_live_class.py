"""A new class live, through the web console (issue 24): an admin adds the label "genshin",
posts random Genshin images and corrects them to genshin; then the rest of the Genshin folder
and the doom/AC test memes are posted. Measured after 0, 5 and 20 corrections: the share of
the other Genshin images called genshin (the correction memory, no retrain) and the doom/AC
test memes that keep a game label.

The real console (bot/console) runs in this process on a free loopback port, on the real core,
SQLite in a temp folder and a copy of the real model; every step is an HTTP call an admin's
page makes (sign in, POST /api/labels, /api/upload, /api/posts/N/label). Repost notes are
switched off first (POST /api/reposts), as an admin may: the doom/AC memes are posted once per
step, and a repost is not what is measured.

    .venv/bin/python benchmarks/bench_live_class.py [--models models] [--steps 0,5,20]

--source SOURCE --label LABEL: another kind, taught as another label, e.g. `--source
programming-memes --label other` with a model trained without them (`memebot train
--holdout-source programming-memes`): a kind of "other" the model never saw, corrected to
"other" by the admin (the manifest's source names; "genshin" is the genshin folder).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import logging
import random
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.console.runner import start_console  # noqa: E402
from bot.core.runtime import open_runtime  # noqa: E402
from inference.metadata import ACTIVE_POINTER, resolve_model_dir  # noqa: E402
from inference.sentence import ENCODERS  # noqa: E402
from model_training.data import scan_folder  # noqa: E402
from tests.support.console import ADMIN_TOKEN, Client, console_settings  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
MEMES = SHARED / "memes"
GENSHIN = SHARED / "genshin"
NEW_LABEL = "genshin"
GAMES = ("doom", "animal_crossing")
PER_REQUEST = 20  # the console takes at most 20 files an upload (MAX_FILES_PER_REQUEST)
CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                 ".webp": "image/webp"}


@dataclass(frozen=True)
class Step:
    corrections: int
    new_called: float  # share of the scored images of the kind given its label
    new_n: int
    games_kept: float  # share of the doom/AC test memes still labelled doom or AC
    games_n: int
    # of the images taught so far, how many the bot already called the label when posted, and
    # how many of those the correction memory called so (the admin's label was a confirmation)
    taught_right: int = 0
    taught_remembered: int = 0


def kind_split(source: str, taught: int, seed: int = 0, scored_n: int = 160
               ) -> tuple[list[Path], list[Path]]:
    """(scored, teach) of one kind: for genshin the split of bench_retrain.py (f), so the
    figures compare; another source of the manifest keeps `taught` images to teach."""
    if source == NEW_LABEL:
        files = sorted(p for p in GENSHIN.iterdir() if p.suffix.lower() in CONTENT_TYPES)
    else:
        with (MEMES / "MANIFEST.csv").open(newline="") as f:
            files = sorted(MEMES / row["path"] for row in csv.DictReader(f)
                           if row["source"] == source)
        if not files:
            raise SystemExit(f"no image of source {source!r} in {MEMES / 'MANIFEST.csv'}")
    scored_n = min(scored_n, len(files) - taught)
    pool = random.Random(seed).sample(files, len(files))
    return pool[:scored_n], pool[scored_n:]


def game_test_memes(active: Path) -> list[Path]:
    test = set(json.loads((active / "splits.json").read_text())["test"])
    return [s.path for s in scan_folder(MEMES, progress=False).samples
            if s.sha256 in test and s.label in GAMES]


def private_models(models: Path, into: Path) -> Path:
    """A copy of the active version (and the shared encoders) the console may retrain into."""
    active = resolve_model_dir(models)
    into.mkdir(parents=True)
    shutil.copytree(active, into / active.name)
    if (models / ENCODERS).is_dir():
        shutil.copytree(models / ENCODERS, into / ENCODERS)
    (into / ACTIVE_POINTER).write_text(active.name + "\n")
    return into


async def post_all(admin: Client, paths: list[Path]) -> list[dict[str, Any]]:
    """Upload through /api/upload, 20 files a request; the items the console answered."""
    items: list[dict[str, Any]] = []
    for start in range(0, len(paths), PER_REQUEST):
        chunk = paths[start : start + PER_REQUEST]
        status, body = await admin.upload(*(
            (p.name, p.read_bytes(), CONTENT_TYPES.get(p.suffix.lower(), "image/jpeg"))
            for p in chunk))
        if status != 200:
            raise RuntimeError(f"upload answered {status}: {body}")
        for path, result in zip(chunk, body["results"], strict=True):
            if not result["ok"]:
                raise RuntimeError(f"{path.name} was not labelled: {result}")
            items.append(result["item"])
    return items


async def checked(admin: Client, path: str, body: Any) -> Any:
    status, answer = await admin.post_json(path, body)
    if status != 200:
        raise RuntimeError(f"POST {path} answered {status}: {answer}")
    return answer


async def live(models: Path, steps: list[int], seed: int, source: str = NEW_LABEL,
               label: str = NEW_LABEL) -> list[Step]:
    active = resolve_model_dir(models)
    scored, teach = kind_split(source, max(steps), seed)
    games = game_test_memes(active)
    rows: list[Step] = []
    with tempfile.TemporaryDirectory(prefix="bench-live-class-") as tmp:
        settings = console_settings(Path(tmp), private_models(models, Path(tmp) / "models"))
        async with open_runtime(settings, file_origins=()) as runtime:
            server = await start_console(runtime)
            try:
                jar = aiohttp.CookieJar(unsafe=True)  # cookies of 127.0.0.1
                async with aiohttp.ClientSession(cookie_jar=jar) as session:
                    admin = await Client(session, server.url).open()
                    status, body = await admin.post_json("api/login", {"token": ADMIN_TOKEN})
                    if status != 200:
                        raise RuntimeError(f"sign-in answered {status}: {body}")
                    await checked(admin, "api/reposts", {"mode": "off"})
                    if label not in (*GAMES, "other"):
                        await checked(admin, "api/labels", {"name": label})
                    corrected = right = remembered = 0
                    for k in steps:
                        for item in await post_all(admin, teach[corrected:k]):
                            right += item["label"] == label
                            remembered += item["label"] == label and item["remembered"]
                            await checked(admin, f"api/posts/{item['post_id']}/label",
                                          {"label": label})
                        corrected = max(corrected, k)
                        new = await post_all(admin, scored)
                        old = await post_all(admin, games)
                        rows.append(Step(
                            k, sum(i["label"] == label for i in new) / len(new), len(new),
                            sum(i["label"] in GAMES for i in old) / len(old), len(old),
                            right, remembered))
                        print(f"  {k} corrections: {rows[-1]}", flush=True)
            finally:
                await server.close()
    return rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    ap.add_argument("--steps", default="0,5,20")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--source", default=NEW_LABEL, help="the kind taught (default: genshin)")
    ap.add_argument("--label", default=NEW_LABEL, help="the label the admin gives it")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    steps = sorted(int(s) for s in args.steps.split(","))
    rows = asyncio.run(live(args.models, steps, args.seed, args.source, args.label))
    print(f"\n{args.source} taught as {args.label!r} live through the console "
          f"({resolve_model_dir(args.models).name}, no retrain)")
    print(f"| corrections (console) | other {args.source} images called {args.label} | "
          "doom/AC test memes kept | taught images already right (by the memory) |\n"
          "|---|---|---|---|")
    for r in rows:
        print(f"| {r.corrections} | {100 * r.new_called:.1f}% (n={r.new_n}) | "
              f"{100 * r.games_kept:.1f}% (n={r.games_n}) | "
              f"{r.taught_right} ({r.taught_remembered}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
