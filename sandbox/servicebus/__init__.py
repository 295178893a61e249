"""A Service Bus emulator that the real azure-servicebus SDK talks to over AMQP 1.0."""
