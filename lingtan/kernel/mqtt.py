"""MQTT connection settings shared by every component (paho-mqtt 2.x)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False


def parse_mqtt_url(url: str) -> BrokerAddress:
    parsed = urlparse(url)
    if parsed.scheme not in ("mqtt", "mqtts"):
        raise ValueError(f"MQTT URL must start with mqtt:// or mqtts://, got {url!r}")
    if not parsed.hostname:
        raise ValueError(f"MQTT URL must look like mqtt://[user:pass@]host:port, got {url!r}")
    tls = parsed.scheme == "mqtts"
    return BrokerAddress(
        host=parsed.hostname,
        port=parsed.port or (8883 if tls else 1883),
        username=unquote(parsed.username) if parsed.username else None,
        password=unquote(parsed.password) if parsed.password else None,
        tls=tls,
    )


def make_client(url: str, protocol: str, client_id: str = "", *, persistent: bool = False,
                ca_file: Path | None = None, cert_file: Path | None = None,
                key_file: Path | None = None, manual_ack: bool = False
                ) -> tuple[mqtt.Client, BrokerAddress]:
    """A paho client configured for the broker at ``url``; the caller connects it.

    ``manual_ack``: QoS 1 messages are acknowledged by ``client.ack`` once they are stored,
    not when ``on_message`` returns.

    ``persistent`` asks for a broker-side session that outlives the connection (MQTT 3.1.1:
    clean_session=False here; MQTT 5: pass ``connect_kwargs(protocol, True)`` to connect).
    """
    address = parse_mqtt_url(url)
    v5 = protocol == "5"
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        # paho rejects clean_session for MQTT 5, where clean_start goes to connect() instead
        clean_session=None if v5 else not persistent,
        manual_ack=manual_ack,
    )
    if address.username:
        client.username_pw_set(address.username, address.password)
    if address.tls:
        client.tls_set(ca_certs=str(ca_file) if ca_file else None,
                       certfile=str(cert_file) if cert_file else None,
                       keyfile=str(key_file) if key_file else None)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    return client, address


SESSION_EXPIRY_S = 86400  # a gateway or worker may be down a day without its queue being dropped


def connect_kwargs(protocol: str, persistent: bool, expiry_s: int = SESSION_EXPIRY_S) -> dict[str, Any]:
    """Extra ``connect``/``connect_async`` arguments for an MQTT 5 persistent session."""
    if protocol != "5" or not persistent:
        return {}
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = expiry_s
    # False on every (re)connect: the broker keeps our subscriptions and queued QoS 1 messages
    return {"clean_start": False, "properties": props}
