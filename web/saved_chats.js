// Saved conversations (app/worker/chat_state.py's bytes) in the Cache API, one per model,
// keyed by the model's identity hash (runner.model_identity): a reload, or the same model
// loaded from another URL or file, finds it again.
const CHATS = "pyllm-chats-v1";
const keyFor = (identity) => new URL(`saved-chat/${encodeURIComponent(identity)}`, self.location.href).href;

export async function putSavedChat(identity, bytes) {
  const cache = await caches.open(CHATS);
  await cache.put(keyFor(identity), new Response(bytes, {
    headers: { "Content-Type": "application/octet-stream", "Content-Length": String(bytes.length),
               "X-Saved-At": new Date().toISOString() } }));
}

export async function getSavedChat(identity) {
  if (!self.caches) return null;
  const hit = await (await caches.open(CHATS)).match(keyFor(identity));
  return hit ? new Uint8Array(await hit.arrayBuffer()) : null;
}

export async function savedChatInfo(identity) {
  if (!self.caches) return null;
  const hit = await (await caches.open(CHATS)).match(keyFor(identity));
  return hit ? { bytes: Number(hit.headers.get("Content-Length")) || null, saved_at: hit.headers.get("X-Saved-At") }
    : null;
}
