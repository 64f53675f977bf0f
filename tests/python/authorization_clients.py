"""Real Kafka clients as users with narrow grants, driven by tests/authorization.rs.
Each command prints one JSON object.

loader BOOTSTRAP CA USER PASSWORD TOPIC GROUP OTHER_TOPIC OTHER_GROUP COUNT
    confluent-kafka: reads COUNT records of TOPIC as GROUP, committing each,
    then tries to produce to TOPIC, to join OTHER_GROUP and to read
    OTHER_TOPIC: {"consumed", "committed", "produce_error", "other_group_error",
    "other_topic_error"}.

topics BOOTSTRAP CA USER PASSWORD
    kafka-python (its own protocol code): the topics this user can see:
    {"topics": [...]} or {"error": "..."}.
"""
import json
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition


def security(bootstrap, ca, user, password):
    return {
        "bootstrap.servers": bootstrap,
        "security.protocol": "SASL_SSL",
        "ssl.ca.location": ca,
        "sasl.mechanisms": "SCRAM-SHA-256",
        "sasl.username": user,
        "sasl.password": password,
    }


def first_error(consumer, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error():
            return message.error().name()
    return None


def loader(bootstrap, ca, user, password, topic, group, other_topic, other_group, count):
    config = security(bootstrap, ca, user, password)
    consumer = Consumer({**config, "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    consumed, errors = 0, []
    deadline = time.time() + 60
    while consumed < count and time.time() < deadline:
        message = consumer.poll(1.0)
        if message is None:
            continue
        if message.error():
            errors.append(message.error().name())
            continue
        consumed += 1
        consumer.commit(message=message, asynchronous=False)
    committed = [tp.offset for tp in consumer.committed([TopicPartition(topic, 0)], timeout=10)]
    consumer.close()

    delivery = []
    producer = Producer({**config, "enable.idempotence": False, "message.timeout.ms": 5000})
    producer.produce(topic, value=b"not allowed", on_delivery=lambda error, message: delivery.append(error))
    producer.flush(10)
    produce_error = delivery[0].name() if delivery and delivery[0] else None

    other = Consumer({**config, "group.id": other_group, "auto.offset.reset": "earliest"})
    other.subscribe([topic])
    other_group_error = first_error(other, 15)
    other.close()

    reader = Consumer({**config, "group.id": group, "auto.offset.reset": "earliest"})
    reader.subscribe([other_topic])
    other_topic_error = first_error(reader, 15)
    reader.close()
    print(json.dumps({"consumed": consumed, "committed": committed, "errors": errors,
                      "produce_error": produce_error, "other_group_error": other_group_error,
                      "other_topic_error": other_topic_error}))


def topics(bootstrap, ca, user, password):
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError
    try:
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, security_protocol="SASL_SSL", ssl_cafile=ca,
                                 sasl_mechanism="SCRAM-SHA-256", sasl_plain_username=user,
                                 sasl_plain_password=password)
        print(json.dumps({"topics": sorted(consumer.topics())}))
        consumer.close()
    except KafkaError as error:
        print(json.dumps({"error": f"{type(error).__name__}: {error}"}))


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "loader":
        loader(*args[:8], int(args[8]))
    elif command == "topics":
        topics(*args)
    else:
        sys.exit(f"unknown command {command}")
