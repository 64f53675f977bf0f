"""kafka-python (pure-Python client, with its crc32c/lz4/snappy/zstd codecs)
driven by the Rust end-to-end tests. Produces 300 messages to a 2-partition
topic with timestamps one second apart (lz4), consumes them with a group,
commits, and asks offsets_for_times. Prints one JSON object with the results:

    BOOTSTRAP TOPIC GROUP

Admin cases, one subcommand each, each printing one JSON object:

max-timestamp BOOTSTRAP TOPIC
    Creates TOPIC with 2 partitions, produces to partition 0 records whose
    timestamps peak twice at the same value, leaves partition 1 empty, and
    asks list_partition_offsets(MAX_TIMESTAMP) of both.

delete-groups BOOTSTRAP TOPIC
    Creates TOPIC, produces 10 messages, reads them in group "gone" (which
    commits and leaves), keeps a member of group "live" polling, and asks
    delete_groups of "gone", "live" and "never". Prints each group's answer
    and what "gone" has committed afterwards (null: nothing).

fetch-limits BOOTSTRAP TOPIC
    Creates TOPIC with 4 partitions, produces two 300,000-byte messages to
    each, then reads them all twice: with fetch_max_bytes 1,000,000 (and a
    partition limit that does not bind), and with max_partition_fetch_bytes
    400,000 (and a response limit that does not bind). Prints how many
    messages each read got and the largest Fetch response frame it received
    (kafka-python accepts any size, so the frames are measured as they
    arrive).

topic-configs BOOTSTRAP create|after-restart
    create: creates "tuned" with configs Relay honours (max.message.bytes
    2048 among them) and ones already true of one broker, "compacted" with
    cleanup.policy=compact, and "checked" with validate_only; then produces a
    4,000-byte and a 100-byte message to "tuned". after-restart: the two
    produces again. Prints each answer.
"""
import json
import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic, OffsetSpec

T0 = 1_767_225_600_000


def produce_and_consume(bootstrap, topic, group):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    admin.close()

    producer = KafkaProducer(bootstrap_servers=bootstrap, compression_type="lz4", acks="all", linger_ms=5)
    for n in range(300):
        producer.send(topic, value=f"k{n}".encode(), partition=n % 2, timestamp_ms=T0 + 1000 * n)
    producer.flush(30)
    producer.close()

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=5000,
    )
    values = sorted(int(m.value.decode()[1:]) for m in consumer)
    consumer.commit()
    partitions = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
    committed = [consumer.committed(p) for p in partitions]
    # Message n sits in partition n % 2 at offset n // 2.
    lookups = {}
    for label, timestamp in [("t0", T0), ("t101", T0 + 101_000), ("t150_5", T0 + 150_500), ("after", T0 + 400_000)]:
        found = consumer.offsets_for_times({p: timestamp for p in partitions})
        lookups[label] = [None if found[p] is None else [found[p].offset, found[p].timestamp] for p in partitions]
    consumer.close()
    print(json.dumps({"values": values, "committed": committed, "lookups": lookups}))


def max_timestamp(bootstrap, topic):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for offset, delta in enumerate([5_000, 1_000, 9_000, 2_000, 9_000, 3_000]):
        producer.send(topic, value=f"v{offset}".encode(), partition=0, timestamp_ms=T0 + delta)
        producer.flush(30)
    producer.close()
    partitions = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
    found = admin.list_partition_offsets({p: OffsetSpec.MAX_TIMESTAMP for p in partitions})
    admin.close()
    print(json.dumps({"max_timestamp": [[found[p].offset, found[p].timestamp] for p in partitions]}))


def delete_groups(bootstrap, topic):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for n in range(10):
        producer.send(topic, value=f"v{n}".encode())
    producer.flush(30)
    producer.close()
    partition = TopicPartition(topic, 0)

    def member(group):
        return KafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            consumer_timeout_ms=3000,
        )

    gone, read, started = member("gone"), 0, time.time()
    while read < 10 and time.time() - started < 30:
        read += sum(len(batch) for batch in gone.poll(timeout_ms=500).values())
    gone.commit()
    gone.close()
    live = member("live")
    while not live.assignment():
        live.poll(timeout_ms=200)
    answers = admin.delete_groups(["gone", "live", "never"])
    live.close()
    admin.close()
    after = KafkaConsumer(bootstrap_servers=bootstrap, group_id="gone", enable_auto_commit=False)
    committed = after.committed(partition)
    after.close()
    print(json.dumps({"read": read, "deleted": answers, "gone_committed": committed}, sort_keys=True))


TUNED_CONFIGS = {
    "retention.ms": "3600000",
    "retention.bytes": "1048576",
    "segment.bytes": "1048576",
    "max.message.bytes": "2048",
    "cleanup.policy": "delete",
    "min.insync.replicas": "1",
    "compression.type": "producer",
    "delete.retention.ms": "900",
}


def produce_sizes(bootstrap, topic):
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=0)
    answers = []
    for size in [4000, 100]:
        try:
            producer.send(topic, value=b"x" * size).get(timeout=30)
            answers.append("OK")
        except Exception as error:
            answers.append(type(error).__name__)
    producer.close()
    return answers


def topic_configs(bootstrap, phase):
    if phase == "after-restart":
        print(json.dumps({"produced": produce_sizes(bootstrap, "tuned")}))
        return
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)

    def create(name, configs, validate_only=False):
        spec = {name: {"num_partitions": 1, "replication_factor": 1, "configs": configs}}
        topic = admin.create_topics(spec, validate_only=validate_only, raise_errors=False)["topics"][0]
        return [topic["error_code"], topic["error_message"] or ""]

    created = {
        "tuned": create("tuned", TUNED_CONFIGS),
        "compacted": create("compacted", {"cleanup.policy": "compact"}),
        "checked": create("checked", TUNED_CONFIGS, validate_only=True),
    }
    listed = sorted(t for t in admin.list_topics() if not t.startswith("__"))
    admin.close()
    print(json.dumps({"created": created, "listed": listed, "produced": produce_sizes(bootstrap, "tuned")}))


FETCH_API_KEY = 1


def largest_fetch_frames():
    """Wraps kafka-python's response parser to keep the size of every Fetch
    response frame; returns the list it appends to."""
    from kafka.protocol.parser import KafkaProtocol

    sizes = []
    original = KafkaProtocol._process_response

    def process_response(self, read_buffer):
        if self.in_flight_requests and self.in_flight_requests[0].request_api_key == FETCH_API_KEY:
            sizes.append(len(read_buffer))
        return original(self, read_buffer)

    KafkaProtocol._process_response = process_response
    return sizes


def fetch_limits(bootstrap, topic):
    partitions, per_partition, value_bytes = 4, 2, 300_000
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=2_000_000)
    for partition in range(partitions):
        for n in range(per_partition):
            producer.send(topic, value=bytes([65 + n]) * value_bytes, partition=partition)
            producer.flush(30)
    producer.close()
    sizes = largest_fetch_frames()
    reads = {}
    for label, limits in [
        ("response_limit", {"fetch_max_bytes": 1_000_000, "max_partition_fetch_bytes": 1_000_000}),
        ("partition_limit", {"fetch_max_bytes": 50_000_000, "max_partition_fetch_bytes": 400_000}),
    ]:
        sizes.clear()
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=5000, **limits)
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        consumer.seek_to_beginning()
        received = sum(1 for _ in consumer)
        consumer.close()
        reads[label] = {"received": received, "largest_frame": max(sizes, default=0), "responses": len(sizes)}
    print(json.dumps(reads, sort_keys=True))


if __name__ == "__main__":
    if sys.argv[1] == "max-timestamp":
        max_timestamp(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "delete-groups":
        delete_groups(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "fetch-limits":
        fetch_limits(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "topic-configs":
        topic_configs(sys.argv[2], sys.argv[3])
    else:
        produce_and_consume(sys.argv[1], sys.argv[2], sys.argv[3])
