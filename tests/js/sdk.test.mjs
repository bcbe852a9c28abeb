// The official openai JavaScript SDK against the gateway (run with `node --test`).
// tests/integration/test_js_sdk.py starts the gateway under gunicorn, with the
// Ollama emulator behind it, and passes its base URL (…/v1) in OLLAMA_GATEWAY_BASE_URL.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import OpenAI, { BadRequestError, NotFoundError } from 'openai';

const baseURL = process.env.OLLAMA_GATEWAY_BASE_URL;
assert.ok(baseURL, 'set OLLAMA_GATEWAY_BASE_URL to the gateway base URL (…/v1)');

const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0, timeout: 20_000 });
const ask = (text = 'Hello there') => [{ role: 'user', content: text }];
const HF = 'hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M';
const WEATHER = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather for a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' } },
      required: ['city'],
      additionalProperties: false,
    },
  },
};

test('chat completion', async () => {
  const completion = await client.chat.completions.create({ model: 'llama3.2', messages: ask() });
  assert.equal(completion.object, 'chat.completion');
  assert.equal(completion.model, 'llama3.2');
  assert.match(completion.id, /^chatcmpl-/);
  assert.equal(completion.choices[0].message.content, 'Echo: Hello there');
  assert.equal(completion.choices[0].finish_reason, 'stop');
  const usage = completion.usage;
  assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
});

test('chat streaming', async () => {
  const stream = await client.chat.completions.create({
    model: 'llama3.2', messages: ask('one two three'), stream: true,
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  assert.equal(chunks.map((c) => c.choices[0].delta.content ?? '').join(''), 'Echo: one two three');
  const finishes = chunks.map((c) => c.choices[0].finish_reason);
  assert.equal(finishes.at(-1), 'stop');
  assert.ok(finishes.slice(0, -1).every((f) => f === null));
  assert.equal(new Set(chunks.map((c) => c.id)).size, 1);
  assert.ok(chunks.every((c) => c.usage === undefined || c.usage === null));
});

test('chat streaming with include_usage', async () => {
  const stream = await client.chat.completions.create({
    model: 'llama3.2', messages: ask(), stream: true, stream_options: { include_usage: true },
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.ok(last.usage.completion_tokens > 0);
  assert.equal(last.usage.total_tokens, last.usage.prompt_tokens + last.usage.completion_tokens);
  assert.ok(chunks.slice(0, -1).every((c) => c.usage === null));
});

test('tools, plain and streamed', async () => {
  const completion = await client.chat.completions.create({
    model: 'llama3.2', messages: ask('Weather in Paris?'), tools: [WEATHER],
  });
  const choice = completion.choices[0];
  assert.equal(choice.finish_reason, 'tool_calls');
  assert.equal(choice.message.content, null);
  const [call] = choice.message.tool_calls;
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'get_weather');
  assert.equal(typeof JSON.parse(call.function.arguments).city, 'string');

  const runner = client.chat.completions.stream({
    model: 'llama3.2', messages: ask('Weather in Paris?'), tools: [WEATHER],
  });
  const final = await runner.finalChatCompletion();
  assert.equal(final.choices[0].finish_reason, 'tool_calls');
  const streamed = final.choices[0].message.tool_calls[0];
  assert.equal(streamed.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(streamed.function.arguments), JSON.parse(call.function.arguments));

  const second = await client.chat.completions.create({
    model: 'llama3.2',
    tools: [WEATHER],
    messages: [...ask('Weather in Paris?'), choice.message,
      { role: 'tool', tool_call_id: call.id, content: 'Sunny' }],
  });
  assert.equal(second.choices[0].finish_reason, 'stop');
});

test('embeddings with the SDK default encoding (base64)', async () => {
  const result = await client.embeddings.create({
    model: 'nomic-embed-text', input: ['first', 'second'],
  });
  assert.equal(result.object, 'list');
  assert.deepEqual(result.data.map((d) => d.index), [0, 1]);
  // Decoded by the SDK as float32: the model's full dimension, not a quarter of it.
  assert.deepEqual(result.data.map((d) => d.embedding.length), [768, 768]);
  const norm = Math.sqrt(result.data[0].embedding.reduce((s, x) => s + x * x, 0));
  assert.ok(Math.abs(norm - 1) < 1e-4, `unit vector expected, norm ${norm}`);
  assert.ok(result.usage.prompt_tokens > 0);
  assert.equal(result.usage.total_tokens, result.usage.prompt_tokens);
});

test('embeddings with encoding_format float', async () => {
  const floats = await client.embeddings.create({
    model: 'nomic-embed-text', input: 'same text', encoding_format: 'float',
  });
  const packed = await client.embeddings.create({ model: 'nomic-embed-text', input: 'same text' });
  const [a, b] = [floats.data[0].embedding, packed.data[0].embedding];
  assert.ok(Array.isArray(a));
  assert.equal(a.length, 768);
  assert.equal(b.length, 768);
  assert.ok(a.every((x, i) => Math.abs(x - b[i]) <= 1e-6 * Math.abs(x) + 1e-7));
});

test('models list and retrieve', async () => {
  const ids = [];
  for await (const model of client.models.list()) {
    assert.equal(model.object, 'model');
    assert.equal(typeof model.created, 'number');
    ids.push(model.id);
  }
  assert.ok(ids.includes('llama3.2:latest'));
  assert.ok(ids.includes(HF));

  const model = await client.models.retrieve(HF);
  assert.equal(model.id, HF);
  assert.equal(model.owned_by, 'bartowski');
  assert.equal((await client.models.retrieve('llama3.2:latest')).owned_by, 'library');
});

test('legacy completions, plain and streamed', async () => {
  const completion = await client.completions.create({ model: 'llama3.2', prompt: 'Say hi' });
  assert.equal(completion.object, 'text_completion');
  assert.equal(completion.choices[0].text, 'Echo: Say hi');
  const stream = await client.completions.create({
    model: 'llama3.2', prompt: 'Say hi', stream: true, stream_options: { include_usage: true },
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.equal(chunks.slice(0, -1).map((c) => c.choices[0].text).join(''), 'Echo: Say hi');
  assert.deepEqual(chunks.at(-1).choices, []);
  assert.ok(chunks.at(-1).usage.completion_tokens > 0);
});

test('NotFoundError', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'no-such-model', messages: ask() }),
    (err) => {
      assert.ok(err instanceof NotFoundError, `got ${err.constructor.name}`);
      assert.equal(err.status, 404);
      assert.equal(err.code, 'model_not_found');
      return true;
    },
  );
  await assert.rejects(client.models.retrieve('someone/missing:7b'), NotFoundError);
});

test('BadRequestError', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'llama3.2', messages: ask(), temperature: 5 }),
    (err) => {
      assert.ok(err instanceof BadRequestError, `got ${err.constructor.name}`);
      assert.equal(err.status, 400);
      assert.equal(err.param, 'temperature');
      assert.equal(err.type, 'invalid_request_error');
      return true;
    },
  );
  await assert.rejects(
    client.embeddings.create({ model: 'nomic-embed-text', input: [[1, 2, 3]] }),
    (err) => err instanceof BadRequestError && err.param === 'input',
  );
});
