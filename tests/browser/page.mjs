// The official openai SDK in browser mode against the gateway on another origin.
// Each step's outcome goes into `out`; the JSON lands in <pre id="result">.
import OpenAI from "openai";

const query = new URLSearchParams(location.search);
const model = "llama3.2";
const options = {
  baseURL: query.get("base"),
  dangerouslyAllowBrowser: true,
  maxRetries: 0, // a blocked call is a connection error: fail it at once, not after backoff
  timeout: 10000,
};
const client = new OpenAI({ ...options, apiKey: query.get("key") });
const wrongKey = new OpenAI({ ...options, apiKey: "sk-wrong" });

function failure(err) {
  return { error: err.constructor.name, message: String(err.message), status: err.status ?? null,
           code: err.code ?? null, request_id: err.requestID ?? null };
}

async function step(name, run) {
  try {
    return { [name]: await run() };
  } catch (err) {
    return { [name]: failure(err) };
  }
}

const out = { origin: location.origin };
Object.assign(out, await step("models", async () => {
  const page = await client.models.list();
  return { ids: page.data.map((m) => m.id) };
}));
Object.assign(out, await step("chat", async () => {
  const { data, response } = await client.chat.completions.create({
    model, messages: [{ role: "user", content: "hello from the page" }], user: "page",
  }).withResponse();
  // Both need Access-Control-Expose-Headers to be readable here.
  return { text: data.choices[0].message.content,
           request_id: response.headers.get("x-request-id"),
           ignored: response.headers.get("x-gateway-ignored-params") };
}));
Object.assign(out, await step("stream", async () => {
  const stream = await client.chat.completions.create({
    model, stream: true, messages: [{ role: "user", content: "stream to the page" }],
  });
  const parts = [];
  for await (const chunk of stream) {
    parts.push(chunk.choices[0]?.delta?.content ?? "");
  }
  return { text: parts.join(""), chunks: parts.length };
}));
Object.assign(out, await step("wrong_key", async () => {
  await wrongKey.models.list();
  return { unexpected: "the wrong key was accepted" };
}));

document.getElementById("result").textContent = JSON.stringify(out);
window.finish(out);
