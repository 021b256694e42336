// A WebSocket client for tests/it/server.rs (Node's own WebSocket, the
// browser API): offers the token as a Kubernetes subprotocol entry next to
// `echo`, sends one message, and prints one JSON line when the socket closes.
// Usage: node client.mjs <ws-url> <token> [raw|encoded]
// `encoded` sends the token as Kubernetes' own clients (client-go, kubectl)
// do: base64url without padding after the prefix; `raw` (the default) puts
// the compact JWS there as it is.
const [url, token, form = 'raw'] = process.argv.slice(2);
const value = form === 'encoded' ? Buffer.from(token).toString('base64url') : token;
const out = { protocol: null, echoed: null };
const ws = new WebSocket(url, [`base64url.bearer.authorization.k8s.io.${value}`, 'echo']);
ws.onopen = () => {
  out.protocol = ws.protocol;
  ws.send('hello');
};
ws.onmessage = (e) => {
  out.echoed = String(e.data);
};
ws.onerror = () => {
  out.error = true;
};
ws.onclose = (e) => {
  out.code = e.code;
  out.reason = e.reason;
  console.log(JSON.stringify(out));
  process.exit(0);
};
setTimeout(() => {
  console.log(JSON.stringify({ ...out, timeout: true }));
  process.exit(1);
}, 20000);
