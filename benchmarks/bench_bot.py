"""The Telegram bot end to end against the Bot API stand-in: update-to-reply latency for
single memes and a burst, sustained memes/s, the bot process's peak RSS and start time; and
(--retrain) p95 reply latency while a retrain runs vs idle (issue 6 target: <= 2x).

    .venv/bin/python benchmarks/bench_bot.py [--model DIR] [--burst 200] [--sustained 400]
    .venv/bin/python benchmarks/bench_bot.py --platform discord|both
    .venv/bin/python benchmarks/bench_bot.py --retrain [--dataset ../shared/data/memes]

--retrain: `memebot run` with its default supervised trainer (`memebot trainer`, nice 10),
on a private copy of the active model and var/cache (the base embeddings, so the job is the
fast path on cached embeddings); idle singles, then an admin's /retrain and singles until
the admin report arrives, side by side.

--platform discord: the same against the Discord stand-in (gateway websocket and REST);
both: Telegram, then Discord, each its own bot process, tables side by side.

The bot runs as a real `memebot run` process (its own Python, SQLite in a temp folder); the
stand-in runs here. Latency is from the moment the update is available (Telegram: queued for
getUpdates; Discord: MESSAGE_CREATE sent on the gateway) until the stand-in receives the reply.
Images are the shared real memes when present (../shared/data/memes), else generated ones.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.core.service import PAYLOAD_PATTERN  # noqa: E402
from config.settings import Settings  # noqa: E402
from inference.errors import ModelError  # noqa: E402
from inference.metadata import resolve_model_dir  # noqa: E402
from tests.support import discord_standin as dc  # noqa: E402
from tests.support.imagegen import encode, make_image  # noqa: E402
from tests.support.telegram_standin import TOKEN, TelegramStandIn, group, standin, user  # noqa: E402

SHARED_MEMES = ROOT.parent / "shared" / "data" / "memes"
CHAT, SENDER = group(), user(7, "Poster")
DISCORD_POSTER = dc.Person(7, "Poster")
ADMIN = user(9, "Admin")  # a configured super-admin (--retrain)
ADMIN_CHAT = group(-4242, "Admins")
RETRAIN_RATIO_TARGET = 2.0
RSS_TARGET_MB, START_TARGET_S = 300, 2.0


def meme_images(n: int) -> list[bytes]:
    files = sorted(
        p for p in SHARED_MEMES.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")
    ) if SHARED_MEMES.is_dir() else []
    if files:
        step = max(1, len(files) // n)
        return [p.read_bytes() for p in itertools.islice(itertools.cycle(files[::step]), n)]
    labels = ("doom", "animal_crossing", "other")
    return [encode(make_image(labels[i % 3], i, (500, 500)), "JPEG", quality=85)
            for i in range(n)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def rss_mb(pid: int, field: str = "VmHWM:") -> float:
    """VmHWM is the kernel's high-water mark of resident memory, VmRSS the current size."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return float("nan")


class Driver:
    """One platform's stand-in as the benchmark uses it: post a meme, see its replies."""

    name: str
    env: dict[str, str]  # what points `memebot run` at the stand-in

    def ready(self) -> bool:
        raise NotImplementedError

    async def post(self, data: bytes) -> int:
        raise NotImplementedError

    def replies_to(self, message_id: int) -> list[Any]:
        raise NotImplementedError

    def payloads(self, reply: Any) -> list[str]:
        raise NotImplementedError

    def posted_at(self, message_id: int) -> float:
        raise NotImplementedError

    async def wait_for(self, predicate: Callable[[], Any], timeout: float) -> Any:
        raise NotImplementedError

    def answer(self, message_id: int) -> Any | None:
        """The meme's answer: the label reply (label buttons) or a reply without buttons (an
        unreadable image); a repeated image also gets a repost note (repost buttons), which is
        not what is timed."""
        for reply in self.replies_to(message_id):
            payloads = self.payloads(reply)
            if not payloads or any(re.fullmatch(PAYLOAD_PATTERN, p) for p in payloads):
                return reply
        return None

    def latencies(self, message_ids: list[int]) -> list[float]:
        out = []
        for m in message_ids:
            reply = self.answer(m)
            assert reply is not None, f"message {m} has no label reply"
            out.append((reply.sent_at - self.posted_at(m)) * 1000)
        return out


@dataclass
class TelegramDriver(Driver):
    server: TelegramStandIn
    name: str = "telegram"

    @property
    def env(self) -> dict[str, str]:  # type: ignore[override]
        return {"MEMEBOT_TELEGRAM_TOKEN": TOKEN,
                "MEMEBOT_TELEGRAM_API_URL": self.server.api_url,
                "MEMEBOT_TELEGRAM_FILE_URL": self.server.file_url}

    def ready(self) -> bool:
        return self.server.get_updates_calls > 0

    async def post(self, data: bytes) -> int:
        return self.server.post_photo(CHAT, SENDER, data)

    def replies_to(self, message_id: int) -> list[Any]:
        return self.server.replies_to(message_id)

    def payloads(self, reply: Any) -> list[str]:
        return [b["callback_data"] for b in reply.buttons]

    def posted_at(self, message_id: int) -> float:
        return self.server.update_times[message_id]

    async def wait_for(self, predicate: Callable[[], Any], timeout: float) -> Any:
        return await self.server.wait_for(predicate, timeout)


@dataclass
class DiscordDriver(Driver):
    server: dc.DiscordStandIn
    name: str = "discord"

    @property
    def env(self) -> dict[str, str]:  # type: ignore[override]
        return {"MEMEBOT_DISCORD_TOKEN": dc.TOKEN,
                "MEMEBOT_DISCORD_API_URL": self.server.api_url,
                "MEMEBOT_DISCORD_GATEWAY_URL": self.server.gateway_url,
                "MEMEBOT_DISCORD_FILE_ORIGINS": self.server.base,
                # Discord's 2 s wait for more guilds before "ready" is not part of start-up
                # here: memes are answered from the first GUILD_CREATE on.
                "MEMEBOT_DISCORD_GUILD_READY_TIMEOUT_S": "0.1"}

    def ready(self) -> bool:
        return self.server.connected()

    async def post(self, data: bytes) -> int:
        return await self.server.post_image(DISCORD_POSTER, data)

    def replies_to(self, message_id: int) -> list[Any]:
        return self.server.replies_to(message_id)

    def payloads(self, reply: Any) -> list[str]:
        return [b["custom_id"] for b in reply.buttons]

    def posted_at(self, message_id: int) -> float:
        return self.server.event_times[message_id]

    async def wait_for(self, predicate: Callable[[], Any], timeout: float) -> Any:
        return await self.server.wait_for(predicate, timeout)


@asynccontextmanager
async def telegram_driver() -> AsyncIterator[Driver]:
    async with standin() as server:
        yield TelegramDriver(server)


@asynccontextmanager
async def discord_driver() -> AsyncIterator[Driver]:
    async with dc.standin() as server:
        yield DiscordDriver(server)


DRIVERS: dict[str, Callable[[], AbstractAsyncContextManager[Driver]]] = {
    "telegram": telegram_driver, "discord": discord_driver,
}


async def run_singles(driver: Driver, images: list[bytes]) -> list[float]:
    ids = []
    for data in images:
        m = await driver.post(data)
        await driver.wait_for(lambda m=m: driver.answer(m), timeout=60)
        ids.append(m)
    return driver.latencies(ids)


async def run_burst(driver: Driver, images: list[bytes]) -> tuple[list[float], float]:
    start = time.perf_counter()
    ids = [await driver.post(data) for data in images]
    await driver.wait_for(lambda: all(driver.answer(m) for m in ids), timeout=600)
    return driver.latencies(ids), len(ids) / (time.perf_counter() - start)


async def run_sustained(driver: Driver, images: list[bytes], in_flight: int) -> float:
    """Keep `in_flight` memes outstanding, like a busy group; memes answered per second."""
    pending: list[int] = []
    start = time.perf_counter()
    for data in images:
        if len(pending) >= in_flight:
            await driver.wait_for(lambda pending=pending: any(driver.answer(m) for m in pending),
                                  timeout=60)
            pending = [m for m in pending if not driver.answer(m)]
        pending.append(await driver.post(data))
    await driver.wait_for(lambda: all(driver.answer(m) for m in pending), timeout=600)
    return len(images) / (time.perf_counter() - start)


@asynccontextmanager
async def bot_process(
    driver: Driver, tmp: str, model: Path, env_extra: dict[str, str]
) -> AsyncIterator[tuple[asyncio.subprocess.Process, float, Path]]:
    """A real `memebot run` serving `driver`'s stand-in: yields (process, start seconds, log
    path); stops it with SIGTERM (exit code checked) on the way out."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MEMEBOT_")},
        "PYTHONPATH": str(ROOT),
        **driver.env,
        "MEMEBOT_DATA_DIR": str(Path(tmp) / "data"),
        "MEMEBOT_MODEL_DIR": str(model),
        **env_extra,
    }
    log_path = Path(tmp) / "bot.log"  # a file: a full pipe would stall the bot
    log_file = log_path.open("wb")
    spawned = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "run", cwd=tmp, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=log_file,
    )
    try:
        exited = asyncio.ensure_future(proc.wait())
        deadline = time.monotonic() + 120
        while not (driver.ready() or exited.done()):
            if time.monotonic() > deadline:
                sys.exit(f"the bot did not connect in 120 s:\n{log_path.read_text()[-3000:]}")
            await asyncio.sleep(0.005)
        if exited.done():
            sys.exit(f"the bot did not start:\n{log_path.read_text()[-3000:]}")
        yield proc, time.perf_counter() - spawned, log_path
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        log_file.close()
    if proc.returncode != 0:
        sys.exit(f"bot exited with {proc.returncode}:\n{log_path.read_text()[-2000:]}")


@dataclass(frozen=True)
class Figures:
    single: list[float]
    burst: list[float]
    burst_rate: float
    sustained: float
    idle_rss: float
    peak_rss: float
    start_s: float


async def measure(platform: str, model: Path, images: list[bytes], n_single: int,
                  n_burst: int, n_sustained: int, extra_env: dict[str, str]) -> Figures:
    """One `memebot run` for `platform` against its stand-in: singles, a burst, sustained."""
    with tempfile.TemporaryDirectory() as tmp:
        async with DRIVERS[platform]() as driver:
            env = {"MEMEBOT_QUEUE_SIZE": str(max(256, n_burst + 16)),
                   "MEMEBOT_TRAINER": "off", **extra_env}
            async with bot_process(driver, tmp, model, env) as (proc, start_s, _):
                await asyncio.sleep(0.5)  # let start-up settle before reading the idle size
                idle_rss = rss_mb(proc.pid, "VmRSS:")
                single = await run_singles(driver, images[:n_single])
                burst, burst_rate = await run_burst(driver, images[:n_burst])
                sustained = await run_sustained(driver, images[:n_sustained], in_flight=32)
                peak = rss_mb(proc.pid)
    return Figures(single, burst, burst_rate, sustained, idle_rss, peak, start_s)


async def bench(runs: list[tuple[str, str, Path]], n_single: int, n_burst: int,
                n_sustained: int, extra_env: dict[str, str]) -> None:
    """One bot process per run (column name, platform, model folder), one after another."""
    images = meme_images(max(n_single, n_burst, n_sustained))
    results = {name: await measure(platform, model, images, n_single, n_burst, n_sustained,
                                   extra_env)
               for name, platform, model in runs}
    source = "shared real memes" if SHARED_MEMES.is_dir() else "generated 500x500 JPEGs"
    models = sorted({str(model) for _, _, model in runs})
    print(f"model: {', '.join(models)}   images: {source}   cores: {os.cpu_count()}   "
          f"load: {os.getloadavg()[0]:.1f}   {' '.join(f'{k}={v}' for k, v in extra_env.items())}")
    measures: list[tuple[str, Callable[[Figures], float], str, str]] = [
        ("single meme latency p50", lambda f: statistics.median(f.single), "ms", ""),
        ("single meme latency p95", lambda f: percentile(f.single, 0.95), "ms", ""),
        (f"burst of {n_burst}: latency p50", lambda f: statistics.median(f.burst), "ms", ""),
        (f"burst of {n_burst}: latency p95", lambda f: percentile(f.burst, 0.95), "ms", ""),
        (f"burst of {n_burst}: memes/s", lambda f: f.burst_rate, "", ""),
        ("sustained memes/s (32 in flight)", lambda f: f.sustained, "", ""),
        ("bot RSS idle after start", lambda f: f.idle_rss, "MB", ""),
        ("bot peak RSS", lambda f: f.peak_rss, "MB", f"<= {RSS_TARGET_MB} MB"),
        ("bot start (spawn -> connected)", lambda f: f.start_s, "s", f"<= {START_TARGET_S} s"),
    ]
    names = list(results)
    # Two runs side by side (--vs): the ratio of the second to the first.
    ratio = len(names) == 2
    width = max(len(m[0]) for m in measures)
    cell = max(10, *(len(n) for n in names))
    print(f"{'measure':<{width}}  " + "  ".join(f"{n:>{cell}}" for n in names)
          + ("   ratio" if ratio else "") + "  target")
    for name, value, unit, target in measures:
        values = [value(results[n]) for n in names]
        digits = 2 if unit == "s" else (0 if unit else 1)
        cells = "  ".join(f"{f'{v:.{digits}f} {unit}'.strip():>{cell}}" for v in values)
        extra = f"  {values[1] / values[0]:6.2f}" if ratio and values[0] else ""
        print(f"{name:<{width}}  {cells}{extra}  {target}")
    for n, f in results.items():
        missed = [what for what, bad in (("RSS", f.peak_rss > RSS_TARGET_MB),
                                         ("start", f.start_s > START_TARGET_S)) if bad]
        print(f"{n}: targets " + (f"MISSED ({', '.join(missed)})" if missed else "ok"))


def private_model_copy(model: Path, dest: Path) -> Path:
    """The active version alone in a fresh models folder: the retrain writes (and may
    promote) its new version there, never into the real models/."""
    active = resolve_model_dir(model)
    dest.mkdir(parents=True)
    shutil.copytree(active, dest / active.name)
    (dest / "ACTIVE").write_text(active.name + "\n")
    return dest


async def singles_until(server: TelegramStandIn, images: list[bytes], done: Any,
                        gap_s: float, limit: int) -> list[float]:
    """One meme at a time (a reply before the next), `gap_s` apart, until `done()`."""
    ids = []
    for data in itertools.islice(itertools.cycle(images), limit):
        if done():
            break
        m = server.post_photo(CHAT, SENDER, data)
        await server.wait_for(lambda m=m: TelegramDriver(server).answer(m), timeout=120)
        ids.append(m)
        await asyncio.sleep(gap_s)
    return TelegramDriver(server).latencies(ids)


def labelled_memes(n: int) -> list[tuple[str, bytes]]:
    """(folder label, bytes) from the shared memes, round-robin over the classes."""
    folders = (sorted(p for p in SHARED_MEMES.iterdir() if p.is_dir())
               if SHARED_MEMES.is_dir() else [])
    files = [sorted(q for q in f.iterdir() if q.suffix.lower() in (".jpg", ".jpeg", ".png"))[::-1]
             for f in folders]
    out = []
    for i in range(n):
        group_files = files[i % len(files)] if files else []
        if group_files:
            path = group_files[(i // len(files)) % len(group_files)]
            out.append((folders[i % len(files)].name, path.read_bytes()))
    return out


async def correct(server: TelegramStandIn, memes: list[tuple[int, str]]) -> int:
    """An admin presses the right label's button under each reply (corrections to learn)."""
    queries = []
    for message_id, label in memes:
        reply = TelegramDriver(server).answer(message_id)
        if reply is None:  # e.g. an unreadable image: nothing to correct
            continue
        data = next((b["callback_data"] for b in reply.buttons
                     if b["callback_data"].endswith(":" + label)), None)
        if data is not None:
            queries.append(server.press(ADMIN, reply, data))
    await server.wait_for(
        lambda: {a.callback_query_id for a in server.answers} >= set(queries), 120
    )
    return len(queries)


async def bench_retrain(model: Path, dataset: Path, n_single: int, gap_s: float,
                        n_corrections: int, extra_env: dict[str, str], kind: str = "fast") -> None:
    labelled = labelled_memes(max(n_single, n_corrections))
    images = [data for _, data in labelled] or meme_images(max(n_single, 60))
    cache = ROOT / "var" / "cache"
    with tempfile.TemporaryDirectory() as tmp:
        models = private_model_copy(model, Path(tmp) / "models")
        if cache.is_dir():  # the base embeddings: the job is the fast path, as in production
            shutil.copytree(cache, Path(tmp) / "data" / "cache")
        env = {
            "MEMEBOT_DATASET_DIR": str(dataset.resolve()),
            "MEMEBOT_SUPER_ADMINS": f"telegram:{ADMIN['id']}",
            "MEMEBOT_ADMIN_CHAT_ID": str(ADMIN_CHAT["id"]),
            "MEMEBOT_JOB_CHECK_INTERVAL_S": "1",
            "MEMEBOT_TRAINER_POLL_S": "1",
            **extra_env,
        }
        async with (
            standin() as server,
            bot_process(TelegramDriver(server), tmp, models, env) as (_, _, log_path),
        ):
            await server.wait_for(lambda: "trainer started" in log_path.read_text(), 60)
            await asyncio.sleep(3.0)  # the trainer's own start-up (imports) settles
            idle = await singles_until(server, images, lambda: False, gap_s, n_single)
            # More memes to correct (not timed), then the admins' corrections.
            extra = [server.post_photo(CHAT, SENDER, data)
                     for _, data in labelled[n_single:n_corrections]]
            answered = TelegramDriver(server).answer
            await server.wait_for(lambda: all(answered(m) for m in extra), 600)
            posted = sorted(server.update_times)[-(n_single + len(extra)):]
            corrected = await correct(server, list(zip(
                posted[:n_corrections], [label for label, _ in labelled[:n_corrections]],
                strict=False,  # without the shared memes there are no labels: nothing to correct
            )))
            command = server.post_text(CHAT, ADMIN, f"/retrain {kind}")
            queued = time.perf_counter()
            await server.reply_to(command)
            await server.wait_for(lambda: re.search(rf"retrain job \d+ \({kind}",
                                                    log_path.read_text()), 120)
            running = time.perf_counter()

            def finished() -> bool:
                return len(server.replies_to(command)) >= 2

            during = await singles_until(server, images, finished, gap_s, 10_000)
            await server.wait_for(finished, 1800)
            job_s = time.perf_counter() - queued
            report = server.replies_to(command)[1].text
            trainer_log = [line for line in log_path.read_text().splitlines()
                           if "memebot.trainer" in line]
    if not during:
        print("the retrain ended before a meme could be timed during it; its report:\n" + report,
              file=sys.stderr)
        print("\n".join(trainer_log[-20:]), file=sys.stderr)
        raise SystemExit(1)
    p95_idle, p95_busy = percentile(idle, 0.95), percentile(during, 0.95)
    ratio = p95_busy / p95_idle
    print(f"model: {resolve_model_dir(model).name}   dataset: {dataset}   cores: {os.cpu_count()}"
          f"   load: {os.getloadavg()[0]:.1f}   trainer: supervised subprocess, nice 10")
    print(f"admin corrections/confirmations before /retrain: {corrected}")
    print(f"retrain job: {job_s:.0f} s from /retrain to the admin report "
          f"({time.perf_counter() - running:.0f} s since it started running)")
    print(f"{'reply latency':<22}  {'idle':>8}  {'retraining':>10}  {'ratio':>6}  target")
    print(f"{'samples':<22}  {len(idle):>8}  {len(during):>10}")
    print(f"{'p50':<22}  {statistics.median(idle):>6.0f}ms  {statistics.median(during):>8.0f}ms"
          f"  {statistics.median(during) / statistics.median(idle):>5.2f}x")
    print(f"{'p95':<22}  {p95_idle:>6.0f}ms  {p95_busy:>8.0f}ms  {ratio:>5.2f}x  "
          f"<= {RETRAIN_RATIO_TARGET:g}x " + ("ok" if ratio <= RETRAIN_RATIO_TARGET else "MISSED"))
    print(f"{'max':<22}  {max(idle):>6.0f}ms  {max(during):>8.0f}ms")
    print("admin report:\n  " + report.replace("\n", "\n  "))
    if len(during) < 5:
        print(f"(only {len(during)} memes answered while the job ran; trainer log tail:)\n"
              + "\n".join(trainer_log[-10:]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None,
                        help="model folder (default: Settings().model_dir, i.e. models/)")
    parser.add_argument("--vs", type=Path, default=None,
                        help="a second model folder, measured after the first, side by side")
    parser.add_argument("--singles", type=int, default=30)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--sustained", type=int, default=400)
    parser.add_argument("--platform", choices=("telegram", "discord", "both"),
                        default="telegram", help="which bot to measure (both: side by side)")
    parser.add_argument("--env", action="append", default=[], metavar="MEMEBOT_X=VALUE",
                        help="extra setting for the bot process (repeatable)")
    parser.add_argument("--retrain", action="store_true",
                        help="p95 reply latency while a retrain runs vs idle")
    parser.add_argument("--dataset", type=Path, default=SHARED_MEMES,
                        help="base dataset for --retrain (MEMEBOT_DATASET_DIR)")
    parser.add_argument("--corrections", type=int, default=100,
                        help="memes an admin labels before --retrain")
    parser.add_argument("--gap", type=float, default=0.3,
                        help="seconds between single memes in --retrain")
    parser.add_argument("--kind", choices=("fast", "full"), default="fast",
                        help="/retrain fast (head, ~10 s) or full (the training pipeline, minutes)")
    args = parser.parse_args()
    model = (args.model or Settings().model_dir).resolve()
    try:
        resolve_model_dir(model)
    except ModelError as exc:
        print(f"no model to benchmark: {exc}\n(train one with `memebot train`, or pass --model)",
              file=sys.stderr)
        return 2
    extra = dict(item.split("=", 1) for item in args.env)
    if args.retrain:
        asyncio.run(bench_retrain(model, args.dataset, args.singles, args.gap, args.corrections,
                                  extra, args.kind))
    else:
        platforms = ["telegram", "discord"] if args.platform == "both" else [args.platform]
        runs = [(p, p, model) for p in platforms]
        if args.vs is not None:
            # the same platform(s) with another model, e.g. before/after a change of the model
            pair = (model, args.vs.resolve())
            names = [resolve_model_dir(m).name for m in pair]
            if names[0] == names[1]:  # one version in two folders (e.g. another encoder export)
                names = [m.name for m in pair]
            runs = [(f"{p}:{n}", p, m) for p in platforms for n, m in zip(names, pair, strict=True)]
        asyncio.run(bench(runs, args.singles, args.burst, args.sustained, extra))
    return 0


if __name__ == "__main__":
    sys.exit(main())
