#!/usr/bin/env python3
"""librdkafka (confluent-kafka) as a second producer client against a broker.

    python bench/librdkafka_produce.py BROKER TOPIC RECORDS [RECORD_BYTES]

Produces RECORDS values of RECORD_BYTES (100) with acks=all and the idempotent
producer (the guarantee `relay send` asks for), librdkafka's default batching
(linger 5 ms) and a local queue large enough never to block, then waits for
every delivery report. The topic must exist (its partitions spread the load).
Prints one human line and one JSON line (the only line starting with "{"):
records, seconds, records_per_second, mb_per_second, failed, client.
Delivery failures are counted, never hidden: a run with any failure exits 1.
"""
import json
import sys
import time

import confluent_kafka

# The local queue holds the whole run's values in flight at most this many at
# once; a full queue makes produce() wait on poll(), which is measured.
QUEUE_MESSAGES_MAX = 1_000_000


def main():
    broker, topic, records = sys.argv[1], sys.argv[2], int(sys.argv[3])
    record_bytes = int(sys.argv[4]) if len(sys.argv) > 4 else 100
    producer = confluent_kafka.Producer({
        "bootstrap.servers": broker,
        "acks": "all",
        "enable.idempotence": True,
        "queue.buffering.max.messages": QUEUE_MESSAGES_MAX,
        "queue.buffering.max.kbytes": 2_097_151,
    })
    failed = 0

    def delivered(error, _message):
        nonlocal failed
        if error is not None:
            failed += 1

    value = b"x" * record_bytes
    started = time.monotonic()
    for _ in range(records):
        while True:
            try:
                producer.produce(topic, value, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    remaining = producer.flush(300)
    seconds = time.monotonic() - started
    failed += remaining
    rate = records / seconds
    print(f"librdkafka {confluent_kafka.libversion()[0]}: {records:,} records of {record_bytes} B in {seconds:.2f} s"
          f" = {rate:,.0f} records/s, {failed} failed")
    print(json.dumps({"records": records, "seconds": round(seconds, 3), "records_per_second": round(rate),
                      "mb_per_second": round(rate * record_bytes / 1e6, 1), "failed": failed,
                      "client": f"librdkafka {confluent_kafka.libversion()[0]}"}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
