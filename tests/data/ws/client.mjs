// A WebSocket client for tests/it/server.rs and tests/it/ws.rs (Node's own
// WebSocket, the browser API): offers the token as a Kubernetes subprotocol
// entry next to `echo`, sends one message, and prints one JSON line when the
// socket closes.
// Usage: node client.mjs <ws-url> <token> [raw|encoded] [every-ms]
// `encoded` sends the token as Kubernetes' own clients (client-go, kubectl)
// do: base64url without padding after the prefix; `raw` (the default) puts
// the compact JWS there as it is.
// With `every-ms` (a session, driven line by line): one more JSON line,
// `{"open":true,...}`, as soon as the socket is open; after `hello`, one
// message every `every-ms` milliseconds while the socket is open (`0`: none);
// the closing line also counts the messages sent and received.
const [url, token, form = 'raw', every] = process.argv.slice(2);
const session = every !== undefined;
const value = form === 'encoded' ? Buffer.from(token).toString('base64url') : token;
const out = { protocol: null, echoed: null };
if (session) {
  out.sent = 0;
  out.received = 0;
}
const ws = new WebSocket(url, [`base64url.bearer.authorization.k8s.io.${value}`, 'echo']);
ws.onopen = () => {
  out.protocol = ws.protocol;
  if (session) {
    console.log(JSON.stringify({ open: true, protocol: ws.protocol }));
  }
  ws.send('hello');
  if (session) {
    out.sent += 1;
    const ms = Number(every);
    if (ms > 0) {
      const timer = setInterval(() => {
        if (ws.readyState !== WebSocket.OPEN) {
          clearInterval(timer);
          return;
        }
        ws.send(`m${out.sent}`);
        out.sent += 1;
      }, ms);
    }
  }
};
ws.onmessage = (e) => {
  out.echoed = String(e.data);
  if (session) {
    out.received += 1;
  }
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
