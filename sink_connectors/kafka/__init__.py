"""``kafkawriter``: rows to Kafka topics (Debezium, FlinkX JSON or Sluice Avro), exactly once."""
