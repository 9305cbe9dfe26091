// Drives /v1/messages of a live gateway with the official @anthropic-ai/sdk; prints one JSON line.
// Usage: node anthropic_check.mjs <gateway base url> <key>
import Anthropic from "@anthropic-ai/sdk";

const [baseURL, apiKey] = process.argv.slice(2);
const client = new Anthropic({ baseURL, apiKey, maxRetries: 0 });
const user = [{ role: "user", content: "hello" }];
const tools = [{ name: "get_weather", description: "Weather of a city",
  input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } }];
const out = {};

const msg = await client.messages.create({ model: "kimi-k2", max_tokens: 200, messages: user,
  system: [{ type: "text", text: "Be brief.", cache_control: { type: "ephemeral" } }],
  thinking: { type: "enabled", budget_tokens: 1024 } });
out.create = { model: msg.model, types: msg.content.map((b) => b.type),
  text: msg.content.find((b) => b.type === "text")?.text,
  thinking: msg.content.find((b) => b.type === "thinking")?.thinking,
  stop: msg.stop_reason, usage: msg.usage };

const stream = client.messages.stream({ model: "kimi-k2", max_tokens: 200, messages: user });
const events = [];
let streamed = "";
stream.on("text", (t) => { streamed += t; });
for await (const e of stream) events.push(e.type);
const final = await stream.finalMessage();
out.stream = { events: [...new Set(events)], streamed, final: final.content.map((b) => b.type),
  stop: final.stop_reason, output: final.usage.output_tokens };

const call = await client.messages.create({ model: "kimi-k2", max_tokens: 200, messages: user,
  tools, tool_choice: { type: "auto" }, metadata: { user_id: "node" } });
const use = call.content.find((b) => b.type === "tool_use");
out.tool = { stop: call.stop_reason, name: use?.name, input: use?.input };
const back = await client.messages.create({ model: "kimi-k2", max_tokens: 200, tools,
  messages: [...user, { role: "assistant", content: call.content },
    { role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: "25C" }] }] });
out.toolBack = back.content.map((b) => b.type);

out.count = (await client.messages.countTokens({ model: "kimi-k2", messages: user })).input_tokens;

try {
  await client.messages.create({ model: "nope", max_tokens: 5, messages: user });
} catch (e) {
  out.notFound = { status: e.status, type: e.error?.error?.type,
    isNotFound: e instanceof Anthropic.NotFoundError };
}
try {
  await new Anthropic({ baseURL, apiKey: "sk-st-wrong", maxRetries: 0 }).messages.create(
    { model: "kimi-k2", max_tokens: 5, messages: user });
} catch (e) {
  out.badKey = { status: e.status, type: e.error?.error?.type,
    isAuth: e instanceof Anthropic.AuthenticationError };
}
console.log(JSON.stringify(out));
