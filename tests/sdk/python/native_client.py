"""Runs one scenario against the bridge's native surfaces with the official OpenAI or Anthropic
Python SDK and prints ONE JSON line with what the SDK observed. It asserts nothing: tests/native.rs
does.

    python native_client.py BASE_URL API_KEY SCENARIO [MODEL]
    python native_client.py BASE_URL API_KEY SCENARIO@MODEL,SCENARIO@MODEL,...

BASE_URL is the bridge's `http://host:port/v1` (the Anthropic SDK is given the part before `/v1`:
it adds `/v1/messages` itself). MODEL overrides the scenario's model: `gpt-5` (a `responses` route)
for the OpenAI scenarios, `claude-sonnet-4-6` (a `bedrock` route) for the Anthropic ones. The second
form runs several scenarios of one SDK in turn (an interpreter start and an SDK import cost seconds)
and prints {"sdk", "sdk_version", "runs": [one observation per scenario, in order]}.

The mock Salesforce answers `Echo: <last user text>`; offered function tools, it calls the first
with `{"echo": "<last user text>"}`; given a tool's result last, it answers
`Tool <call id> said: <result>`.

OpenAI SDK scenarios:
    chat_text               chat.completions.create, a system and a user message
    chat_tools_two_turns    a get_weather tool: the call, then its result, then the text
    chat_tools_stream       the same first turn streamed; the call assembled from the deltas
    chat_stream_timing      a streamed text answer; when each chunk arrived
    chat_usage_reasoning    reasoning_effort "low": the usage with its reasoning tokens
    chat_midstream_failure  a stream that fails after it started: what the SDK raises
    chat_on_bedrock         chat_text, the two tool turns, the streamed call (on the Claude route)
    responses_create        responses.create with a function tool in two turns
    responses_stream        the same with responses.stream, collecting event types
    responses_text          responses.create with text only (a route served through the core)
    responses_text_stream   the same, streamed
    responses_midstream_failure  a Responses stream that fails after it started
Anthropic SDK scenarios:
    messages_create         messages.create, x-api-key
    messages_create_bearer  the same presenting the key as Authorization: Bearer
    messages_stream         messages.stream: text_stream, then get_final_message
    messages_tools_two_turns  a get_weather tool: tool_use, then tool_result, then the text
    messages_tools_stream   the first turn streamed: the final message's tool_use input
    messages_cache_control  a system block with cache_control
    messages_error          messages.create expected to fail (the test injects the cause)
    messages_wrong_key      the same, presenting a key the bridge does not accept
    messages_bad_request    a message with a role that does not exist
    messages_retry_429      the SDK's own retries on (the test injects 429s)
    messages_midstream_failure  a stream that fails after it started
    count_tokens            messages.count_tokens (what it answers, or what it raises)
    models_list             models.list

Validation: every answer is checked against the SDK's own types strictly, except a Responses
answer passed through from the upstream (Responses on `gpt-5`), read as the SDK reads it by default,
leniently: its shape is the upstream's, and the mock's lacks members the SDK's types require
(`tools`, `tool_choice`, `parallel_tool_calls`, `input_tokens_details.cache_write_tokens`).

An SDK exception that a scenario does not expect is observed as {"error": class name, "status",
"type"}. SDK retries are off (max_retries=0) except in messages_retry_429.
"""

import importlib
import json
import sys
import time

# Imported on demand (each takes seconds to import): only the SDK that the scenarios drive.
openai = None
anthropic = None

SYSTEM = "Be terse."
USER = "What is the weather in Paris?"
TOOL_OUTPUT = "sunny and 21 C"
TIMING_TEXT = "one two three four five six seven"
GPT_MODEL = "gpt-5"
CLAUDE_MODEL = "claude-sonnet-4-6"

WEATHER_PARAMETERS = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}
CHAT_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": WEATHER_PARAMETERS,
        },
    }
]
RESPONSES_TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": WEATHER_PARAMETERS,
    }
]
ANTHROPIC_TOOLS = [
    {
        "name": "get_weather",
        "description": "The weather in a city",
        "input_schema": WEATHER_PARAMETERS,
    }
]


def dump(model):
    """A pydantic model (or None) as plain JSON values."""
    return None if model is None else model.model_dump(mode="json", exclude_none=True)


def raised(error):
    """What an SDK exception says, message included (the scenarios that expect one)."""
    return {
        "class": type(error).__name__,
        "bases": [base.__name__ for base in type(error).__mro__],
        "status": getattr(error, "status_code", None),
        "type": getattr(error, "type", None),
        "message": str(error)[:500],
    }


# --- OpenAI: Chat Completions -------------------------------------------------------------------


def chat_text(client, model):
    response = client.chat.completions.create(
        model=model,
        messages=[
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": USER},
        ],
    )
    choice = response.choices[0]
    return {
        "object": response.object,
        "model": response.model,
        "text": choice.message.content,
        "finish_reason": choice.finish_reason,
        "usage": dump(response.usage),
    }


def calls(message):
    return [
        {
            "id": call.id,
            "type": call.type,
            "name": call.function.name,
            "arguments": call.function.arguments,
        }
        for call in message.tool_calls or []
    ]


def chat_tools_two_turns(client, model):
    messages = [{"role": "user", "content": USER}]
    first = client.chat.completions.create(model=model, messages=messages, tools=CHAT_TOOLS)
    message = first.choices[0].message
    tool_calls = calls(message)
    messages.append(message.model_dump(mode="json", exclude_none=True))
    for call in tool_calls:
        messages.append({"role": "tool", "tool_call_id": call["id"], "content": TOOL_OUTPUT})
    second = client.chat.completions.create(model=model, messages=messages, tools=CHAT_TOOLS)
    return {
        "model": first.model,
        "first": {
            "finish_reason": first.choices[0].finish_reason,
            "content": message.content,
            "tool_calls": tool_calls,
        },
        "second": {
            "finish_reason": second.choices[0].finish_reason,
            "text": second.choices[0].message.content,
            "tool_calls": calls(second.choices[0].message),
        },
    }


def chat_tools_stream(client, model):
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": USER}],
        tools=CHAT_TOOLS,
        stream=True,
    )
    # As the SDK's docs show: each call arrives in pieces keyed by index; the first piece has the
    # id and the name, the arguments come as string fragments.
    assembled = {}
    text = ""
    finish_reason = None
    chunks = 0
    argument_pieces = 0
    models = set()
    for chunk in stream:
        chunks += 1
        models.add(chunk.model)
        for choice in chunk.choices:
            delta = choice.delta
            text += delta.content or ""
            for piece in delta.tool_calls or []:
                call = assembled.setdefault(piece.index, {"id": None, "name": None, "arguments": ""})
                if piece.id:
                    call["id"] = piece.id
                if piece.function is not None:
                    if piece.function.name:
                        call["name"] = piece.function.name
                    if piece.function.arguments:
                        call["arguments"] += piece.function.arguments
                        argument_pieces += 1
            if choice.finish_reason:
                finish_reason = choice.finish_reason
    return {
        "chunks": chunks,
        "models": sorted(models),
        "text": text,
        "finish_reason": finish_reason,
        "tool_calls": [assembled[index] for index in sorted(assembled)],
        "argument_pieces": argument_pieces,
    }


def chat_stream_timing(client, model):
    start = time.monotonic()
    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": TIMING_TEXT}], stream=True
    )
    arrivals = []
    text = ""
    for chunk in stream:
        content = "".join(choice.delta.content or "" for choice in chunk.choices)
        if content:
            arrivals.append(round(time.monotonic() - start, 4))
            text += content
    return {"text": text, "arrivals": arrivals, "done": round(time.monotonic() - start, 4)}


def chat_usage_reasoning(client, model):
    response = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": USER}],
        reasoning_effort="low",
    )
    return {"text": response.choices[0].message.content, "usage": dump(response.usage)}


def chat_midstream_failure(client, model):
    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": TIMING_TEXT}], stream=True
    )
    text = ""
    chunks = 0
    try:
        for chunk in stream:
            chunks += 1
            text += "".join(choice.delta.content or "" for choice in chunk.choices)
    except openai.OpenAIError as error:
        return {"chunks": chunks, "text": text, "raised": raised(error)}
    return {"chunks": chunks, "text": text, "raised": None}


def chat_on_bedrock(client, model):
    return {
        "text": chat_text(client, model),
        "tools": chat_tools_two_turns(client, model),
        "tools_stream": chat_tools_stream(client, model),
    }


# --- OpenAI: Responses --------------------------------------------------------------------------


def output_summary(response):
    items = []
    for item in response.output:
        if item.type == "function_call":
            items.append(
                {
                    "type": item.type,
                    "call_id": item.call_id,
                    "name": item.name,
                    "arguments": item.arguments,
                }
            )
        elif item.type == "message":
            items.append({"type": item.type, "role": item.role, "text": "".join(
                part.text for part in item.content if part.type == "output_text")})
        else:
            items.append({"type": item.type})
    return {
        "object": response.object,
        "model": response.model,
        "status": response.status,
        "output": items,
        "output_text": response.output_text,
        "usage": dump(response.usage),
    }


def second_input(first):
    """The conversation after the first turn: the user's message, the calls, their outputs."""
    items = [{"role": "user", "content": USER}]
    for item in first.output:
        if item.type == "function_call":
            items.append(
                {
                    "type": "function_call",
                    "call_id": item.call_id,
                    "name": item.name,
                    "arguments": item.arguments,
                }
            )
            items.append(
                {"type": "function_call_output", "call_id": item.call_id, "output": TOOL_OUTPUT}
            )
    return items


def responses_create(client, model):
    first = client.responses.create(model=model, input=USER, tools=RESPONSES_TOOLS)
    second = client.responses.create(
        model=model, input=second_input(first), tools=RESPONSES_TOOLS
    )
    return {"first": output_summary(first), "second": output_summary(second)}


def streamed_turn(client, model, input, tools):
    kwargs = {"tools": tools} if tools else {}
    types = []
    deltas = ""
    with client.responses.stream(model=model, input=input, **kwargs) as stream:
        for event in stream:
            types.append(event.type)
            if event.type == "response.output_text.delta":
                deltas += event.delta
        final = stream.get_final_response()
    return final, {"types": types, "deltas": deltas, "final": output_summary(final)}


def responses_stream(client, model):
    first, first_seen = streamed_turn(client, model, USER, RESPONSES_TOOLS)
    _, second_seen = streamed_turn(client, model, second_input(first), RESPONSES_TOOLS)
    return {"first": first_seen, "second": second_seen}


def responses_text(client, model):
    response = client.responses.create(model=model, instructions=SYSTEM, input=USER)
    return output_summary(response)


def responses_text_stream(client, model):
    _, seen = streamed_turn(client, model, USER, None)
    return seen


def responses_midstream_failure(client, model):
    types = []
    deltas = ""
    try:
        stream = client.responses.create(model=model, input=TIMING_TEXT, stream=True)
        for event in stream:
            types.append(event.type)
            if event.type == "response.output_text.delta":
                deltas += event.delta
    except openai.OpenAIError as error:
        return {"types": types, "deltas": deltas, "raised": raised(error)}
    return {"types": types, "deltas": deltas, "raised": None}


# --- Anthropic: Messages ------------------------------------------------------------------------


def blocks(message):
    seen = []
    for block in message.content:
        if block.type == "text":
            seen.append({"type": "text", "text": block.text})
        elif block.type == "tool_use":
            seen.append({"type": "tool_use", "id": block.id, "name": block.name,
                         "input": block.input})
        else:
            seen.append({"type": block.type})
    return seen


def message_summary(message):
    return {
        "id": message.id,
        "type": message.type,
        "role": message.role,
        "model": message.model,
        "content": blocks(message),
        "stop_reason": message.stop_reason,
        "usage": dump(message.usage),
    }


def messages_create(client, model):
    raw = client.messages.with_raw_response.create(
        model=model,
        max_tokens=256,
        system=SYSTEM,
        messages=[{"role": "user", "content": USER}],
    )
    seen = message_summary(raw.parse())
    seen["retries_taken"] = raw.retries_taken
    seen["request_id"] = raw.headers.get("request-id") or raw.headers.get("x-request-id")
    return seen


def messages_stream(client, model):
    with client.messages.stream(
        model=model,
        max_tokens=256,
        system=SYSTEM,
        messages=[{"role": "user", "content": USER}],
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    return {"pieces": len(pieces), "text": "".join(pieces), "final": message_summary(final)}


def messages_tools_two_turns(client, model):
    messages = [{"role": "user", "content": USER}]
    first = client.messages.create(
        model=model, max_tokens=256, messages=messages, tools=ANTHROPIC_TOOLS
    )
    messages.append({"role": "assistant", "content": [
        block.model_dump(mode="json", exclude_none=True) for block in first.content]})
    messages.append({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": block.id, "content": TOOL_OUTPUT}
        for block in first.content if block.type == "tool_use"]})
    second = client.messages.create(
        model=model, max_tokens=256, messages=messages, tools=ANTHROPIC_TOOLS
    )
    return {"first": message_summary(first), "second": message_summary(second)}


def messages_tools_stream(client, model):
    json_pieces = 0
    types = []
    with client.messages.stream(
        model=model,
        max_tokens=256,
        messages=[{"role": "user", "content": USER}],
        tools=ANTHROPIC_TOOLS,
    ) as stream:
        for event in stream:
            types.append(event.type)
            if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                json_pieces += 1
        final = stream.get_final_message()
    return {"types": types, "json_pieces": json_pieces, "final": message_summary(final)}


def messages_cache_control(client, model):
    message = client.messages.create(
        model=model,
        max_tokens=256,
        system=[{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": USER}],
    )
    return message_summary(message)


def messages_error(client, model):
    try:
        client.messages.create(
            model=model, max_tokens=256, messages=[{"role": "user", "content": USER}]
        )
    except anthropic.AnthropicError as error:
        return {"raised": raised(error), "body": getattr(error, "body", None)}
    return {"raised": None}


def messages_bad_request(client, model):
    try:
        client.messages.create(
            model=model, max_tokens=256, messages=[{"role": "robot", "content": USER}]
        )
    except anthropic.AnthropicError as error:
        return {"raised": raised(error), "body": getattr(error, "body", None)}
    return {"raised": None}


def messages_midstream_failure(client, model):
    pieces = []
    try:
        with client.messages.stream(
            model=model,
            max_tokens=256,
            messages=[{"role": "user", "content": TIMING_TEXT}],
        ) as stream:
            for text in stream.text_stream:
                pieces.append(text)
    except anthropic.AnthropicError as error:
        return {"text": "".join(pieces), "raised": raised(error),
                "body": getattr(error, "body", None)}
    return {"text": "".join(pieces), "raised": None}


def count_tokens(client, model):
    try:
        counted = client.messages.count_tokens(
            model=model, system=SYSTEM, messages=[{"role": "user", "content": USER}]
        )
    except anthropic.AnthropicError as error:
        return {"raised": raised(error), "body": getattr(error, "body", None)}
    return {"input_tokens": counted.input_tokens, "raised": None}


def models_list(client, _model):
    listed = list(client.models.list())
    return {
        "ids": [model.id for model in listed],
        "types": sorted({model.type for model in listed}),
        "display_names": [model.display_name for model in listed],
    }


OPENAI_SCENARIOS = {
    "chat_text": chat_text,
    "chat_tools_two_turns": chat_tools_two_turns,
    "chat_tools_stream": chat_tools_stream,
    "chat_stream_timing": chat_stream_timing,
    "chat_usage_reasoning": chat_usage_reasoning,
    "chat_midstream_failure": chat_midstream_failure,
    "chat_on_bedrock": chat_on_bedrock,
    "responses_create": responses_create,
    "responses_stream": responses_stream,
    "responses_text": responses_text,
    "responses_text_stream": responses_text_stream,
    "responses_midstream_failure": responses_midstream_failure,
}
ANTHROPIC_SCENARIOS = {
    "messages_create": messages_create,
    "messages_create_bearer": messages_create,
    "messages_stream": messages_stream,
    "messages_tools_two_turns": messages_tools_two_turns,
    "messages_tools_stream": messages_tools_stream,
    "messages_cache_control": messages_cache_control,
    "messages_error": messages_error,
    "messages_wrong_key": messages_error,
    "messages_bad_request": messages_bad_request,
    "messages_retry_429": messages_create,
    "messages_midstream_failure": messages_midstream_failure,
    "count_tokens": count_tokens,
    "models_list": models_list,
}
DEFAULT_MODELS = {"chat_on_bedrock": CLAUDE_MODEL}
# The routes whose answers to the scenario's API are read leniently (see the module docs).
LENIENT = {"responses": GPT_MODEL}


def lenient(scenario, model):
    """Whether this scenario's answers on this model are read leniently (see the module docs)."""
    api = "messages" if scenario in ANTHROPIC_SCENARIOS else scenario.split("_")[0]
    return LENIENT.get(api) == model


def run_one(base_url, api_key, scenario, model):
    """One scenario's observation."""
    if scenario in OPENAI_SCENARIOS:
        model = model or DEFAULT_MODELS.get(scenario, GPT_MODEL)
        client = openai.OpenAI(
            base_url=base_url,
            api_key=api_key,
            max_retries=0,
            timeout=20.0,
            _strict_response_validation=not lenient(scenario, model),
        )
        run = OPENAI_SCENARIOS[scenario]
        sdk_error = openai.APIError
    else:
        model = model or CLAUDE_MODEL
        root = base_url[: -len("/v1")] if base_url.endswith("/v1") else base_url
        if scenario == "messages_create_bearer":
            key = {"auth_token": api_key, "api_key": None}
        elif scenario == "messages_wrong_key":
            key = {"api_key": "sk-not-a-key-of-this-bridge"}
        else:
            key = {"api_key": api_key}
        client = anthropic.Anthropic(
            base_url=root,
            max_retries=2 if scenario == "messages_retry_429" else 0,
            timeout=20.0,
            _strict_response_validation=not lenient(scenario, model),
            **key,
        )
        run = ANTHROPIC_SCENARIOS[scenario]
        sdk_error = anthropic.APIError
    seen = {"scenario": scenario, "requested_model": model}
    try:
        seen.update(run(client, model))
    except sdk_error as error:
        seen["error"] = type(error).__name__
        seen["status"] = getattr(error, "status_code", None)
        seen["type"] = getattr(error, "type", None)
    return seen


def main():
    global openai, anthropic
    names = [*OPENAI_SCENARIOS, *ANTHROPIC_SCENARIOS]
    usage = f"usage: {sys.argv[0]} BASE_URL API_KEY {{{'|'.join(names)}}}[@MODEL][,...] [MODEL]"
    if len(sys.argv) not in (4, 5):
        sys.exit(usage)
    base_url, api_key, items = sys.argv[1:4]
    runs = []
    for item in items.split(","):
        scenario, _, model = item.partition("@")
        if scenario not in names:
            sys.exit(usage)
        runs.append((scenario, model or (sys.argv[4] if len(sys.argv) == 5 else None)))
    families = {"openai" if scenario in OPENAI_SCENARIOS else "anthropic" for scenario, _ in runs}
    if len(families) != 1:
        sys.exit("one SDK per run: the scenarios mix the OpenAI and the Anthropic SDKs")
    (family,) = families
    sdk = importlib.import_module(family)
    if family == "openai":
        openai = sdk
    else:
        anthropic = sdk
    seen = {"sdk": family, "sdk_version": sdk.__version__}
    observed = [run_one(base_url, api_key, scenario, model) for scenario, model in runs]
    if "," in items:
        seen["runs"] = observed
    else:
        seen.update(observed[0])
    print(json.dumps(seen), flush=True)


if __name__ == "__main__":
    main()
