// Runs one scenario against the bridge with the official OpenAI Node SDK and prints ONE JSON line
// with what the SDK observed. It asserts nothing: tests/sdk.rs does.
//
//     node openai_client.mjs BASE_URL API_KEY SCENARIO
//
// BASE_URL is the bridge's `http://host:port/v1`. The scenarios are those of
// ../python/openai_client.py, with the same messages:
//
//     chat               chat.completions.create: a system and a user message, temperature 0.2
//     chat_stream        the same, streamed
//     chat_stream_usage  the same, streamed with stream_options.include_usage
//     completion         the legacy completions.create with a prompt and max_tokens 50
//     models             models.list()
//     unknown_model      chat with a model that no route names
//     embeddings         embeddings.create of two texts with the SDK's default encoding (base64)
//     embeddings_float   the same with encoding_format 'float'
//
// An SDK exception (any scenario) is observed as {"error": class name, "status", "type", "code",
// "param"}; the message is left out so that nothing the server echoes reaches the test output.
// The SDK's own retries are off (maxRetries: 0): only the bridge retries.

import OpenAI from 'openai';
import { VERSION } from 'openai/version';

const SYSTEM = 'Be terse.';
const USER = 'Cherry pie recipe?';
const PROMPT = 'Invent 3 fun names for donuts';
const CHAT_MODEL = 'gpt-4o-mini';
const COMPLETION_MODEL = 'gpt-4o';
const UNKNOWN_MODEL = 'no-such-model';
const EMBEDDINGS_MODEL = 'text-embedding-ada-002';
const EMBEDDINGS_INPUT = ['cherry pie', 'apple pie'];

function usage(usage) {
  if (usage == null) return null;
  const seen = {
    prompt_tokens: usage.prompt_tokens,
    completion_tokens: usage.completion_tokens,
    total_tokens: usage.total_tokens,
  };
  if (usage.prompt_tokens_details != null) {
    seen.cached_tokens = usage.prompt_tokens_details.cached_tokens;
  }
  return seen;
}

const messages = () => [
  { role: 'system', content: SYSTEM },
  { role: 'user', content: USER },
];

async function chat(client, model = CHAT_MODEL) {
  const { data: response, response: raw, request_id } = await client.chat.completions
    .create({ model, messages: messages(), temperature: 0.2 })
    .withResponse();
  const choice = response.choices[0];
  return {
    object: response.object,
    model: response.model,
    choices: response.choices.length,
    role: choice.message.role,
    text: choice.message.content,
    finish_reason: choice.finish_reason,
    usage: usage(response.usage),
    ignored_params: raw.headers.get('x-sfbridge-ignored-params'),
    // What the SDK offers for support tickets, read from x-request-id.
    request_id: request_id ?? null,
  };
}

async function chatStream(client, includeUsage) {
  const stream = await client.chat.completions.create({
    model: CHAT_MODEL,
    messages: messages(),
    stream: true,
    ...(includeUsage ? { stream_options: { include_usage: true } } : {}),
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  const choices = chunks.flatMap((chunk) => chunk.choices ?? []);
  const withChoices = chunks.filter((chunk) => (chunk.choices ?? []).length > 0);
  const last = chunks.at(-1);
  return {
    chunks: chunks.length,
    text: choices.map((choice) => choice.delta?.content ?? '').join(''),
    objects: [...new Set(chunks.map((chunk) => chunk.object))].sort(),
    models: [...new Set(chunks.map((chunk) => chunk.model))].sort(),
    ids: new Set(chunks.map((chunk) => chunk.id)).size,
    role: choices.map((choice) => choice.delta?.role).find((role) => role) ?? null,
    // The finish reason the last chunk that has a choice carries, and what the very last chunk
    // is (with include_usage: no choices, only the usage).
    finish_reason: withChoices.at(-1)?.choices[0].finish_reason ?? null,
    last_chunk_choices: last ? (last.choices ?? []).length : null,
    last_chunk_usage: last ? usage(last.usage) : null,
    chunks_with_usage: chunks.filter((chunk) => chunk.usage != null).length,
  };
}

async function completion(client) {
  const response = await client.completions.create({
    model: COMPLETION_MODEL,
    prompt: PROMPT,
    max_tokens: 50,
  });
  const choice = response.choices[0];
  return {
    object: response.object,
    model: response.model,
    choices: response.choices.length,
    text: choice.text,
    finish_reason: choice.finish_reason,
    usage: usage(response.usage),
  };
}

async function models(client) {
  const listed = [];
  for await (const model of client.models.list()) listed.push(model);
  return {
    ids: listed.map((model) => model.id),
    objects: [...new Set(listed.map((model) => model.object))].sort(),
  };
}

async function embeddings(client, format = {}) {
  const response = await client.embeddings.create({
    model: EMBEDDINGS_MODEL,
    input: EMBEDDINGS_INPUT,
    ...format,
  });
  return {
    object: response.object,
    model: response.model,
    indexes: response.data.map((item) => item.index),
    dimensions: response.data.map((item) => item.embedding.length),
    heads: response.data.map((item) => Array.from(item.embedding.slice(0, 8))),
    usage: {
      prompt_tokens: response.usage.prompt_tokens,
      total_tokens: response.usage.total_tokens,
    },
  };
}

const SCENARIOS = {
  chat: (client) => chat(client),
  chat_stream: (client) => chatStream(client, false),
  chat_stream_usage: (client) => chatStream(client, true),
  completion,
  models,
  unknown_model: (client) => chat(client, UNKNOWN_MODEL),
  embeddings: (client) => embeddings(client),
  embeddings_float: (client) => embeddings(client, { encoding_format: 'float' }),
};

const [baseURL, apiKey, scenario] = process.argv.slice(2);
if (process.argv.length !== 5 || !(scenario in SCENARIOS)) {
  console.error(`usage: node openai_client.mjs BASE_URL API_KEY {${Object.keys(SCENARIOS).join('|')}}`);
  process.exit(2);
}
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 20_000 });
const seen = { sdk: 'openai', sdk_version: VERSION, scenario };
try {
  Object.assign(seen, await SCENARIOS[scenario](client));
} catch (error) {
  if (!(error instanceof OpenAI.APIError)) throw error;
  Object.assign(seen, {
    error: error.constructor.name,
    status: error.status ?? null,
    type: error.type ?? null,
    code: error.code ?? null,
    param: error.param ?? null,
  });
}
console.log(JSON.stringify(seen));
