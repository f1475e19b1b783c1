"""The embedded broker: a consumer listing the folder while messages are written never takes one half-written."""

import threading

from kombu import Connection

from sendconn.broker import FilesystemTransport

MESSAGES = 300


def test_messages_written_while_a_consumer_polls_arrive_whole(tmp_path):
    folder = str(tmp_path)
    options = {"data_folder_in": folder, "data_folder_out": folder, "store_processed": False, "polling_interval": 0.001}
    payload = {"body": "x" * 20_000}  # large enough for a write to be seen half done

    def publish():
        with Connection(
            "filesystem://localhost//", transport=FilesystemTransport, transport_options=options
        ) as connection:
            queue = connection.SimpleQueue("wake-ups")
            for number in range(MESSAGES):
                queue.put({**payload, "number": number})

    publisher = threading.Thread(target=publish)
    received = []
    with Connection("filesystem://localhost//", transport=FilesystemTransport, transport_options=options) as connection:
        queue = connection.SimpleQueue("wake-ups")
        publisher.start()
        while len(received) < MESSAGES:
            message = queue.get(timeout=10)
            received.append(message.payload["number"])
            message.ack()
    publisher.join()

    assert sorted(received) == list(range(MESSAGES))
    assert not list(tmp_path.glob("*.partial"))
