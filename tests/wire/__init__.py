"""Loopback servers speaking the model providers' wire protocols (OpenAI chat completions,
Anthropic messages, Google GenAI generateContent), for offline tests of the API adapters and
of anything that runs them (the runner, the CLI).

    from tests.wire import OpenAIWireServer, Fault
    with OpenAIWireServer(answer="B") as server:
        server.add_faults(Fault(status=429, retry_after="1"))
        ...  # point the SDK at server.base_url()
        server.requests[-1].images[0].data  # exact bytes the model received
"""

from tests.wire.anthropic_wire import AnthropicWireServer
from tests.wire.google_wire import GoogleWireServer
from tests.wire.openai_wire import OpenAIWireServer
from tests.wire.server import (
    Fault,
    ReceivedImage,
    ReceivedRequest,
    WireError,
    WireServer,
)

__all__ = [
    "AnthropicWireServer",
    "Fault",
    "GoogleWireServer",
    "OpenAIWireServer",
    "ReceivedImage",
    "ReceivedRequest",
    "WireError",
    "WireServer",
]
