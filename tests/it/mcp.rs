//! Runs the MCP example (`examples/mcp.rs`: rmcp's streamable HTTP server
//! behind the layer) as a process and drives it over HTTP on 127.0.0.1 as
//! an MCP client following the MCP authorization specification would: a
//! 401 points to the RFC 9728 metadata, the metadata names the
//! authorization server, and a token for this resource opens the session.

use crate::support::example;

use serde_json::{Value, json};

struct Mcp {
    base: String,
    exports: Vec<(String, String)>,
    _child: tokio::process::Child,
}

impl Mcp {
    async fn start() -> Mcp {
        let started = example::start("mcp", |cmd| {
            cmd.env_remove("MCP_RESOURCE");
        })
        .await;
        assert!(started.addr.starts_with("127.0.0.1:"), "{}", started.addr);
        Mcp {
            base: format!("http://{}", started.addr),
            exports: started.exports,
            _child: started.child,
        }
    }

    fn token(&self, name: &str) -> &str {
        example::export(&self.exports, name)
    }
}

struct Answer {
    status: u16,
    challenge: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// A JSON-RPC POST to `/mcp`, with the headers of the streamable HTTP
/// transport.
async fn post(mcp: &Mcp, token: Option<&str>, message: &Value) -> Answer {
    let mut req = reqwest::Client::new()
        .post(format!("{}/mcp", mcp.base))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(message.to_string());
    if message["method"] != "initialize" {
        req = req.header("mcp-protocol-version", "2025-06-18");
    }
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    Answer {
        status,
        challenge,
        body: res.text().await.unwrap(),
    }
}

fn initialize() -> Value {
    json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "tests/mcp.rs", "version": "1.0.0"}
        }
    })
}

/// The `resource_metadata` URL of a challenge.
fn metadata_url(challenge: &str) -> String {
    let start = challenge
        .find(r#"resource_metadata=""#)
        .unwrap_or_else(|| panic!("no resource_metadata in {challenge:?}"))
        + r#"resource_metadata=""#.len();
    let len = challenge[start..].find('"').unwrap();
    challenge[start..start + len].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_client_finds_the_metadata_and_calls_a_tool() {
    let mcp = Mcp::start().await;
    let resource = format!("{}/mcp", mcp.base);

    // No token: 401 with a Bearer challenge naming the metadata.
    let a = post(&mcp, None, &initialize()).await;
    assert_eq!(a.status, 401, "{}", a.body);
    assert!(a.challenge.starts_with("Bearer "), "{}", a.challenge);
    let url = metadata_url(&a.challenge);
    // RFC 9728 §3.1: the well-known location derived from the resource.
    assert_eq!(
        url,
        format!("{}/.well-known/oauth-protected-resource/mcp", mcp.base)
    );

    // The document there names this resource and its authorization server.
    let res = reqwest::get(&url).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let doc: Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
    assert_eq!(doc["resource"], resource.as_str());
    let servers = doc["authorization_servers"].as_array().unwrap();
    assert_eq!(servers.len(), 1, "{doc}");
    let issuer = servers[0].as_str().unwrap();
    assert!(issuer.starts_with("http://127.0.0.1:"), "{issuer}");
    assert_eq!(doc["scopes_supported"], json!(["mcp:tools", "mcp:admin"]));
    // ... and that server is reachable: its OIDC discovery answers.
    let discovery = reqwest::get(format!("{issuer}/.well-known/openid-configuration"))
        .await
        .unwrap();
    assert_eq!(discovery.status(), 200);

    // A token for another audience (RFC 8707: not for this resource): 401,
    // still pointing to the metadata.
    let a = post(&mcp, Some(mcp.token("OTHER_AUDIENCE_TOKEN")), &initialize()).await;
    assert_eq!(a.status, 401, "{}", a.body);
    assert!(
        a.challenge.contains(r#"error="invalid_token""#),
        "{}",
        a.challenge
    );
    assert_eq!(metadata_url(&a.challenge), url);
    // A forged token: 401.
    let mut forged = mcp.token("MCP_TOKEN").to_owned();
    forged.truncate(forged.len() - 4);
    forged.push_str("AAAA");
    assert_eq!(post(&mcp, Some(&forged), &initialize()).await.status, 401);
    // A token for this resource without the scope: 403 insufficient_scope.
    let a = post(&mcp, Some(mcp.token("NO_SCOPE_TOKEN")), &initialize()).await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(
        a.challenge.contains(r#"error="insufficient_scope""#)
            && a.challenge.contains(r#"scope="mcp:tools""#),
        "{}",
        a.challenge
    );

    // A valid token: the MCP session works.
    let token = mcp.token("MCP_TOKEN");
    let a = post(&mcp, Some(token), &initialize()).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let init = a.json();
    assert_eq!(init["id"], 1);
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18");
    assert!(
        init["result"]["capabilities"]["tools"].is_object(),
        "{init}"
    );
    assert_eq!(init["result"]["serverInfo"]["name"], "tower-jwt-auth-mcp");

    let a = post(
        &mcp,
        Some(token),
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert!(
        a.status == 202 || a.status == 200,
        "{} {}",
        a.status,
        a.body
    );

    let a = post(
        &mcp,
        Some(token),
        &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let tools = a.json();
    assert_eq!(tools["result"]["tools"][0]["name"], "whoami", "{tools}");
    assert_eq!(tools["result"]["tools"][1]["name"], "admin_echo", "{tools}");

    // The tool sees the verified claims.
    let a = post(
        &mcp,
        Some(token),
        &json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                "params": {"name": "whoami", "arguments": {}}}),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let call = a.json();
    assert_eq!(call["id"], 3);
    assert_eq!(call["result"]["isError"], false, "{call}");
    let text = call["result"]["content"][0]["text"].as_str().unwrap();
    let who: Value = serde_json::from_str(text).unwrap();
    assert_eq!(who, json!({"sub": "agent-1", "scope": "mcp:tools"}));

    // Every MCP request is checked, not only the first: the same call
    // without the token is refused.
    let a = post(
        &mcp,
        None,
        &json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
                "params": {"name": "whoami", "arguments": {}}}),
    )
    .await;
    assert_eq!(a.status, 401);
    assert_eq!(metadata_url(&a.challenge), url);
}

fn tool_call(id: u64, name: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": name, "arguments": {"text": "hi"}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_beyond_the_tokens_scope_answers_the_step_up_challenge() {
    let mcp = Mcp::start().await;
    let metadata = format!("{}/.well-known/oauth-protected-resource/mcp", mcp.base);

    // mcp:tools calls whoami, but admin_echo needs mcp:admin: 403 naming
    // the scopes to ask for (needed and held) and where to ask.
    let token = mcp.token("MCP_TOKEN");
    let a = post(&mcp, Some(token), &tool_call(1, "admin_echo")).await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(
        a.challenge.contains(r#"error="insufficient_scope""#)
            && a.challenge.contains(r#"scope="mcp:admin mcp:tools""#),
        "{}",
        a.challenge
    );
    assert_eq!(metadata_url(&a.challenge), metadata);
    // A batch that hides the call among allowed ones: refused whole.
    let batch = json!([tool_call(2, "whoami"), tool_call(3, "admin_echo")]);
    assert_eq!(post(&mcp, Some(token), &batch).await.status, 403);
    // A lookalike name is not the tool, and has no entry: refused.
    let admin = mcp.token("ADMIN_TOKEN");
    for name in ["Admin_echo", "\u{430}dmin_echo"] {
        let a = post(&mcp, Some(admin), &tool_call(4, name)).await;
        assert_eq!(a.status, 403, "{name}: {}", a.body);
    }

    // The token with the larger scope: the call goes through.
    let a = post(&mcp, Some(admin), &tool_call(5, "admin_echo")).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let call = a.json();
    assert_eq!(call["result"]["isError"], false, "{call}");
    assert_eq!(call["result"]["content"][0]["text"], "hi");
}

/// The MCP TypeScript SDK (`@modelcontextprotocol/sdk`,
/// tests/oidc/mcp-client.mjs) against the example and oidc-provider: it
/// authorizes for `mcp:tools`, gets 403 `insufficient_scope` calling
/// `admin_echo`, asks for the challenge's scopes and succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mcp_typescript_sdk_steps_up_to_call_a_tool_its_token_did_not_cover() {
    let provider = crate::support::oidc::start_mcp().await;
    let issuer = provider.issuer.clone();
    let started = example::start("mcp", |cmd| {
        cmd.env_remove("MCP_RESOURCE")
            .env_remove("JWT_RESOURCE")
            .env("JWT_ISSUER", &issuer);
    })
    .await;
    let url = format!("http://{}/mcp", started.addr);
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        tokio::process::Command::new("node")
            .arg("mcp-client.mjs")
            .arg(&url)
            .env("EXPECTED_ISSUER", &issuer)
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oidc"))
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the SDK client did not finish within 60 s")
    .expect("node is needed for the MCP SDK test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| {
            panic!(
                "SDK client failed: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let result: Value = serde_json::from_str(line).unwrap();
    assert_eq!(result["tools"], json!(["whoami", "admin_echo"]));
    let who: Value =
        serde_json::from_str(result["whoami"]["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(who["sub"], "mcp-client");
    assert_eq!(who["scope"], "mcp:tools");
    assert_eq!(result["echo"]["isError"], false, "{result}");
    assert_eq!(result["echo"]["content"][0]["text"], "stepped up");
    // What went over the wire: a 401, a token for mcp:tools, the 403 of
    // admin_echo, a token for the challenge's scopes, the call again.
    let exchanges = result["exchanges"].as_array().unwrap();
    let statuses: Vec<_> = exchanges
        .iter()
        .filter(|e| e["url"] == url.as_str() && e["method"] == "POST")
        .map(|e| e["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses.first(), Some(&401), "{exchanges:?}");
    assert_eq!(&statuses[statuses.len() - 2..], [403, 200], "{exchanges:?}");
    let scopes: Vec<_> = exchanges
        .iter()
        .filter(|e| e["url"].as_str().unwrap().ends_with("/token"))
        .map(|e| e["scope"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        scopes,
        ["mcp:tools", "mcp:admin mcp:tools"],
        "{exchanges:?}"
    );
}
