"""One Kafka consumer per worker for all the partitions a source gives it.

Bytewax's `KafkaSource` builds one consumer per Kafka partition: a flow reading four
topics ran 14 to 26 consumers, each with its own librdkafka threads, its own fetch
requests to the broker and its own statistics parsed in Python every second, and each
asked in turn (with a 1 ms wait when empty) on every worker step. Here the partitions
stay Bytewax's unit of recovery (one snapshot, the next offset, per partition, under
the same names, so existing recovery stores resume where they were), but all the
partitions built on one worker read through one consumer: the first partition asked
in a step fetches whatever is buffered for all of them and hands each its records.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, cast

from bytewax.connectors.kafka import KafkaError, KafkaSourceMessage
from confluent_kafka import Consumer, Message, TopicPartition
from confluent_kafka import KafkaError as ConfluentError

from dataflows.common import SourceItem

Key = tuple[str | None, int | None]  # (topic, partition), as a message names them


def source_item(msg: Message) -> SourceItem:
    """The record (or the error about it) as Bytewax's own Kafka partition emits it."""
    kafka_msg: KafkaSourceMessage[bytes | None, bytes | None] = KafkaSourceMessage(
        key=msg.key(),
        value=msg.value(),
        topic=msg.topic(),
        headers=cast(list[tuple[str, bytes]], msg.headers() or []),
        latency=msg.latency(),
        offset=msg.offset(),
        partition=msg.partition(),
        timestamp=msg.timestamp(),
    )
    error = msg.error()
    return kafka_msg if error is None else KafkaError(error, kafka_msg)


class Inbox:
    """What the shared consumer has read for one partition and not yet handed over."""

    def __init__(self, consumer: SharedConsumer, topic: str, partition: int) -> None:
        self.consumer = consumer
        self.topic, self.partition = topic, partition
        self.key: Key = (topic, partition)
        self.items: list[SourceItem] = []
        self.eof = False  # only with enable.partition.eof (a source that does not tail)

    def take(self) -> list[SourceItem]:
        """This partition's records so far, after fetching what the consumer holds."""
        self.consumer.pump(self)
        items, self.items = self.items, []
        return items

    def close(self) -> None:
        self.consumer.leave(self)


class SharedConsumer:
    """A consumer assigned, partition by partition, to whatever one worker reads."""

    def __init__(self, config: dict[str, Any], batch_size: int, on_empty: Callable[[], None]):
        self.config = config
        self.batch_size = batch_size
        self.on_empty = on_empty  # forget this consumer once its last partition closes
        self.kafka: Consumer | None = None
        self.inboxes: dict[Key, Inbox] = {}

    def join(self, topic: str, partition: int, start: int) -> Inbox:
        if self.kafka is None:
            self.kafka = Consumer(self.config)
        inbox = Inbox(self, topic, partition)
        self.inboxes[inbox.key] = inbox
        self.kafka.incremental_assign([TopicPartition(topic, partition, start)])
        return inbox

    def pump(self, caller: Inbox) -> None:
        """Route whatever the consumer has buffered to each partition's inbox. An error
        about the client rather than one partition (the broker is away) goes to the
        caller, so it is reported once per poll, as before once per consumer."""
        if self.kafka is None:
            return
        for msg in self.kafka.consume(self.batch_size, 0):
            error = msg.error()
            inbox = self.inboxes.get((msg.topic(), msg.partition()))
            if error is not None and error.code() == ConfluentError._PARTITION_EOF:
                if inbox is not None:
                    inbox.eof = True
                continue
            (inbox or caller).items.append(source_item(msg))

    def leave(self, inbox: Inbox) -> None:
        if self.inboxes.get(inbox.key) is not inbox:
            return
        del self.inboxes[inbox.key]
        if self.kafka is not None:
            if self.inboxes:
                self.kafka.incremental_unassign([TopicPartition(inbox.topic, inbox.partition)])
            else:
                self.kafka.close()
                self.kafka = None
                self.on_empty()


class ConsumerPool:
    """One shared consumer per worker thread (Bytewax builds and polls a worker's
    partitions on that worker's thread; workers of one process are threads)."""

    def __init__(self, config: dict[str, Any], batch_size: int) -> None:
        self.config = config
        self.batch_size = batch_size
        self.lock = threading.Lock()
        self.by_thread: dict[int, SharedConsumer] = {}

    def for_this_worker(self) -> SharedConsumer:
        ident = threading.get_ident()
        with self.lock:
            shared = self.by_thread.get(ident)
            if shared is None:
                shared = SharedConsumer(
                    dict(self.config), self.batch_size, lambda: self._forget(ident)
                )
                self.by_thread[ident] = shared
            return shared

    def _forget(self, ident: int) -> None:
        with self.lock:
            self.by_thread.pop(ident, None)
