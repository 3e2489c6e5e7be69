"""The queue: everything that speaks to the broker, and the only code that imports kombu or amqp.

    broker.py        opening the broker: RabbitMQ with heartbeats and confirms, or the embedded SQLite queue
    topology.py      the exchange and the three queues (work, delay, dead), classic or quorum
    publisher.py     the `EventPublisher` port: persistent JSON events, confirmed per batch before `publish()` returns
    dead_letters.py  the `DeadLetters` port: read in place, replay, discard
    consumer.py      the consumer: carries out the handler's decisions (ack, retry later, dead-letter)

An adapter of the worker's own: imports kombu, amqp, SQLAlchemy (the embedded queue's transport), `config` and
`sync_worker.core`. The composition root hands it to the worker, the intake, the poller, the CLI and the console.
"""
