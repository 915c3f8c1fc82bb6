"""Field gateway: collectors → decode/validate → durable buffer → sinks."""
