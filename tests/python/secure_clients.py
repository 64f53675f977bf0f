"""confluent-kafka (librdkafka) over SASL_SSL, driven by tests/security.rs.

roundtrip BOOTSTRAP CA USER PASSWORD MECHANISM TOPIC COUNT
    Creates TOPIC, produces COUNT messages "s<n>" with an idempotent
    producer, reads them back as a consumer group that commits, and prints
    {"delivered": N, "consumed": [...], "errors": [...]}.

login BOOTSTRAP CA USER PASSWORD MECHANISM
    Asks for metadata once and prints {"ok": true} or {"ok": false, "error": "..."}.

kafka-python BOOTSTRAP CA USER PASSWORD MECHANISM TOPIC COUNT
    The same round trip with kafka-python (its own protocol code, not
    librdkafka): prints {"delivered": N, "consumed": [...]} or {"error": "..."}.
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


def kafka_python(bootstrap, ca, user, password, mechanism, topic, count):
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.errors import KafkaError

    common = dict(bootstrap_servers=bootstrap, security_protocol="SASL_SSL", ssl_cafile=ca,
                  sasl_mechanism=mechanism, sasl_plain_username=user, sasl_plain_password=password)
    try:
        producer = KafkaProducer(**common)
        futures = [producer.send(topic, f"k{n}".encode()) for n in range(count)]
        producer.flush()
        delivered = sum(1 for future in futures if future.succeeded())
        consumer = KafkaConsumer(topic, group_id="secure-kafka-python", auto_offset_reset="earliest",
                                 consumer_timeout_ms=15000, **common)
        consumed = []
        for message in consumer:
            consumed.append(message.value.decode())
            if len(consumed) == count:
                break
        consumer.close()
        print(json.dumps({"delivered": delivered, "consumed": sorted(consumed)}))
    except KafkaError as error:
        print(json.dumps({"error": f"{type(error).__name__}: {error}"}))


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "roundtrip":
        roundtrip(*args[:6], int(args[6]))
    elif command == "login":
        login(*args)
    elif command == "kafka-python":
        kafka_python(*args[:6], int(args[6]))
    else:
        sys.exit(f"unknown command {command}")
