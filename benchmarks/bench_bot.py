"""The Telegram bot end to end against the Bot API stand-in: update-to-reply latency for
single memes and a burst, sustained memes/s, the bot process's peak RSS and start time.

    .venv/bin/python benchmarks/bench_bot.py [--model DIR] [--burst 200] [--sustained 400]

The bot runs as a real `memebot run` process (its own Python, long polling, SQLite in a temp
folder); the stand-in runs here. Latency is from the moment the update is available to
getUpdates until the stand-in receives the reply. Images are the shared real memes when
present (../shared/data/memes), else generated ones.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.settings import Settings  # noqa: E402
from inference.errors import ModelError  # noqa: E402
from inference.metadata import resolve_model_dir  # noqa: E402
from tests.imagegen import encode, make_image  # noqa: E402
from tests.telegram_standin import TOKEN, TelegramStandIn, group, standin, user  # noqa: E402

SHARED_MEMES = ROOT.parent / "shared" / "data" / "memes"
CHAT, SENDER = group(), user(7, "Poster")
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
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def rss_mb(pid: int, field: str = "VmHWM:") -> float:
    """VmHWM is the kernel's high-water mark of resident memory, VmRSS the current size."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return float("nan")


def latencies(server: TelegramStandIn, message_ids: list[int]) -> list[float]:
    out = []
    for m in message_ids:
        [reply] = server.replies_to(m)
        out.append((reply.sent_at - server.update_times[m]) * 1000)
    return out


async def run_singles(server: TelegramStandIn, images: list[bytes]) -> list[float]:
    ids = []
    for data in images:
        m = server.post_photo(CHAT, SENDER, data)
        await server.reply_to(m, timeout=60)
        ids.append(m)
    return latencies(server, ids)


async def run_burst(server: TelegramStandIn, images: list[bytes]) -> tuple[list[float], float]:
    start = time.perf_counter()
    ids = [server.post_photo(CHAT, SENDER, data) for data in images]
    await server.wait_for(lambda: all(server.replies_to(m) for m in ids), timeout=600)
    return latencies(server, ids), len(ids) / (time.perf_counter() - start)


async def run_sustained(server: TelegramStandIn, images: list[bytes], in_flight: int) -> float:
    """Keep `in_flight` memes outstanding, like a busy group; memes answered per second."""
    pending: list[int] = []
    start = time.perf_counter()
    for data in images:
        if len(pending) >= in_flight:
            await server.wait_for(lambda: any(server.replies_to(m) for m in pending), timeout=60)
            pending = [m for m in pending if not server.replies_to(m)]
        pending.append(server.post_photo(CHAT, SENDER, data))
    await server.wait_for(lambda: all(server.replies_to(m) for m in pending), timeout=600)
    return len(images) / (time.perf_counter() - start)


async def bench(
    model: Path, n_single: int, n_burst: int, n_sustained: int, extra_env: dict[str, str]
) -> None:
    images = meme_images(max(n_single, n_burst, n_sustained))
    with tempfile.TemporaryDirectory() as tmp:
        async with standin() as server:
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("MEMEBOT_")},
                "PYTHONPATH": str(ROOT),
                "MEMEBOT_TELEGRAM_TOKEN": TOKEN,
                "MEMEBOT_TELEGRAM_API_URL": server.api_url,
                "MEMEBOT_TELEGRAM_FILE_URL": server.file_url,
                "MEMEBOT_DATA_DIR": str(Path(tmp) / "data"),
                "MEMEBOT_MODEL_DIR": str(model),
                "MEMEBOT_QUEUE_SIZE": str(max(256, n_burst + 16)),
                **extra_env,
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
                while not (server.get_updates_calls or exited.done()):
                    if time.monotonic() > deadline:
                        sys.exit(f"the bot did not poll in 120 s:\n{log_path.read_text()[-3000:]}")
                    await asyncio.sleep(0.005)
                if exited.done():
                    sys.exit(f"the bot did not start:\n{log_path.read_text()[-3000:]}")
                start_s = time.perf_counter() - spawned
                await asyncio.sleep(0.5)  # let start-up settle before reading the idle size
                idle_rss = rss_mb(proc.pid, "VmRSS:")
                single = await run_singles(server, images[:n_single])
                burst, burst_rate = await run_burst(server, images[:n_burst])
                sustained = await run_sustained(server, images[:n_sustained], in_flight=32)
                rss = rss_mb(proc.pid)
                proc.send_signal(signal.SIGTERM)
                await asyncio.wait_for(proc.wait(), 60)
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
                log_file.close()
            if proc.returncode != 0:
                sys.exit(f"bot exited with {proc.returncode}:\n{log_path.read_text()[-2000:]}")
    source = "shared real memes" if SHARED_MEMES.is_dir() else "generated 500x500 JPEGs"
    print(f"model: {model}   images: {source}   cores: {os.cpu_count()}   "
          f"load: {os.getloadavg()[0]:.1f}   {' '.join(f'{k}={v}' for k, v in extra_env.items())}")
    rows = [
        ("single meme latency p50", f"{statistics.median(single):.0f} ms", ""),
        ("single meme latency p95", f"{percentile(single, 0.95):.0f} ms", ""),
        (f"burst of {n_burst}: latency p50", f"{statistics.median(burst):.0f} ms", ""),
        (f"burst of {n_burst}: latency p95", f"{percentile(burst, 0.95):.0f} ms", ""),
        (f"burst of {n_burst}: memes/s", f"{burst_rate:.1f}", ""),
        ("sustained memes/s (32 in flight)", f"{sustained:.1f}", ""),
        ("bot RSS idle after start", f"{idle_rss:.0f} MB", ""),
        ("bot peak RSS", f"{rss:.0f} MB", f"<= {RSS_TARGET_MB} MB "
         + ("ok" if rss <= RSS_TARGET_MB else "MISSED")),
        ("bot start (spawn -> polling)", f"{start_s:.2f} s", f"<= {START_TARGET_S} s "
         + ("ok" if start_s <= START_TARGET_S else "MISSED")),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>10}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>10}  {target}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None,
                        help="model folder (default: Settings().model_dir, i.e. models/)")
    parser.add_argument("--singles", type=int, default=30)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--sustained", type=int, default=400)
    parser.add_argument("--env", action="append", default=[], metavar="MEMEBOT_X=VALUE",
                        help="extra setting for the bot process (repeatable)")
    args = parser.parse_args()
    model = (args.model or Settings().model_dir).resolve()
    try:
        resolve_model_dir(model)
    except ModelError as exc:
        print(f"no model to benchmark: {exc}\n(train one with `memebot train`, or pass --model)",
              file=sys.stderr)
        return 2
    extra = dict(item.split("=", 1) for item in args.env)
    asyncio.run(bench(model, args.singles, args.burst, args.sustained, extra))
    return 0


if __name__ == "__main__":
    sys.exit(main())
