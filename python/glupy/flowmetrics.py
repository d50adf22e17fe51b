"""/metrics of `python3 -m glupy.flow --http`: the live counters as Prometheus
metric families, made by prometheus_client (a custom collector over the
counters flowlive.Live keeps, read at scrape time)."""

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                    HistogramMetricFamily)

from .flowlive import LATENCY_BOUNDS_US

LABELS = ["volume", "host", "source", "fop"]


def _seconds(us):
    return f"{us / 1e6:g}"


class FlowCollector:
    def __init__(self, live):
        self.live = live

    def collect(self):
        calls = CounterMetricFamily(
            "glupy_flow_fop_calls", "Fops recorded by the glupy profiler.", labels=LABELS)
        errors = CounterMetricFamily(
            "glupy_flow_fop_errors", "Fops answered with an error (op_ret < 0), by errno.",
            labels=LABELS + ["errno"])
        latency = HistogramMetricFamily(
            "glupy_flow_fop_latency_seconds",
            "Time from the fop to its callback in the profiler (everything below it).",
            labels=LABELS)
        for volume, host, source, fop, count, sum_us, buckets, by_errno in \
                self.live.series_snapshot():
            labels = [volume, host, source, fop]
            calls.add_metric(labels, count)
            for name, n in sorted(by_errno.items()):
                errors.add_metric(labels + [name], n)
            cumulative, running = [], 0
            for bound, n in zip(LATENCY_BOUNDS_US + (None,), buckets):
                running += n
                cumulative.append((_seconds(bound) if bound is not None else "+Inf", running))
            latency.add_metric(labels, cumulative, sum_value=sum_us / 1e6)
        yield calls
        yield errors
        yield latency

        last_seen = GaugeMetricFamily(
            "glupy_flow_source_last_record_timestamp_seconds",
            "When the collector last received a record from this source.",
            labels=["host", "source"])
        for host, source, _, seen in self.live.source_snapshot():
            last_seen.add_metric([host, source], seen)
        yield last_seen
        yield CounterMetricFamily("glupy_flow_records", "Records received and read.",
                                  value=self.live.records)
        yield CounterMetricFamily("glupy_flow_unreadable_records",
                                  "Records received that were not profiler JSON.",
                                  value=self.live.unreadable)


def make_registry(live):
    registry = CollectorRegistry()
    registry.register(FlowCollector(live))
    ProcessCollector(registry=registry)  # the collector's own CPU and memory
    return registry


def exposition(registry):
    return generate_latest(registry)
