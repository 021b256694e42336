// The MCP TypeScript SDK (@modelcontextprotocol/sdk) as a real MCP client,
// started by tests/it/mcp.rs against examples/mcp.rs and oidc-provider
// (provider.mjs with OIDC_MCP=1). It authorizes headless with the SDK's
// ClientCredentialsProvider (client `mcp-client`, first for the scope
// mcp:tools only), lists the tools, calls `whoami`, then `admin_echo`,
// which needs mcp:admin: the SDK gets the 403 insufficient_scope challenge,
// asks the token endpoint again with the challenge's scopes and retries.
//
// One piece of glue: SDK 1.32.2 runs the step-up itself (it reads the 403
// challenge, re-runs auth() with its scope, retries the call), but for
// non-interactive grants its fetchToken asks for `clientMetadata.scope`,
// not the scope it resolved from the challenge (which only the
// authorization-code flow's authorization request uses). StepUpClient
// below copies the challenge's scope, parsed by the SDK's own
// extractWWWAuthenticateParams, into its client metadata.
//
// Usage: node mcp-client.mjs <MCP endpoint URL>
// Prints one line: RESULT {"tools": [...], "whoami": ..., "echo": ...,
//   "exchanges": [{"method", "url", "status", "scope"?}, ...]}
// and exits 0; on an error, prints ERROR <message> and exits 1.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { extractWWWAuthenticateParams } from '@modelcontextprotocol/sdk/client/auth.js';

/** client_credentials that asks for the scope of a step-up challenge. */
class StepUpClient extends ClientCredentialsProvider {
  noteChallenge(res) {
    if (res.status !== 403) return;
    const { error, scope } = extractWWWAuthenticateParams(res);
    if (error === 'insufficient_scope' && scope) this.clientMetadata.scope = scope;
  }
}

const url = new URL(process.argv[2]);
const exchanges = [];
// Every HTTP exchange of the SDK, with the scope of token requests.
async function logged(input, init) {
  const res = await fetch(input, init);
  authProvider.noteChallenge(res);
  const entry = { method: init?.method ?? 'GET', url: String(input), status: res.status };
  if (init?.body instanceof URLSearchParams) entry.scope = init.body.get('scope');
  else if (typeof init?.body === 'string' && init.body.includes('grant_type=')) {
    entry.scope = new URLSearchParams(init.body).get('scope');
  }
  exchanges.push(entry);
  return res;
}

const authProvider = new StepUpClient({
  clientId: 'mcp-client',
  clientSecret: 'secret-of-mcp-client',
  scope: 'mcp:tools',
  expectedIssuer: process.env.EXPECTED_ISSUER,
});

try {
  const transport = new StreamableHTTPClientTransport(url, { authProvider, fetch: logged });
  const client = new Client({ name: 'tower-jwt-auth-sdk-test', version: '1.0.0' });
  await client.connect(transport);
  const tools = (await client.listTools()).tools.map((t) => t.name);
  const whoami = await client.callTool({ name: 'whoami', arguments: {} });
  const echo = await client.callTool({ name: 'admin_echo', arguments: { text: 'stepped up' } });
  process.stdout.write(`RESULT ${JSON.stringify({ tools, whoami, echo, exchanges })}\n`);
  await client.close();
  process.exit(0);
} catch (err) {
  process.stdout.write(`ERROR ${err?.stack ?? err} ${JSON.stringify(exchanges)}\n`);
  process.exit(1);
}
