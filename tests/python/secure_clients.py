"""confluent-kafka (librdkafka) over SASL_SSL, driven by tests/security.rs.

roundtrip BOOTSTRAP CA USER PASSWORD MECHANISM TOPIC COUNT
    Creates TOPIC, produces COUNT messages "s<n>" with an idempotent
    producer, reads them back as a consumer group that commits, and prints
    {"delivered": N, "consumed": [...], "errors": [...]}.

login BOOTSTRAP CA USER PASSWORD MECHANISM
    Asks for metadata once and prints {"ok": true} or {"ok": false, "error": "..."}.
"""
import json
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic


def security(bootstrap, ca, user, password, mechanism):
    return {
        "bootstrap.servers": bootstrap,
        "security.protocol": "SASL_SSL",
        "ssl.ca.location": ca,
        "sasl.mechanisms": mechanism,
        "sasl.username": user,
        "sasl.password": password,
    }


def roundtrip(bootstrap, ca, user, password, mechanism, topic, count):
    config = security(bootstrap, ca, user, password, mechanism)
    admin = AdminClient(config)
    for future in admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)]).values():
        future.result()
    errors, delivered = [], [0]

    def on_delivery(error, message):
        if error:
            errors.append(str(error))
        else:
            delivered[0] += 1

    producer = Producer({**config, "enable.idempotence": True, "linger.ms": 5})
    for n in range(count):
        producer.produce(topic, value=f"s{n}".encode(), key=str(n).encode(), on_delivery=on_delivery)
        producer.poll(0)
    producer.flush(60)

    consumer = Consumer({**config, "group.id": "secure", "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.subscribe([topic])
    consumed = []
    deadline = time.time() + 60
    while len(consumed) < count and time.time() < deadline:
        message = consumer.poll(1.0)
        if message is None:
            continue
        if message.error():
            errors.append(str(message.error()))
            continue
        consumed.append(message.value().decode())
        consumer.commit(message=message, asynchronous=False)
    consumer.close()
    print(json.dumps({"delivered": delivered[0], "consumed": sorted(consumed), "errors": errors}))


def login(bootstrap, ca, user, password, mechanism):
    errors = []
    config = security(bootstrap, ca, user, password, mechanism)
    config["error_cb"] = lambda error: errors.append(str(error))
    admin = AdminClient(config)
    try:
        admin.list_topics(timeout=5)
        print(json.dumps({"ok": True}))
    except KafkaException as error:
        admin.poll(1)  # delivers the error callbacks (the authentication error)
        print(json.dumps({"ok": False, "error": "; ".join(errors + [str(error)])}))


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "roundtrip":
        roundtrip(*args[:6], int(args[6]))
    elif command == "login":
        login(*args)
    else:
        sys.exit(f"unknown command {command}")
