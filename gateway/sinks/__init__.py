"""Where buffered readings go: PostgreSQL directly, or (later) an MQTT uplink."""
