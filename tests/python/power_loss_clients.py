"""confluent-kafka (librdkafka) clients for the power-loss tests. Each prints
one line per acknowledged action as soon as it is acknowledged (flushed), so
the test knows exactly what was acknowledged when the plug was pulled, even
though it kills these processes right after.

produce BOOTSTRAP TOPIC PARTITIONS PREFIX
    Creates TOPIC if missing, then produces "PREFIX-<n>" values, n = 0, 1, ...
    forever with an idempotent producer (acks=all), printing
    "ack PARTITION OFFSET VALUE" per delivery.

commit BOOTSTRAP TOPIC GROUP PARTITIONS FIRST
    Commits offsets FIRST, FIRST+1, ... for every partition of TOPIC as GROUP (a
    simple consumer: assigned, not subscribed), synchronously, printing
    "committed N" after each acknowledged commit.

dump BOOTSTRAP TOPIC GROUP
    Prints "partitions N" (from metadata), then every record of TOPIC as
    "record PARTITION OFFSET VALUE" from the start of each partition to its
    end, then "committed P OFFSET" for GROUP, then "end".
"""
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def produce(bootstrap, topic, partitions, prefix):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)]).values():
        try:
            future.result()
        except KafkaException as error:
            if "TOPIC_ALREADY_EXISTS" not in str(error):
                raise
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 2,
        "message.timeout.ms": 300000,
    })

    def on_delivery(error, message):
        if error is None:
            out(f"ack {message.partition()} {message.offset()} {message.value().decode()}")

    n = 0
    while True:
        try:
            producer.produce(topic, value=f"{prefix}-{n}".encode(), on_delivery=on_delivery)
            n += 1
        except BufferError:
            producer.poll(0.05)
        producer.poll(0)
        if n % 50 == 0:
            producer.poll(0.001)


def commit(bootstrap, topic, group, partitions, first):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    n = first
    while True:
        try:
            consumer.commit(offsets=[TopicPartition(topic, p, n) for p in range(partitions)], asynchronous=False)
            out(f"committed {n}")
            n += 1
        except KafkaException:
            time.sleep(0.05)
        time.sleep(0.01)


def dump(bootstrap, topic, group):
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
    })
    metadata = consumer.list_topics(topic, timeout=20)
    partitions = sorted(metadata.topics[topic].partitions) if topic in metadata.topics else []
    out(f"partitions {len(partitions)}")
    ends = {}
    for p in partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=20)
        ends[p] = high
    pending = {p for p in partitions if ends[p] > 0}
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    deadline = time.time() + 120
    while pending and time.time() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error():
            if message.error().code() == -191:  # _PARTITION_EOF
                if message.offset() >= ends[message.partition()]:
                    pending.discard(message.partition())
                continue
            out(f"error {message.error()}")
            continue
        out(f"record {message.partition()} {message.offset()} {message.value().decode()}")
        if message.offset() + 1 >= ends[message.partition()]:
            pending.discard(message.partition())
    if pending:
        out(f"error partitions {sorted(pending)} not read to their end")
    for tp in consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=20):
        out(f"committed {tp.partition} {tp.offset}")
    consumer.close()
    out("end")


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "produce":
        produce(args[0], args[1], int(args[2]), args[3])
    elif command == "commit":
        commit(args[0], args[1], args[2], int(args[3]), int(args[4]))
    elif command == "dump":
        dump(args[0], args[1], args[2])
    else:
        sys.exit(f"unknown command {command}")
