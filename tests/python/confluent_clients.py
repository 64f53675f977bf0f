"""confluent-kafka (librdkafka) driven by the Rust end-to-end tests.

produce BOOTSTRAP TOPIC PARTITIONS COUNT FIRST
    Creates TOPIC (if missing) and produces COUNT messages with values
    "m<n>" for n in FIRST..FIRST+COUNT, spread over the five compression
    codecs, with an idempotent producer. Prints {"delivered": N, "errors": [...]}.

consume BOOTSTRAP TOPIC GROUP OUT IDLE_SECONDS
    Joins GROUP, consumes until nothing arrives for IDLE_SECONDS (after at
    least one message), committing synchronously after every batch and on
    revocation, and writes "partition offset value" lines to OUT.

committed BOOTSTRAP TOPIC GROUP PARTITIONS
    Prints the group's committed offsets as a JSON list.

fetch-limits BOOTSTRAP TOPIC
    Creates TOPIC with 4 partitions, produces two 300,000-byte messages to
    each, then reads them all with fetch.max.bytes = 1,000,000 (and
    receive.message.max.bytes just above it, as librdkafka requires), the
    partitions assigned, no group. Prints {"received": N, "errors": [...]}:
    a response over the limit is refused by librdkafka ("Invalid response
    size") and fetched again for ever.

max-timestamp BOOTSTRAP TOPIC
    Creates TOPIC with 2 partitions, produces to partition 0 records whose
    timestamps peak twice at the same value (one batch each), leaves
    partition 1 empty, and asks AdminClient.list_offsets with
    OffsetSpec.max_timestamp() of both. Prints {"max_timestamp": [[offset,
    timestamp], ...]}.

delete-groups BOOTSTRAP TOPIC
    Creates TOPIC, produces 10 messages, reads them in group "gone" (which
    commits and closes), keeps a member of group "live" polling, and asks
    AdminClient.delete_consumer_groups of "gone", "live" and "never". Prints
    each group's answer ("OK" or the error name) and what "gone" has
    committed afterwards (-1001: nothing).

static-membership BOOTSTRAP TOPIC
    Creates TOPIC with 4 partitions. Starts consumers "a" and "b" of group
    "static" together (group.instance.id "a" and "b"), polls both until each
    is assigned, then closes "b" (a static member leaves no LeaveGroup) and
    starts a new process of it (same instance id) while "a" keeps polling;
    then starts a second "b" while the new one still runs. Prints how many
    assignments "a" saw first and during the restart, whether the new "b"
    got the old one's partitions, and the errors the replaced "b" got.

topic-configs BOOTSTRAP create|after-restart
    create: creates "tuned" with configs Relay honours (max.message.bytes
    2048 among them) and ones already true of one broker, "compacted" with
    cleanup.policy=compact, and "checked" with validate_only; then produces a
    4,000-byte and a 100-byte message to "tuned". after-restart: the two
    produces again. Prints each answer (error names, refusal messages).
"""
import json
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
T0_MS = 1_767_225_600_000


def produce(bootstrap, topic, partitions, count, first):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)]).values():
        try:
            future.result()
        except KafkaException as error:
            if "TOPIC_ALREADY_EXISTS" not in str(error):
                raise
    errors, delivered = [], [0]

    def on_delivery(error, message):
        if error:
            errors.append(str(error))
        else:
            delivered[0] += 1

    per_codec = (count + len(CODECS) - 1) // len(CODECS)
    n = first
    for codec in CODECS:
        producer = Producer({
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "compression.type": codec,
            "linger.ms": 5,
        })
        for _ in range(per_codec):
            if n >= first + count:
                break
            producer.produce(topic, value=f"m{n}".encode(), key=str(n).encode(), on_delivery=on_delivery)
            n += 1
            producer.poll(0)
        remaining = producer.flush(60)
        if remaining:
            errors.append(f"{remaining} messages not delivered with {codec}")
    print(json.dumps({"delivered": delivered[0], "errors": errors[:10]}))


def consume(bootstrap, topic, group, out, idle_seconds):
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
    })

    def on_revoke(consumer, partitions):
        try:
            consumer.commit(asynchronous=False)
        except KafkaException:
            pass

    consumer.subscribe([topic], on_revoke=on_revoke)
    received = 0
    last = time.time()
    started = time.time()
    with open(out, "w") as sink:
        while True:
            messages = consumer.consume(num_messages=1000, timeout=0.5)
            good = [m for m in messages if not m.error()]
            for message in good:
                sink.write(f"{message.partition()} {message.offset()} {message.value().decode()}\n")
            if good:
                sink.flush()
                consumer.commit(asynchronous=False)
                received += len(good)
                last = time.time()
            idle = time.time() - last
            if (received > 0 and idle > idle_seconds) or time.time() - started > 120:
                break
    consumer.close()
    print(json.dumps({"received": received}))


def committed(bootstrap, topic, group, partitions):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    offsets = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=20)
    consumer.close()
    print(json.dumps([o.offset for o in offsets]))


def fetch_limits(bootstrap, topic):
    partitions, per_partition, value_bytes = 4, 2, 300_000
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)]).values():
        future.result()
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "batch.num.messages": 1})
    for partition in range(partitions):
        for n in range(per_partition):
            producer.produce(topic, value=bytes([65 + n]) * value_bytes, partition=partition)
            producer.flush(30)
    errors = []
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "unused",
        "enable.auto.commit": False,
        "fetch.max.bytes": 1_000_000,
        "max.partition.fetch.bytes": 1_000_000,
        "receive.message.max.bytes": 1_000_512,
        "error_cb": lambda error: errors.append(str(error)),
    })
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    received, started = 0, time.time()
    while received < partitions * per_partition and time.time() - started < 30:
        for message in consumer.consume(num_messages=100, timeout=0.5):
            if message.error():
                errors.append(str(message.error()))
            else:
                received += 1
    consumer.close()
    print(json.dumps({"received": received, "errors": errors[:5]}))


def max_timestamp(bootstrap, topic):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)]).values():
        future.result()
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for offset, delta in enumerate([5_000, 1_000, 9_000, 2_000, 9_000, 3_000]):
        producer.produce(topic, value=f"v{offset}".encode(), partition=0, timestamp=T0_MS + delta)
        producer.flush(30)
    partitions = [TopicPartition(topic, p) for p in range(2)]
    futures = admin.list_offsets({p: OffsetSpec.max_timestamp() for p in partitions}, request_timeout=20)
    found = {tp.partition: future.result() for tp, future in futures.items()}
    print(json.dumps({"max_timestamp": [[found[p].offset, found[p].timestamp] for p in range(2)]}))


def delete_groups(bootstrap, topic):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)]).values():
        future.result()
    producer = Producer({"bootstrap.servers": bootstrap})
    for n in range(10):
        producer.produce(topic, value=f"v{n}".encode())
    producer.flush(30)

    def member(group):
        consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        })
        consumer.subscribe([topic])
        return consumer

    gone, read, started = member("gone"), 0, time.time()
    while read < 10 and time.time() - started < 30:
        read += len([m for m in gone.consume(num_messages=10, timeout=0.5) if not m.error()])
    gone.commit(asynchronous=False)
    gone.close()
    live = member("live")
    while not live.assignment():
        live.poll(0.2)
    answers = {}
    for group, future in admin.delete_consumer_groups(["gone", "live", "never"], request_timeout=20).items():
        try:
            future.result()
            answers[group] = "OK"
        except KafkaException as error:
            answers[group] = error.args[0].name()
    live.close()
    after = Consumer({"bootstrap.servers": bootstrap, "group.id": "gone"})
    committed = after.committed([TopicPartition(topic, 0)], timeout=20)[0].offset
    after.close()
    print(json.dumps({"read": read, "deleted": answers, "gone_committed": committed}, sort_keys=True))


def static_membership(bootstrap, topic):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)]).values():
        future.result()
    assigned = {"a": 0}
    errors = []

    def member(instance, on_error=None):
        settings = {
            "bootstrap.servers": bootstrap,
            "group.id": "static",
            "group.instance.id": instance,
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 300,
            "auto.offset.reset": "earliest",
        }
        if on_error:
            settings["error_cb"] = on_error
        consumer = Consumer(settings)

        def on_assign(consumer, partitions):
            assigned[instance] = assigned.get(instance, 0) + 1

        consumer.subscribe([topic], on_assign=on_assign)
        return consumer

    def poll_until(consumers, done, seconds):
        started = time.time()
        while not done() and time.time() - started < seconds:
            for consumer in consumers:
                try:
                    message = consumer.poll(0.05)
                except KafkaException as error:
                    errors.append(f"{error.args[0].name()}: {error.args[0].str()}")
                    consumers.remove(consumer)
                    break
                if message is not None and message.error() and consumer is b_again:
                    errors.append(f"{message.error().name()}: {message.error().str()}")

    a, b = member("a"), member("b")
    b_again = None
    poll_until([a, b], lambda: a.assignment() and b.assignment(), 30)
    poll_until([a, b], lambda: False, 2)
    first = dict(assigned)
    b_partitions = sorted(p.partition for p in b.assignment())
    b.close()
    b_again = member("b", lambda error: errors.append(f"{error.name()}: {error.str()}"))
    poll_until([a, b_again], lambda: b_again.assignment(), 30)
    poll_until([a, b_again], lambda: False, 3)
    b_again_partitions = sorted(p.partition for p in b_again.assignment())
    during_restart = assigned["a"] - first["a"]
    duplicate = member("b")
    poll_until([a, b_again, duplicate], lambda: errors, 20)
    for consumer in [a, duplicate]:
        consumer.close()
    print(json.dumps({
        "a_assigned_first": first["a"],
        "a_assigned_during_restart": during_restart,
        "b_keeps_partitions": b_partitions == b_again_partitions and bool(b_partitions),
        "replaced_b_errors": sorted(set(errors)),
    }, sort_keys=True))


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
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "retries": 0})
    answers = []

    def on_delivery(error, message):
        answers.append(error.name() if error else "OK")

    for size in [4000, 100]:
        producer.produce(topic, value=b"x" * size, on_delivery=on_delivery)
        producer.flush(30)
    return answers


def topic_configs(bootstrap, phase):
    if phase == "after-restart":
        print(json.dumps({"produced": produce_sizes(bootstrap, "tuned")}))
        return
    admin = AdminClient({"bootstrap.servers": bootstrap})

    def create(name, configs, validate_only=False):
        topic = NewTopic(name, num_partitions=1, replication_factor=1, config=configs)
        future = admin.create_topics([topic], validate_only=validate_only, request_timeout=20)[name]
        try:
            future.result()
            return ["OK", ""]
        except KafkaException as error:
            return [error.args[0].name(), error.args[0].str()]

    created = {
        "tuned": create("tuned", TUNED_CONFIGS),
        "compacted": create("compacted", {"cleanup.policy": "compact"}),
        "checked": create("checked", TUNED_CONFIGS, validate_only=True),
    }
    listed = sorted(t for t in admin.list_topics(timeout=20).topics if not t.startswith("__"))
    print(json.dumps({"created": created, "listed": listed, "produced": produce_sizes(bootstrap, "tuned")}))


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "produce":
        produce(args[0], args[1], int(args[2]), int(args[3]), int(args[4]))
    elif command == "consume":
        consume(args[0], args[1], args[2], args[3], float(args[4]))
    elif command == "committed":
        committed(args[0], args[1], args[2], int(args[3]))
    elif command == "fetch-limits":
        fetch_limits(args[0], args[1])
    elif command == "max-timestamp":
        max_timestamp(args[0], args[1])
    elif command == "delete-groups":
        delete_groups(args[0], args[1])
    elif command == "static-membership":
        static_membership(args[0], args[1])
    elif command == "topic-configs":
        topic_configs(args[0], args[1])
    else:
        sys.exit(f"unknown command {command}")
