// Runs one scenario against the bridge with the official Anthropic Node SDK and prints ONE JSON
// line with what the SDK observed. It asserts nothing: tests/native.rs does.
//
//     node anthropic_client.mjs BASE_URL API_KEY SCENARIO [MODEL]
//     node anthropic_client.mjs BASE_URL API_KEY SCENARIO@MODEL,SCENARIO@MODEL,...
//
// BASE_URL is the bridge's `http://host:port/v1`; the SDK is given the part before `/v1` (it adds
// `/v1/messages` itself). MODEL defaults to `claude-sonnet-4-6`, a `bedrock` route. The scenarios
// are those of ../python/native_client.py with the same names and messages; the second form runs
// several in turn and prints {"sdk", "sdk_version", "runs": [one observation per scenario]}:
//
//     messages_create           messages.create, a system and a user message
//     messages_stream           messages.stream: the text events, then finalMessage()
//     messages_tools_two_turns  a get_weather tool: tool_use, then tool_result, then the text
//
// An SDK exception is observed as {"error": class name, "status", "type"}. The SDK's own retries
// are off (maxRetries: 0): only the bridge retries.

import Anthropic from '@anthropic-ai/sdk';
import { VERSION } from '@anthropic-ai/sdk/version';

const SYSTEM = 'Be terse.';
const USER = 'What is the weather in Paris?';
const TOOL_OUTPUT = 'sunny and 21 C';
const TOOLS = [
  {
    name: 'get_weather',
    description: 'The weather in a city',
    input_schema: {
      type: 'object',
      properties: { city: { type: 'string' } },
      required: ['city'],
    },
  },
];

const blocks = (message) =>
  message.content.map((block) => {
    if (block.type === 'text') return { type: 'text', text: block.text };
    if (block.type === 'tool_use') {
      return { type: 'tool_use', id: block.id, name: block.name, input: block.input };
    }
    return { type: block.type };
  });

const summary = (message) => ({
  id: message.id,
  type: message.type,
  role: message.role,
  model: message.model,
  content: blocks(message),
  stop_reason: message.stop_reason,
  usage: message.usage,
});

async function messagesCreate(client, model) {
  const message = await client.messages.create({
    model,
    max_tokens: 256,
    system: SYSTEM,
    messages: [{ role: 'user', content: USER }],
  });
  return summary(message);
}

async function messagesStream(client, model) {
  const pieces = [];
  const stream = client.messages
    .stream({
      model,
      max_tokens: 256,
      system: SYSTEM,
      messages: [{ role: 'user', content: USER }],
    })
    .on('text', (text) => pieces.push(text));
  const final = await stream.finalMessage();
  return { pieces: pieces.length, text: pieces.join(''), final: summary(final) };
}

async function messagesToolsTwoTurns(client, model) {
  const messages = [{ role: 'user', content: USER }];
  const first = await client.messages.create({ model, max_tokens: 256, messages, tools: TOOLS });
  messages.push({ role: 'assistant', content: first.content });
  messages.push({
    role: 'user',
    content: first.content
      .filter((block) => block.type === 'tool_use')
      .map((block) => ({ type: 'tool_result', tool_use_id: block.id, content: TOOL_OUTPUT })),
  });
  const second = await client.messages.create({ model, max_tokens: 256, messages, tools: TOOLS });
  return { first: summary(first), second: summary(second) };
}

const SCENARIOS = {
  messages_create: messagesCreate,
  messages_stream: messagesStream,
  messages_tools_two_turns: messagesToolsTwoTurns,
};

async function runOne(client, scenario, model) {
  const seen = { scenario, requested_model: model };
  try {
    Object.assign(seen, await SCENARIOS[scenario](client, model));
  } catch (error) {
    if (!(error instanceof Anthropic.APIError)) throw error;
    Object.assign(seen, {
      error: error.constructor.name,
      status: error.status ?? null,
      type: error.error?.error?.type ?? null,
    });
  }
  return seen;
}

const [baseURL, apiKey, items, modelArg] = process.argv.slice(2);
const runs = (items ?? '').split(',').map((item) => {
  const [scenario, model] = item.split('@');
  return { scenario, model: model || modelArg || 'claude-sonnet-4-6' };
});
if (
  process.argv.length < 5 ||
  process.argv.length > 6 ||
  !runs.every(({ scenario }) => scenario in SCENARIOS)
) {
  console.error(
    `usage: node anthropic_client.mjs BASE_URL API_KEY {${Object.keys(SCENARIOS).join('|')}}[@MODEL][,...] [MODEL]`,
  );
  process.exit(2);
}
const client = new Anthropic({
  baseURL: baseURL.replace(/\/v1$/, ''),
  apiKey,
  maxRetries: 0,
  timeout: 20_000,
});
const seen = { sdk: '@anthropic-ai/sdk', sdk_version: VERSION };
const observed = [];
for (const { scenario, model } of runs) observed.push(await runOne(client, scenario, model));
if (items.includes(',')) seen.runs = observed;
else Object.assign(seen, observed[0]);
console.log(JSON.stringify(seen));
