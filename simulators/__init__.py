"""Simulated demo plant: physical models and the Modbus/MQTT servers that expose them."""
