"""The OpenAI Agents SDK end to end: its default model (``OpenAIResponsesModel``, i.e.
/v1/responses) through the default client pointed at the gateway under real gunicorn,
with the Ollama emulator behind it."""
import asyncio
import sys

import pytest

if sys.version_info < (3, 9):  # no release of the Agents SDK installs there
    agents = pytest.importorskip("agents")
else:
    import agents

import openai
import pydantic

from ..responses_helpers import assert_event_order, wire

pytestmark = pytest.mark.integration

QUESTION = "Weather in Paris?"


@pytest.fixture(autouse=True)
def no_tracing():
    # Tracing would export to OpenAI's servers; nothing may leave loopback.
    agents.set_tracing_disabled(True)
    yield


def make_agent(calls):
    @agents.function_tool
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        calls.append(city)
        return "Sunny in " + city

    return agents.Agent(name="Forecaster", instructions="You report the weather.",
                        model="llama3.2", tools=[get_weather])


def run(gunicorn_url, body):
    """Run coroutine function ``body`` with a fresh default client (bound to this event loop)."""
    async def main():
        client = openai.AsyncOpenAI(base_url=gunicorn_url, api_key="unused", max_retries=0,
                                    timeout=20)
        agents.set_default_openai_client(client, use_for_tracing=False)
        agents.set_default_openai_api("responses")
        try:
            return await asyncio.wait_for(body(), 60)
        finally:
            await client.close()
    return asyncio.run(main())


def chats(ollama):
    return [r.json for r in ollama.requests if r.path == "/api/chat"]


def check_upstream(ollama, calls):
    first, second = chats(ollama)
    assert first["messages"] == [{"role": "system", "content": "You report the weather."},
                                 {"role": "user", "content": QUESTION}]
    assert [t["function"]["name"] for t in first["tools"]] == ["get_weather"]
    tool = second["messages"][-1]
    assert tool == dict(tool, role="tool", tool_name="get_weather", content="Sunny in " + calls[0])


def test_runner_run_tool_round_trip(gunicorn_url, ollama):
    calls = []
    agent = make_agent(calls)
    result = run(gunicorn_url, lambda: agents.Runner.run(agent, QUESTION))
    assert calls == ["example"]  # the emulator's plausible argument for a string
    assert "Echo: " + QUESTION in result.final_output
    kinds = [item.type for item in result.new_items]
    assert kinds == ["tool_call_item", "tool_call_output_item", "message_output_item"]
    assert [r.response_id.startswith("resp_") for r in result.raw_responses] == [True, True]
    usage = result.context_wrapper.usage
    assert usage.requests == 2 and usage.total_tokens == usage.input_tokens + usage.output_tokens > 0
    check_upstream(ollama, calls)


def test_runner_run_streamed_tool_round_trip(gunicorn_url, ollama):
    calls = []
    agent = make_agent(calls)

    async def body():
        streamed = agents.Runner.run_streamed(agent, QUESTION)
        collected = [event async for event in streamed.stream_events()]
        return streamed, collected

    streamed, events = run(gunicorn_url, body)
    assert calls == ["example"]
    assert "Echo: " + QUESTION in streamed.final_output
    raw = [wire(e.data) for e in events if e.type == "raw_response_event"]
    # two model turns, each a complete stream of its own
    starts = [i for i, e in enumerate(raw) if e["type"] == "response.created"]
    assert len(starts) == 2
    assert_event_order(raw[:starts[1]])
    assert_event_order(raw[starts[1]:])
    text = "".join(e["delta"] for e in raw[starts[1]:] if e["type"] == "response.output_text.delta")
    assert text == streamed.final_output
    named = [e.name for e in events if e.type == "run_item_stream_event"]
    assert named == ["tool_called", "tool_output", "message_output_created"]
    check_upstream(ollama, calls)


def test_runner_continues_with_previous_response_id(gunicorn_url, ollama):
    agent = agents.Agent(name="Echo", instructions="Repeat.", model="llama3.2")

    async def body():
        first = await agents.Runner.run(agent, "My name is Ann")
        second = await agents.Runner.run(agent, "What is my name?",
                                         previous_response_id=first.last_response_id)
        return first, second

    first, second = run(gunicorn_url, body)
    assert first.last_response_id.startswith("resp_")
    assert second.final_output == "Echo: What is my name?"
    # the stored first turn comes back from the gateway, before the new input
    assert chats(ollama)[1]["messages"] == [
        {"role": "system", "content": "Repeat."},
        {"role": "user", "content": "My name is Ann"},
        {"role": "assistant", "content": "Echo: My name is Ann"},
        {"role": "user", "content": "What is my name?"}]


class Forecast(pydantic.BaseModel):
    city: str
    celsius: int


def test_runner_structured_output_type(gunicorn_url, ollama):
    agent = agents.Agent(name="Forecaster", model="llama3.2", output_type=Forecast)
    result = run(gunicorn_url, lambda: agents.Runner.run(agent, "Forecast for Oslo"))
    assert result.final_output == Forecast(city="example", celsius=42)
    assert chats(ollama)[0]["format"]["required"] == ["city", "celsius"]


def test_runner_unknown_model_raises_not_found(gunicorn_url, ollama):
    agent = agents.Agent(name="Nobody", model="no-such-model")
    with pytest.raises(openai.NotFoundError):
        run(gunicorn_url, lambda: agents.Runner.run(agent, "Hi"))
