"""kafka-python (pure-Python client, with its crc32c/lz4/snappy/zstd codecs)
driven by the Rust end-to-end tests. Produces 300 messages to a 2-partition
topic with timestamps one second apart (lz4), consumes them with a group,
commits, and asks offsets_for_times. Prints one JSON object with the results.
"""
import json
import sys

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

bootstrap, topic, group = sys.argv[1], sys.argv[2], sys.argv[3]
T0 = 1_767_225_600_000

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
