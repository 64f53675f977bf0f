"""confluent-kafka (librdkafka) watching `relay groups delete`, driven by
tests/groups_delete_loader.rs.

member BOOTSTRAP TOPIC GROUP CLIENT_ID
    Joins GROUP as client CLIENT_ID, polls until it is assigned, prints
    "assigned", then keeps polling until its standard input closes; then
    commits what it read, closes (leaving the group) and prints "closed".

groups BOOTSTRAP
    Prints the consumer groups the broker lists (AdminClient) as a JSON list.
"""
import json
import sys
import threading

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient


def member(bootstrap, topic, group, client_id):
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "client.id": client_id,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    consumer.subscribe([topic])
    stdin_closed = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stdin_closed.set()), daemon=True).start()
    announced, read = False, 0
    while not stdin_closed.is_set():
        message = consumer.poll(0.2)
        if message is not None and not message.error():
            read += 1
        if not announced and consumer.assignment():
            print("assigned", flush=True)
            announced = True
    if read:
        consumer.commit(asynchronous=False)
    consumer.close()
    print("closed", flush=True)


def groups(bootstrap):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    listed = admin.list_consumer_groups(request_timeout=20).result()
    print(json.dumps(sorted(g.group_id for g in listed.valid)))


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    {"member": member, "groups": groups}[command](*args)
