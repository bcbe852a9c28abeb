// The Vercel AI SDK (`ai` + `@ai-sdk/openai`) against the gateway (run with `node --test`).
// `openai(model)` is the provider's default, the Responses API (/v1/responses).
// tests/integration/test_js_responses.py starts the gateway under gunicorn with the Ollama
// emulator behind it and passes its base URL (…/v1) in OLLAMA_GATEWAY_BASE_URL.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { createOpenAI } from '@ai-sdk/openai';
import { APICallError, generateText, stepCountIs, streamText, tool } from 'ai';
import { z } from 'zod';

const baseURL = process.env.OLLAMA_GATEWAY_BASE_URL;
assert.ok(baseURL, 'set OLLAMA_GATEWAY_BASE_URL to the gateway base URL (…/v1)');

const openai = createOpenAI({ baseURL, apiKey: 'unused' });
const model = openai('llama3.2');
//: test_js_responses.py looks for this in the `tool` message of an upstream /api/chat request.
const MARKER = 'ai-sdk-tool-output';

function weatherTool(seen) {
  return tool({
    description: 'Current weather for a city',
    inputSchema: z.object({ city: z.string() }),
    execute: async ({ city }) => {
      seen.push(city);
      return { city, tempC: 21, marker: MARKER };
    },
  });
}

function assertUsage(usage) {
  assert.ok(usage.inputTokens > 0, JSON.stringify(usage));
  assert.ok(usage.outputTokens > 0, JSON.stringify(usage));
  assert.equal(usage.totalTokens, usage.inputTokens + usage.outputTokens);
}

test('generateText', async () => {
  const result = await generateText({ model, prompt: 'Hello there', maxRetries: 0 });
  assert.equal(result.text, 'Echo: Hello there');
  assert.equal(result.finishReason, 'stop');
  assertUsage(result.usage);
  assert.match(result.response.id, /^resp_/);
  assert.equal(result.response.modelId, 'llama3.2');
});

test('generateText with a system prompt and messages', async () => {
  const result = await generateText({
    model,
    system: 'Answer briefly.',
    messages: [
      { role: 'user', content: 'first question' },
      { role: 'assistant', content: 'Echo: first question' },
      { role: 'user', content: 'second question' },
    ],
    maxRetries: 0,
  });
  assert.equal(result.text, 'Echo: second question');
});

test('streamText: textStream', async () => {
  const result = streamText({ model, prompt: 'stream these words please', maxRetries: 0 });
  const parts = [];
  for await (const part of result.textStream) parts.push(part);
  assert.ok(parts.length > 1, JSON.stringify(parts));
  assert.equal(parts.join(''), 'Echo: stream these words please');
  assert.equal(await result.finishReason, 'stop');
  assertUsage(await result.usage);
});

test('generateText: tool call with execute, two steps', async () => {
  const seen = [];
  const result = await generateText({
    model,
    prompt: 'What is the weather in Paris?',
    tools: { get_weather: weatherTool(seen) },
    stopWhen: stepCountIs(2),
    maxRetries: 0,
  });
  assert.deepEqual(seen, ['example']);
  assert.equal(result.steps.length, 2);
  const [first] = result.steps;
  assert.equal(first.finishReason, 'tool-calls');
  assert.equal(first.toolCalls.length, 1);
  assert.equal(first.toolCalls[0].toolName, 'get_weather');
  assert.deepEqual(first.toolCalls[0].input, { city: 'example' });
  assert.equal(first.toolResults[0].output.marker, MARKER);
  assert.equal(result.text, 'Echo: What is the weather in Paris?');
  assert.equal(result.finishReason, 'stop');
});

test('streamText: tool call with execute, two steps', async () => {
  const seen = [];
  const result = streamText({
    model,
    prompt: 'What is the weather in Rome?',
    tools: { get_weather: weatherTool(seen) },
    stopWhen: stepCountIs(2),
    maxRetries: 0,
  });
  let text = '';
  for await (const part of result.textStream) text += part;
  assert.deepEqual(seen, ['example']);
  assert.equal((await result.steps).length, 2);
  assert.equal(text, 'Echo: What is the weather in Rome?');
  assert.equal(await result.finishReason, 'stop');
});

test('unknown model: APICallError 404 with the gateway message', async () => {
  await assert.rejects(
    generateText({ model: openai('no-such-model'), prompt: 'hi', maxRetries: 0 }),
    (err) => APICallError.isInstance(err) && err.statusCode === 404 && /no-such-model/.test(err.message),
  );
});
