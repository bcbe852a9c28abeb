// The official openai JavaScript SDK against the gateway's /v1/responses (run with `node --test`).
// tests/integration/test_js_responses.py starts the gateway under gunicorn, with the Ollama
// emulator (default behaviour: "Echo: <last user text>", the first tool called when tools are
// sent and the last message is the user's) behind it, and passes its base URL (…/v1) in
// OLLAMA_GATEWAY_BASE_URL. The Python side then checks what reached the emulator.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import OpenAI, { NotFoundError } from 'openai';

const baseURL = process.env.OLLAMA_GATEWAY_BASE_URL;
assert.ok(baseURL, 'set OLLAMA_GATEWAY_BASE_URL to the gateway base URL (…/v1)');

const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0, timeout: 20_000 });
//: test_js_responses.py looks for this in the `tool` message of an upstream /api/chat request.
const TOOL_OUTPUT = '{"city":"Paris","temp_c":21,"marker":"js-responses-tool-output"}';
const WEATHER = {
  type: 'function',
  name: 'get_weather',
  description: 'Current weather for a city',
  parameters: {
    type: 'object',
    properties: { city: { type: 'string' } },
    required: ['city'],
    additionalProperties: false,
  },
  strict: true,
};
// Keys whose values legitimately differ between two answers to the same request, and the
// SDK's client-side parse helpers (`parsed`, `output_parsed`), which only stream() adds.
const VOLATILE = new Set(['id', 'created_at', 'completed_at', 'item_id', 'call_id', 'sequence_number',
  'parsed', 'output_parsed']);

function stable(value) {
  if (Array.isArray(value)) return value.map(stable);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).filter(([k]) => !VOLATILE.has(k))
      .map(([k, v]) => [k, stable(v)]));
  }
  return value;
}

function assertUsage(usage) {
  assert.ok(usage, 'usage is missing');
  assert.ok(Number.isInteger(usage.input_tokens) && usage.input_tokens > 0, JSON.stringify(usage));
  assert.ok(Number.isInteger(usage.output_tokens) && usage.output_tokens > 0, JSON.stringify(usage));
  assert.equal(usage.total_tokens, usage.input_tokens + usage.output_tokens);
}

function assertTextResponse(response, text) {
  assert.equal(response.object, 'response');
  assert.match(response.id, /^resp_/);
  assert.equal(response.status, 'completed');
  assert.equal(response.model, 'llama3.2');
  assert.equal(response.error ?? null, null);
  assert.equal(response.output_text, text);
  const messages = response.output.filter((item) => item.type === 'message');
  assert.equal(messages.length, 1, JSON.stringify(response.output));
  assert.equal(messages[0].role, 'assistant');
  assert.equal(messages[0].status, 'completed');
  assert.deepEqual(messages[0].content.map((part) => part.type), ['output_text']);
  assertUsage(response.usage);
}

test('responses.create: text', async () => {
  const response = await client.responses.create({ model: 'llama3.2', input: 'Hello there' });
  assertTextResponse(response, 'Echo: Hello there');
  assert.ok(Number.isInteger(response.created_at));
});

test('responses.create: message list input and instructions', async () => {
  const response = await client.responses.create({
    model: 'llama3.2',
    instructions: 'Answer briefly.',
    input: [{ role: 'user', content: [{ type: 'input_text', text: 'one two three' }] }],
  });
  assertTextResponse(response, 'Echo: one two three');
  assert.equal(response.instructions, 'Answer briefly.');
});

test('responses.stream: deltas add up and the final response equals the non-streamed one', async () => {
  const params = { model: 'llama3.2', input: 'stream these words please' };
  const stream = client.responses.stream(params);
  const types = [];
  let text = '';
  for await (const event of stream) {
    types.push(event.type);
    if (event.type === 'response.output_text.delta') text += event.delta;
  }
  const final = await stream.finalResponse();
  assert.equal(text, 'Echo: stream these words please');
  assert.equal(types[0], 'response.created');
  assert.equal(types.at(-1), 'response.completed');
  assert.ok(types.filter((t) => t === 'response.output_text.delta').length > 1, types.join(','));
  for (const needed of ['response.output_item.added', 'response.content_part.added',
    'response.output_text.done', 'response.content_part.done', 'response.output_item.done']) {
    assert.ok(types.includes(needed), `${needed} missing from ${types.join(',')}`);
  }
  assertTextResponse(final, text);
  const plain = await client.responses.create(params);
  assert.deepEqual(stable(final.toJSON ? final.toJSON() : final), stable(plain));
});

test('responses.create stream: true: sequence numbers and one item id', async () => {
  const stream = await client.responses.create({ model: 'llama3.2', input: 'a b c', stream: true });
  const events = [];
  for await (const event of stream) events.push(event);
  assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
  const ids = new Set(events.filter((e) => 'item_id' in e).map((e) => e.item_id));
  assert.equal(ids.size, 1, JSON.stringify([...ids]));
  const completed = events.at(-1);
  assert.equal(completed.type, 'response.completed');
  assert.equal(completed.response.id, events[0].response.id);
  assert.equal(events[0].response.status, 'in_progress');
  assertUsage(completed.response.usage);
});

test('function tool round trip', async () => {
  const input = [{ role: 'user', content: 'What is the weather in Paris?' }];
  const first = await client.responses.create({ model: 'llama3.2', input, tools: [WEATHER] });
  assert.equal(first.status, 'completed');
  const calls = first.output.filter((item) => item.type === 'function_call');
  assert.equal(calls.length, 1, JSON.stringify(first.output));
  const [call] = calls;
  assert.equal(call.name, 'get_weather');
  assert.ok(call.call_id, JSON.stringify(call));
  assert.deepEqual(JSON.parse(call.arguments), { city: 'example' });
  assert.equal(first.output_text, '');

  const second = await client.responses.create({
    model: 'llama3.2',
    tools: [WEATHER],
    input: [...input, call, { type: 'function_call_output', call_id: call.call_id, output: TOOL_OUTPUT }],
  });
  assertTextResponse(second, 'Echo: What is the weather in Paris?');
});

test('function tool call streamed: arguments deltas and the final item', async () => {
  const stream = client.responses.stream({
    model: 'llama3.2', input: 'Weather in Rome?', tools: [WEATHER],
  });
  let args = '';
  let done = null;
  for await (const event of stream) {
    if (event.type === 'response.function_call_arguments.delta') args += event.delta;
    if (event.type === 'response.function_call_arguments.done') done = event.arguments;
  }
  const final = await stream.finalResponse();
  const call = final.output.find((item) => item.type === 'function_call');
  assert.ok(call, JSON.stringify(final.output));
  assert.equal(args, call.arguments);
  assert.equal(done, call.arguments);
  assert.deepEqual(JSON.parse(call.arguments), { city: 'example' });
});

test('retrieve, inputItems.list, delete', async () => {
  const created = await client.responses.create({ model: 'llama3.2', input: 'remember me', store: true });
  const got = await client.responses.retrieve(created.id);
  assert.deepEqual(stable(got), stable(created));
  assert.equal(got.id, created.id);

  const items = [];
  for await (const item of client.responses.inputItems.list(created.id)) items.push(item);
  assert.equal(items.length, 1, JSON.stringify(items));
  assert.equal(items[0].type, 'message');
  assert.equal(items[0].role, 'user');
  assert.deepEqual(items[0].content, [{ type: 'input_text', text: 'remember me' }]);
  assert.ok(items[0].id, JSON.stringify(items[0]));

  await client.responses.delete(created.id);
  await assert.rejects(client.responses.retrieve(created.id), NotFoundError);
  await assert.rejects(client.responses.inputItems.list(created.id), NotFoundError);
});

test('previous_response_id continues a stored response', async () => {
  const first = await client.responses.create({ model: 'llama3.2', input: 'first turn' });
  const second = await client.responses.create({
    model: 'llama3.2', input: 'second turn', previous_response_id: first.id,
  });
  assertTextResponse(second, 'Echo: second turn');
  assert.equal(second.previous_response_id, first.id);
});

test('store: false is not retrievable', async () => {
  const created = await client.responses.create({ model: 'llama3.2', input: 'forget me', store: false });
  assert.equal(created.store, false);
  await assert.rejects(client.responses.retrieve(created.id), NotFoundError);
});

test('unknown model is a 404 NotFoundError', async () => {
  await assert.rejects(
    client.responses.create({ model: 'no-such-model', input: 'hi' }),
    (err) => err instanceof NotFoundError && /no-such-model/.test(err.message),
  );
});
