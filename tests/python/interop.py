"""confluent-kafka interoperability with relay produce/consume.

produce BOOTSTRAP TOPIC COUNT   keyed records key-<n % 50> / value c<n>, Java-compatible murmur2 partitioner, lz4
consume BOOTSTRAP TOPIC COUNT   reads COUNT records from the beginning, prints "partition key value" lines
"""
import sys

from confluent_kafka import Consumer, Producer

command, bootstrap, topic, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
if command == "produce":
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random", "compression.type": "lz4",
                         "enable.idempotence": True})
    for n in range(count):
        producer.produce(topic, key=f"key-{n % 50}".encode(), value=f"c{n}".encode())
    producer.flush(30)
elif command == "consume":
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "interop", "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.subscribe([topic])
    seen = 0
    while seen < count:
        message = consumer.poll(10)
        if message is None:
            break
        if message.error():
            continue
        key = message.key().decode() if message.key() is not None else "-"
        print(message.partition(), key, message.value().decode())
        seen += 1
    consumer.close()
