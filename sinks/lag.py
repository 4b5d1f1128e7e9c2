"""The sink's consumer lag: records in its assigned partitions past its position (committed-offset lag is the
streams' and ops' business; this is what the sink itself still has to read)."""

from __future__ import annotations

from confluent_kafka import Consumer, KafkaException
from prometheus_client import Gauge


def consumer_lag(consumer: Consumer, gauge: Gauge) -> int | None:
    """Total records past the consumer's position over its assignment (cached high watermarks), each partition's
    also set on `gauge` (label `partition`); None when the consumer cannot tell now."""
    try:
        total = 0
        for tp in consumer.position(consumer.assignment()):
            _, high = consumer.get_watermark_offsets(tp, cached=True) or (0, 0)
            if tp.offset >= 0 and high >= 0:
                gauge.labels(partition=str(tp.partition)).set(max(0, high - tp.offset))
                total += max(0, high - tp.offset)
        return total
    except KafkaException:
        return None
