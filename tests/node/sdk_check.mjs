// Drives a SmarToken gateway with the official openai npm package.
// Usage: node sdk_check.mjs <baseURL> <apiKey>; prints one JSON line with what it saw.
import OpenAI from "openai";

const [baseURL, apiKey] = process.argv.slice(2);
const client = new OpenAI({ apiKey, baseURL, maxRetries: 0 });
const out = {};

const resp = await client.chat.completions.create({
  model: "kimi-k2",
  messages: [{ role: "user", content: "Explain the best use case for this model." }],
});
out.text = resp.choices[0].message.content;
out.usage = resp.usage;

const stream = await client.chat.completions.create({
  model: "kimi-k2",
  stream: true,
  stream_options: { include_usage: true },
  messages: [{ role: "user", content: "Explain the best use case for this model." }],
});
let streamed = "";
for await (const chunk of stream) {
  streamed += chunk.choices[0]?.delta?.content ?? "";
  if (chunk.usage) out.streamUsage = chunk.usage;
}
out.streamed = streamed;

try {
  await client.chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "x" }] });
} catch (err) {
  out.notFound = { status: err.status, code: err.code, isNotFound: err instanceof OpenAI.NotFoundError };
}
try {
  await new OpenAI({ apiKey: "sk-st-wrong", baseURL, maxRetries: 0 }).models.list();
} catch (err) {
  out.badKey = { status: err.status, isAuth: err instanceof OpenAI.AuthenticationError };
}
const models = await client.models.list();
out.models = models.data.map((m) => m.id);
console.log(JSON.stringify(out));
