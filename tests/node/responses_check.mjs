// Drives a SmarToken gateway's /v1/responses with the official openai npm package and the
// Vercel AI SDK's default provider model (openai(model) speaks the Responses API).
// Usage: node responses_check.mjs <baseURL> <apiKey>; prints one JSON line with what it saw.
import OpenAI from "openai";
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, streamText, tool, jsonSchema } from "ai";

const [baseURL, apiKey] = process.argv.slice(2);
const client = new OpenAI({ apiKey, baseURL, maxRetries: 0 });
const out = {};

const resp = await client.responses.create({ model: "kimi-k2", input: "Say something." });
out.text = resp.output_text;
out.usage = resp.usage;
out.id = resp.id;

const stream = await client.responses.create({ model: "kimi-k2", input: "Again.", stream: true });
let streamed = "";
const kinds = [];
for await (const event of stream) {
  kinds.push(event.type);
  if (event.type === "response.output_text.delta") streamed += event.delta;
  if (event.type === "response.completed") out.streamUsage = event.response.usage;
}
out.streamed = streamed;
out.firstLast = [kinds[0], kinds[kinds.length - 1]];

const follow = await client.responses.create({ model: "kimi-k2", input: "More.",
                                               previous_response_id: resp.id });
out.followPrev = follow.previous_response_id;

const provider = createOpenAI({ apiKey, baseURL });
const gen = await generateText({ model: provider("kimi-k2"), prompt: "Hello from the AI SDK." });
out.aiText = gen.text;
out.aiUsage = gen.usage;
const st = streamText({ model: provider("kimi-k2"), prompt: "Stream please." });
let aiStreamed = "";
for await (const part of st.textStream) aiStreamed += part;
out.aiStreamed = aiStreamed;
out.aiStreamUsage = await st.usage;

try {
  await client.responses.create({ model: "no-such-model", input: "x" });
} catch (e) {
  out.notFound = { status: e.status, code: e.code };
}
console.log(JSON.stringify(out));
