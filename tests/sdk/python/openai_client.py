"""Runs one scenario against the bridge with the official OpenAI Python SDK and prints ONE JSON
line with what the SDK observed. It asserts nothing: tests/sdk.rs does.

    python openai_client.py BASE_URL API_KEY SCENARIO

BASE_URL is the bridge's `http://host:port/v1`. The scenarios (the same in openai_client.mjs):

    chat               chat.completions.create: a system and a user message, temperature 0.2
    chat_stream        the same, streamed
    chat_stream_usage  the same, streamed with stream_options.include_usage
    completion         the legacy completions.create with a prompt and max_tokens 50
    models             models.list()
    unknown_model      chat with a model that no route names
    embeddings         embeddings.create of two texts with the SDK's default encoding (base64)
    embeddings_float   the same with encoding_format="float"

An SDK exception (any scenario) is observed as {"error": class name, "status", "type", "code",
"param"}; the message is left out so that nothing the server echoes reaches the test output.
The SDK's own retries are off (max_retries=0): only the bridge retries.
"""

import json
import sys

import openai

SYSTEM = "Be terse."
USER = "Cherry pie recipe?"
PROMPT = "Invent 3 fun names for donuts"
CHAT_MODEL = "gpt-4o-mini"
COMPLETION_MODEL = "gpt-4o"
UNKNOWN_MODEL = "no-such-model"
EMBEDDINGS_MODEL = "text-embedding-ada-002"
EMBEDDINGS_INPUT = ["cherry pie", "apple pie"]


def usage(usage):
    if usage is None:
        return None
    seen = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
    details = getattr(usage, "prompt_tokens_details", None)
    if details is not None:
        seen["cached_tokens"] = details.cached_tokens
    return seen


def messages():
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": USER},
    ]


def chat(client, model=CHAT_MODEL):
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=messages(), temperature=0.2
    )
    response = raw.parse()
    choice = response.choices[0]
    return {
        "object": response.object,
        "model": response.model,
        "choices": len(response.choices),
        "role": choice.message.role,
        "text": choice.message.content,
        "finish_reason": choice.finish_reason,
        "usage": usage(response.usage),
        "ignored_params": raw.headers.get("x-sfbridge-ignored-params"),
        # What the SDK offers for support tickets, read from x-request-id.
        "request_id": response._request_id,
    }


def chat_stream(client, include_usage):
    extra = {"stream_options": {"include_usage": True}} if include_usage else {}
    stream = client.chat.completions.create(
        model=CHAT_MODEL, messages=messages(), stream=True, **extra
    )
    chunks = []
    for chunk in stream:
        chunks.append(chunk)
    text = "".join(
        choice.delta.content or "" for chunk in chunks for choice in chunk.choices
    )
    last = chunks[-1] if chunks else None
    return {
        "chunks": len(chunks),
        "text": text,
        "objects": sorted({chunk.object for chunk in chunks}),
        "models": sorted({chunk.model for chunk in chunks}),
        "ids": len({chunk.id for chunk in chunks}),
        "role": next(
            (c.delta.role for k in chunks for c in k.choices if c.delta.role), None
        ),
        # The finish reason the last chunk that has a choice carries, and what the very last
        # chunk is (with include_usage: no choices, only the usage).
        "finish_reason": next(
            (k.choices[0].finish_reason for k in reversed(chunks) if k.choices), None
        ),
        "last_chunk_choices": len(last.choices) if last else None,
        "last_chunk_usage": usage(last.usage) if last else None,
        "chunks_with_usage": sum(1 for chunk in chunks if chunk.usage is not None),
    }


def completion(client):
    response = client.completions.create(
        model=COMPLETION_MODEL, prompt=PROMPT, max_tokens=50
    )
    choice = response.choices[0]
    return {
        "object": response.object,
        "model": response.model,
        "choices": len(response.choices),
        "text": choice.text,
        "finish_reason": choice.finish_reason,
        "usage": usage(response.usage),
    }


def models(client):
    page = client.models.list()
    listed = list(page)
    return {
        "ids": [model.id for model in listed],
        "objects": sorted({model.object for model in listed}),
    }


def embeddings(client, **format):
    raw = client.embeddings.with_raw_response.create(
        model=EMBEDDINGS_MODEL, input=EMBEDDINGS_INPUT, **format
    )
    # What travelled: a base64 string or a list of numbers, as the SDK asked.
    wire = raw.http_response.json()["data"][0]["embedding"]
    response = raw.parse()
    return {
        "object": response.object,
        "model": response.model,
        "wire_encoding": "base64" if isinstance(wire, str) else "float",
        "indexes": [item.index for item in response.data],
        "dimensions": [len(item.embedding) for item in response.data],
        "heads": [[float(x) for x in item.embedding[:8]] for item in response.data],
        "usage": {
            "prompt_tokens": response.usage.prompt_tokens,
            "total_tokens": response.usage.total_tokens,
        },
    }


SCENARIOS = {
    "chat": chat,
    "chat_stream": lambda client: chat_stream(client, include_usage=False),
    "chat_stream_usage": lambda client: chat_stream(client, include_usage=True),
    "completion": completion,
    "models": models,
    "unknown_model": lambda client: chat(client, model=UNKNOWN_MODEL),
    "embeddings": embeddings,
    "embeddings_float": lambda client: embeddings(client, encoding_format="float"),
}


def main():
    if len(sys.argv) != 4 or sys.argv[3] not in SCENARIOS:
        sys.exit(f"usage: {sys.argv[0]} BASE_URL API_KEY {{{'|'.join(SCENARIOS)}}}")
    base_url, api_key, scenario = sys.argv[1:]
    client = openai.OpenAI(
        base_url=base_url,
        api_key=api_key,
        max_retries=0,
        timeout=20.0,
        # Validate every answer against the SDK's own types instead of trusting it; except the
        # default embeddings call, whose base64 strings the SDK decodes only after validating
        # them as lists of floats (strict validation refuses OpenAI's own answers there too).
        _strict_response_validation=scenario != "embeddings",
    )
    seen = {"sdk": "openai", "sdk_version": openai.__version__, "scenario": scenario}
    try:
        seen.update(SCENARIOS[scenario](client))
    except openai.APIError as error:
        seen["error"] = type(error).__name__
        seen["status"] = getattr(error, "status_code", None)
        seen["type"] = error.type
        seen["code"] = error.code
        seen["param"] = error.param
    print(json.dumps(seen), flush=True)


if __name__ == "__main__":
    main()
