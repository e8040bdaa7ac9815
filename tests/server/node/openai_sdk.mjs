// The official openai package, unmodified, against lmserve: plain completion, prompt
// scoring the way lm-evaluation-harness does it (echo + logprobs + max_tokens 0),
// streaming with usage, and embeddings (the SDK asks for base64 and decodes it).
// Usage: node openai_sdk.mjs BASE_URL MODEL   (prints "ok" on success)
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const [baseURL, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: 'not-needed', maxRetries: 0, timeout: 60_000 });

const plain = await client.completions.create({
  model, prompt: 'Hello, my name is', max_tokens: 8, temperature: 0,
});
assert.equal(plain.object, 'text_completion');
assert.equal(plain.model, model);
assert.equal(plain.choices.length, 1);
assert.equal(typeof plain.choices[0].text, 'string');
assert.ok(['length', 'stop'].includes(plain.choices[0].finish_reason));
assert.equal(plain.usage.prompt_tokens, 5);

const prompt = 'The capital of France is Paris';
const scored = await client.completions.create({
  model, prompt, max_tokens: 0, echo: true, logprobs: 1, temperature: 0,
});
const lp = scored.choices[0].logprobs;
assert.equal(scored.choices[0].text, prompt);
assert.equal(lp.tokens.join(''), prompt);
assert.equal(lp.token_logprobs[0], null);
assert.ok(lp.token_logprobs.slice(1).every((x) => typeof x === 'number' && x <= 0));
assert.equal(lp.text_offset.length, lp.tokens.length);

const stream = await client.completions.create({
  model, prompt: 'Hello, my name is', max_tokens: 8, temperature: 0, stream: true,
  stream_options: { include_usage: true },
});
let text = '';
let usage = null;
let finish = null;
for await (const chunk of stream) {
  for (const c of chunk.choices) {
    text += c.text;
    if (c.finish_reason) finish = c.finish_reason;
  }
  if (chunk.usage) usage = chunk.usage;
}
assert.equal(text, plain.choices[0].text);
assert.equal(finish, plain.choices[0].finish_reason);
assert.equal(usage.completion_tokens, plain.usage.completion_tokens);

const emb = await client.embeddings.create({ model, input: ['Hello world', 'Bye'] });
assert.equal(emb.data.length, 2);
assert.equal(emb.data[0].embedding.length, 64);
const asFloat = await client.embeddings.create({ model, input: 'Hello world', encoding_format: 'float' });
asFloat.data[0].embedding.forEach((x, i) => assert.ok(Math.abs(x - emb.data[0].embedding[i]) < 1e-6));

console.log('ok');
