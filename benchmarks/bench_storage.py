"""Inserts of post+prediction per second on SQLite and PostgreSQL, 1 and 50 writers.

    .venv/bin/python benchmarks/bench_storage.py [--n 1000]

PostgreSQL is measured when MEMEBOT_TEST_POSTGRES_URL (default: the test suite's URL) is
reachable; it runs in a throwaway schema. Each insert is a full `add_post` (image check, blob
write with fsync, rows) plus a `record_prediction`, i.e. what the bot does per meme.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage.api import Storage

DEFAULT_PG = "postgresql+asyncpg://postgres:postgres@127.0.0.1:5432/memebot_test"


def _images(n: int) -> list[bytes]:
    out = []
    for i in range(n):
        img = Image.new("RGB", (32, 32), (i % 256, (i // 256) % 256, 77))
        img.putpixel((0, 0), ((i * 13) % 256, (i // 65536) % 256, 1))
        buf = io.BytesIO()
        img.save(buf, "PNG")
        out.append(buf.getvalue())
    return out


async def _insert(storage: Storage, run: str, i: int, image: bytes) -> None:
    post = await storage.add_post(
        platform="telegram", chat_id=run, message_id=i, author_id=i, image=image
    )
    await storage.record_prediction(
        post.id, model_version="bench", label="doom", confidence=0.9,
        probabilities={"doom": 0.9, "animal_crossing": 0.05, "other": 0.05}, latency_ms=5.0,
    )


async def _measure(storage: Storage, images: list[bytes], writers: int) -> float:
    run = uuid.uuid4().hex[:8]
    queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
    for item in enumerate(images):
        queue.put_nowait(item)

    async def writer() -> None:
        while not queue.empty():
            i, image = queue.get_nowait()
            await _insert(storage, run, i, image)

    start = time.perf_counter()
    await asyncio.gather(*[writer() for _ in range(writers)])
    return len(images) / (time.perf_counter() - start)


async def _pg_reachable(url: str) -> str | None:
    import asyncpg

    try:
        conn = await asyncio.wait_for(asyncpg.connect(url.replace("+asyncpg", "")), timeout=3)
    except Exception as exc:  # any failure to connect: report it and skip the backend
        return repr(exc)
    await conn.close()
    return None


async def _pg_exec(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def main(n: int) -> None:
    writer_counts = (1, 50)
    rows: list[tuple[str, int, str]] = []
    skipped: list[tuple[str, int, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        backends: list[tuple[str, str, str | None]] = [
            ("sqlite", f"sqlite+aiosqlite:///{tmp}/bench.db", None)
        ]
        pg_url = os.environ.get("MEMEBOT_TEST_POSTGRES_URL", DEFAULT_PG)
        if (problem := await _pg_reachable(pg_url)) is None:
            backends.append(("postgresql", pg_url, f"bench_{uuid.uuid4().hex[:8]}"))
        else:
            skipped += [("postgresql", w, f"skipped: {problem[:60]}") for w in writer_counts]
        for name, url, schema in backends:
            if schema:
                await _pg_exec(url, f'CREATE SCHEMA "{schema}"')
            try:
                storage = await Storage.open(url, Path(tmp) / f"blobs-{name}", schema=schema)
                try:
                    await _measure(storage, _images(20), 1)  # warm up connections and caches
                    for writers in writer_counts:
                        rate = await _measure(storage, _images(n), writers)
                        rows.append((name, writers, f"{rate:,.0f}"))
                finally:
                    await storage.close()
            finally:
                if schema:
                    await _pg_exec(url, f'DROP SCHEMA "{schema}" CASCADE')
    print(f"post+prediction inserts per second ({n} per run, 32x32 PNG, fsync on)")
    print(f"{'backend':<12}{'writers':>8}  {'inserts/s':>10}")
    for name, writers, rate in rows + skipped:
        print(f"{name:<12}{writers:>8}  {rate:>10}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="inserts per run")
    asyncio.run(main(parser.parse_args().n))
