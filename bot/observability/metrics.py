"""The bot's Prometheus metrics, in a registry the runtime owns (no process-global state: two
runtimes in one test process never mix their counts).

The service reports what it decided (`post`, `correction`), the job watcher's reports give the
retrain outcomes, and what is read live (queue depth, the model serving) is collected at scrape
time from the objects themselves, so it can never go stale.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from bot.core.job_watcher import JobReport
from bot.core.outcomes import CorrectionOutcome, CorrectionStatus, PostOutcome, PostStatus

# Seconds from a meme reaching the service to its answer: OCR alone is ~0.14 s, a burst queues.
REPLY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
DOWNLOAD_ERRORS = frozenset({PostStatus.not_downloaded, PostStatus.too_large})
DECODE_ERRORS = frozenset({PostStatus.unreadable, PostStatus.unsupported})
CORRECTIONS = frozenset({CorrectionStatus.corrected, CorrectionStatus.confirmed,
                         CorrectionStatus.repost_judged})


class _LiveValues(Collector):
    """Read at each scrape: how many images wait, and which model answers."""

    def __init__(self, queue_depth: Callable[[], int], model_version: Callable[[], str]) -> None:
        self._queue_depth = queue_depth
        self._model_version = model_version

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("memebot_queue_depth", "Images waiting to be classified")
        depth.add_metric([], self._queue_depth())
        yield depth
        model = GaugeMetricFamily("memebot_model_serving",
                                  "The model version answering (1 for the one serving)",
                                  labels=["version"])
        model.add_metric([self._model_version()], 1)
        yield model


class BotMetrics:
    def __init__(self, queue_depth: Callable[[], int], model_version: Callable[[], str]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.memes = Counter("memebot_memes_labelled", "Memes labelled",
                             ["platform", "label"], registry=r)
        self.reply_seconds = Histogram("memebot_reply_seconds",
                                       "Time from a meme reaching the bot to its answer",
                                       ["platform"], buckets=REPLY_BUCKETS, registry=r)
        self.download_errors = Counter("memebot_download_errors",
                                       "Images not downloaded (unreachable or too large)",
                                       ["platform", "status"], registry=r)
        self.decode_errors = Counter("memebot_decode_errors",
                                     "Images not decoded (corrupt or an unread format)",
                                     ["platform", "status"], registry=r)
        self.busy = Counter("memebot_busy_refusals", "Memes refused because the queue was full",
                            ["platform"], registry=r)
        self.corrections = Counter("memebot_corrections", "Admins' label decisions",
                                   ["platform", "kind"], registry=r)
        self.repost_hits = Counter("memebot_repost_hits", "Memes recognised as reposts",
                                   ["platform"], registry=r)
        self.retrain_jobs = Counter("memebot_retrain_jobs", "Retrain jobs finished",
                                    ["outcome"], registry=r)
        r.register(_LiveValues(queue_depth, model_version))

    def post(self, platform: str, outcome: PostOutcome, seconds: float) -> None:
        status = outcome.status
        if status is PostStatus.labelled:
            self.memes.labels(platform, outcome.label or "").inc()
            self.reply_seconds.labels(platform).observe(seconds)
            if outcome.repost is not None:
                self.repost_hits.labels(platform).inc()
        elif status in DOWNLOAD_ERRORS:
            self.download_errors.labels(platform, status.value).inc()
        elif status in DECODE_ERRORS:
            self.decode_errors.labels(platform, status.value).inc()
        elif status is PostStatus.busy:
            self.busy.labels(platform).inc()

    def correction(self, platform: str, outcome: CorrectionOutcome | None) -> None:
        if outcome is not None and outcome.status in CORRECTIONS:
            self.corrections.labels(platform, outcome.status.value).inc()

    async def job_report(self, report: JobReport) -> None:
        """A `JobWatcher` listener: one count per finished job, by how it ended."""
        outcome = report.job.status.value
        if report.promoted is not None:
            outcome = f"{outcome}_{'promoted' if report.promoted else 'kept'}"
        self.retrain_jobs.labels(outcome).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
