//! [`RequireToolScopes`]: the map from JSON-RPC methods, MCP tools,
//! prompts and resources to scopes, and its judgement of a body.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use super::peek::{Message, messages};
use crate::claims::{ClaimSource, Claims, TokenClaims};
use crate::error::{AuthError, BuildError};
use crate::reject::DefaultRejection;

/// The default body limit: 1 MiB.
const DEFAULT_MAX_BODY: usize = 1024 * 1024;

/// What a `tools/call`, `prompts/get`, `resources/read`,
/// `resources/subscribe` or `completion/complete` for a name (or URI) that
/// has no entry in the map needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Unmapped {
    /// Refused with 403 (the default): a tool added to the server but not
    /// to the map is not callable until it is mapped.
    #[default]
    Deny,
    /// Needs these scopes.
    Require(Vec<String>),
    /// Needs nothing beyond what the other guards ask.
    Allow,
}

/// Requires scopes per JSON-RPC method and per MCP tool, prompt or
/// resource: see the [module docs](crate::jsonrpc). Build it with
/// [`RequireToolScopes::builder`]; it is a tower layer.
///
/// ```
/// use tower_jwt_auth::jsonrpc::RequireToolScopes;
///
/// let guard = RequireToolScopes::builder()
///     .method("tools/list", ["mcp:tools"])
///     .tool("whoami", ["mcp:tools"])
///     .tool("admin_echo", ["mcp:admin"])
///     .build()?;
/// assert_eq!(guard.scopes(), ["mcp:tools", "mcp:admin"]);
/// # Ok::<(), tower_jwt_auth::BuildError>(())
/// ```
#[derive(Clone)]
pub struct RequireToolScopes<R = DefaultRejection> {
    pub(super) map: Arc<ScopeMap>,
    pub(super) rejection: R,
}

/// Names (methods, tools, prompts, resource URIs) and the scopes each needs.
type Entries = HashMap<Box<str>, Box<[Box<str>]>>;

/// The map and its settings, shared by every clone of the guard.
pub(super) struct ScopeMap {
    methods: Entries,
    tools: Entries,
    prompts: Entries,
    resources: Entries,
    unmapped: Unmapped,
    /// Every scope of the map, in the order given, once.
    all: Vec<String>,
    sources: Box<[ClaimSource]>,
    pub(super) max_body: usize,
}

impl<R: fmt::Debug> fmt::Debug for RequireToolScopes<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &*self.map;
        f.debug_struct("RequireToolScopes")
            .field("methods", &m.methods)
            .field("tools", &m.tools)
            .field("prompts", &m.prompts)
            .field("resources", &m.resources)
            .field("unmapped", &m.unmapped)
            .field("max_body", &m.max_body)
            .field("rejection", &self.rejection)
            .finish()
    }
}

impl RequireToolScopes {
    /// Starts an empty map.
    pub fn builder() -> RequireToolScopesBuilder {
        RequireToolScopesBuilder {
            entries: Vec::new(),
            unmapped: Unmapped::Deny,
            sources: vec![ClaimSource::scope(), ClaimSource::scp()],
            max_body: DEFAULT_MAX_BODY,
        }
    }
}

impl<R> RequireToolScopes<R> {
    /// Every scope the map names, each once, in the order given: the
    /// RFC 9728 metadata's `scopes_supported`.
    pub fn scopes(&self) -> Vec<String> {
        self.map.all.clone()
    }

    /// Answers refusals with `rejection` instead of [`DefaultRejection`].
    pub fn on_rejection<R2>(self, rejection: R2) -> RequireToolScopes<R2> {
        RequireToolScopes {
            map: self.map,
            rejection,
        }
    }

    /// The same check from a handler, given the request body: `Err` is the
    /// 403 the guard would give. A body that is not JSON is refused too
    /// ([`AuthError::Forbidden`]; the guard itself answers it 400): nothing
    /// in it can be judged.
    ///
    /// ```
    /// use tower_jwt_auth::{AuthError, Claims};
    /// use tower_jwt_auth::jsonrpc::RequireToolScopes;
    ///
    /// fn may_run(guard: &RequireToolScopes, claims: &Claims, body: &[u8]) -> Result<(), AuthError> {
    ///     guard.check(claims, body)
    /// }
    /// # let _ = may_run;
    /// ```
    ///
    /// # Errors
    /// [`AuthError::InsufficientScope`] naming the scopes to ask for;
    /// [`AuthError::Forbidden`] for a name with no entry under
    /// [`Unmapped::Deny`], or a body that is not JSON.
    pub fn check<C>(&self, claims: &Claims<C>, body: &[u8]) -> Result<(), AuthError> {
        match messages(body) {
            Some(messages) => self.map.judge(Some(claims.token()), &messages),
            None => Err(AuthError::Forbidden(
                "the body is not JSON: no call in it can be judged".into(),
            )),
        }
    }
}

/// Which list of the map an entry goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Method,
    Tool,
    Prompt,
    Resource,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Method => "method",
            Kind::Tool => "tool",
            Kind::Prompt => "prompt",
            Kind::Resource => "resource",
        }
    }
}

/// Builds a [`RequireToolScopes`]; mistakes are reported by
/// [`build`](RequireToolScopesBuilder::build).
#[must_use]
pub struct RequireToolScopesBuilder {
    entries: Vec<(Kind, String, Vec<String>)>,
    unmapped: Unmapped,
    sources: Vec<ClaimSource>,
    max_body: usize,
}

impl fmt::Debug for RequireToolScopesBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireToolScopesBuilder")
            .field("entries", &self.entries.len())
            .field("unmapped", &self.unmapped)
            .field("max_body", &self.max_body)
            .finish_non_exhaustive()
    }
}

fn owned<S: Into<String>>(scopes: impl IntoIterator<Item = S>) -> Vec<String> {
    scopes.into_iter().map(Into::into).collect()
}

impl RequireToolScopesBuilder {
    /// Every message with this JSON-RPC `method` (exact match) needs all
    /// of `scopes` (`initialize`, `tools/list`, ...). Methods with no
    /// entry need nothing from this guard.
    pub fn method<S: Into<String>>(
        mut self,
        method: impl Into<String>,
        scopes: impl IntoIterator<Item = S>,
    ) -> Self {
        self.entries
            .push((Kind::Method, method.into(), owned(scopes)));
        self
    }

    /// A `tools/call` of the tool `name` (exact match) needs all of
    /// `scopes` (none given: it needs nothing beyond the other guards).
    pub fn tool<S: Into<String>>(
        mut self,
        name: impl Into<String>,
        scopes: impl IntoIterator<Item = S>,
    ) -> Self {
        self.entries.push((Kind::Tool, name.into(), owned(scopes)));
        self
    }

    /// A `prompts/get` of the prompt `name` (exact match) needs all of
    /// `scopes`, and so does a `completion/complete` for it.
    pub fn prompt<S: Into<String>>(
        mut self,
        name: impl Into<String>,
        scopes: impl IntoIterator<Item = S>,
    ) -> Self {
        self.entries
            .push((Kind::Prompt, name.into(), owned(scopes)));
        self
    }

    /// A `resources/read` of the resource `uri` (exact match) needs all of
    /// `scopes`, and so do a `resources/subscribe` to it and a
    /// `completion/complete` for it.
    pub fn resource<S: Into<String>>(
        mut self,
        uri: impl Into<String>,
        scopes: impl IntoIterator<Item = S>,
    ) -> Self {
        self.entries
            .push((Kind::Resource, uri.into(), owned(scopes)));
        self
    }

    /// What a tool, prompt or resource with no entry needs (default:
    /// [`Unmapped::Deny`]).
    pub fn unmapped(mut self, unmapped: Unmapped) -> Self {
        self.unmapped = unmapped;
        self
    }

    /// Where the token's scopes are read (default: `scope` and `scp`).
    pub fn sources(mut self, sources: impl IntoIterator<Item = ClaimSource>) -> Self {
        self.sources = sources.into_iter().collect();
        self
    }

    /// The largest body read (default 1 MiB); a larger one is answered 413.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// The guard.
    ///
    /// # Errors
    /// [`BuildError::InvalidConfig`] for an empty name, a name mapped
    /// twice, a scope that is not an RFC 6749 `scope-token` (empty, or
    /// holding a space, `"`, `\` or a character outside printable ASCII),
    /// no scope source, or a zero body limit.
    pub fn build(self) -> Result<RequireToolScopes, BuildError> {
        if self.max_body == 0 {
            return Err(BuildError::config(
                "max_body",
                "zero: no JSON-RPC message fits",
            ));
        }
        if self.sources.is_empty() {
            return Err(BuildError::config(
                "sources",
                "no scope source: no token would hold a scope",
            ));
        }
        let mut all = Vec::new();
        let mut note = |scopes: &[String]| -> Result<(), BuildError> {
            for s in scopes {
                scope_token(s)?;
                if !all.contains(s) {
                    all.push(s.clone());
                }
            }
            Ok(())
        };
        let mut lists: [Entries; 4] = Default::default();
        for (kind, name, scopes) in self.entries {
            if name.is_empty() {
                return Err(BuildError::config(
                    "RequireToolScopes",
                    format!("an empty {} name", kind.noun()),
                ));
            }
            note(&scopes)?;
            let list = &mut lists[kind as usize];
            let scopes = scopes.into_iter().map(String::into_boxed_str).collect();
            if list.insert(name.clone().into(), scopes).is_some() {
                return Err(BuildError::config(
                    "RequireToolScopes",
                    format!("the {} {name:?} is mapped twice", kind.noun()),
                ));
            }
        }
        if let Unmapped::Require(scopes) = &self.unmapped {
            note(scopes)?;
        }
        let [methods, tools, prompts, resources] = lists;
        Ok(RequireToolScopes {
            map: Arc::new(ScopeMap {
                methods,
                tools,
                prompts,
                resources,
                unmapped: self.unmapped,
                all,
                sources: self.sources.into(),
                max_body: self.max_body,
            }),
            rejection: DefaultRejection::default(),
        })
    }
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn scope_token(scope: &str) -> Result<(), BuildError> {
    if scope.is_empty()
        || !scope
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
    {
        return Err(BuildError::config(
            "RequireToolScopes",
            format!("{scope:?} is not an OAuth scope-token (RFC 6749 §3.3)"),
        ));
    }
    Ok(())
}

impl ScopeMap {
    /// What `messages` need, and whether `claims` (`None`: no verified
    /// claims) hold it. Every method of every message is judged; for
    /// the methods that name a tool, a prompt or a resource, every name (or
    /// URI) too.
    pub(super) fn judge(
        &self,
        claims: Option<&TokenClaims>,
        messages: &[Message],
    ) -> Result<(), AuthError> {
        let mut needed: Vec<&str> = Vec::new();
        let mut denied: Option<&'static str> = None;
        fn need<'a>(scopes: &'a [Box<str>], needed: &mut Vec<&'a str>) {
            for s in scopes {
                if !needed.contains(&&**s) {
                    needed.push(s);
                }
            }
        }
        let unmapped: Box<[Box<str>]> = match &self.unmapped {
            Unmapped::Require(scopes) => scopes.iter().map(|s| s.as_str().into()).collect(),
            _ => Box::new([]),
        };
        for m in messages {
            for method in &m.methods {
                if let Some(scopes) = self.methods.get(method.as_str()) {
                    need(scopes, &mut needed);
                }
                // What the method names, in which list, and whether it
                // failed to name it.
                let named: &[(Kind, &Entries, &[String], bool)] = match method.as_str() {
                    "tools/call" => &[(Kind::Tool, &self.tools, &m.names, m.unnamed)],
                    "prompts/get" => &[(Kind::Prompt, &self.prompts, &m.names, m.unnamed)],
                    "resources/read" | "resources/subscribe" => {
                        &[(Kind::Resource, &self.resources, &m.uris, m.unnamed)]
                    }
                    // A prompt or a resource, in `params.ref`; a reference
                    // that names neither is unnamed.
                    "completion/complete" => &[
                        (
                            Kind::Prompt,
                            &self.prompts,
                            &m.ref_names,
                            m.unnamed
                                || m.ref_unnamed
                                || (m.ref_names.is_empty() && m.ref_uris.is_empty()),
                        ),
                        (Kind::Resource, &self.resources, &m.ref_uris, false),
                    ],
                    _ => continue,
                };
                for &(kind, list, keys, unnamed) in named {
                    let mut lookups = keys
                        .iter()
                        .map(|k| list.get(k.as_str()))
                        .collect::<Vec<_>>();
                    if unnamed {
                        lookups.push(None);
                    }
                    for found in lookups {
                        match (found, &self.unmapped) {
                            (Some(scopes), _) => need(scopes, &mut needed),
                            (None, Unmapped::Allow) => {}
                            (None, Unmapped::Require(_)) => need(&unmapped, &mut needed),
                            (None, _) => denied = Some(kind.noun()),
                        }
                    }
                }
            }
        }
        if let Some(noun) = denied {
            return Err(AuthError::Forbidden(format!(
                "a JSON-RPC call names a {noun} that has no entry in RequireToolScopes"
            )));
        }
        if needed.is_empty() {
            return Ok(());
        }
        let Some(claims) = claims else {
            return Err(AuthError::MissingToken);
        };
        let payload = claims.value();
        let held: Vec<&str> = self.sources.iter().flat_map(|s| s.read(payload)).collect();
        if needed.iter().all(|n| held.contains(n)) {
            return Ok(());
        }
        // MCP 2025-11-25, Runtime Insufficient Scope Errors (recommended
        // approach): the scopes this call needs, and those the token holds
        // that this server knows, so a client that replaces its scopes with
        // the challenge's loses none.
        let mut challenge = needed;
        for s in &self.all {
            if held.contains(&s.as_str()) && !challenge.contains(&s.as_str()) {
                challenge.push(s);
            }
        }
        Err(AuthError::InsufficientScope {
            required: challenge.join(" "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::Claims;
    use crate::{Algorithm, JsonClaims, Key, Verifier};

    fn claims(scope: &str) -> Claims<JsonClaims> {
        let key = [7u8; 32];
        let verifier = Verifier::builder()
            .key(Key::hmac(Algorithm::HS256, key).unwrap())
            .any_audience()
            .build()
            .unwrap();
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &serde_json::json!({"exp": 4102444800u64, "scope": scope}),
            &jsonwebtoken::EncodingKey::from_secret(&key),
        )
        .unwrap();
        verifier.verify(&token).unwrap()
    }

    fn guard() -> RequireToolScopes {
        RequireToolScopes::builder()
            .method("tools/list", ["mcp:tools"])
            .tool("whoami", ["mcp:tools"])
            .tool("admin_echo", ["mcp:admin"])
            .prompt("p", ["mcp:prompts"])
            .resource("file:///secret", ["mcp:files"])
            .build()
            .unwrap()
    }

    fn call(tool: &str) -> String {
        serde_json::json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":tool}})
            .to_string()
    }

    #[test]
    fn a_body_that_is_not_json_is_refused_by_the_handler_check_too() {
        let g = guard();
        let err = g
            .check(&claims("mcp:admin mcp:tools"), b"{\"method\":")
            .unwrap_err();
        assert!(matches!(err, AuthError::Forbidden(_)), "{err:?}");
    }

    #[test]
    fn a_tool_needs_its_scopes_and_the_challenge_keeps_held_ones() {
        let g = guard();
        assert!(
            g.check(&claims("mcp:tools"), call("whoami").as_bytes())
                .is_ok()
        );
        let err = g
            .check(&claims("mcp:tools openid"), call("admin_echo").as_bytes())
            .unwrap_err();
        match err {
            AuthError::InsufficientScope { required } => {
                assert_eq!(required, "mcp:admin mcp:tools")
            }
            other => panic!("{other:?}"),
        }
        assert!(
            g.check(&claims("mcp:admin"), call("admin_echo").as_bytes())
                .is_ok()
        );
    }

    #[test]
    fn lookalike_names_are_not_the_tool() {
        let g = guard();
        // Different case, a Cyrillic а, a trailing space, a fullwidth letter:
        // no entry, refused by default.
        for name in [
            "Admin_echo",
            "\u{430}dmin_echo",
            "admin_echo ",
            "ａdmin_echo",
            "ADMIN_ECHO",
        ] {
            let err = g
                .check(&claims("mcp:tools mcp:admin"), call(name).as_bytes())
                .unwrap_err();
            assert!(matches!(err, AuthError::Forbidden(_)), "{name}: {err:?}");
        }
        let open = RequireToolScopes::builder()
            .tool("admin_echo", ["mcp:admin"])
            .unmapped(Unmapped::Require(vec!["mcp:other".into()]))
            .build()
            .unwrap();
        let err = open
            .check(&claims("mcp:admin"), call("Admin_echo").as_bytes())
            .unwrap_err();
        assert!(
            matches!(err, AuthError::InsufficientScope { ref required } if required == "mcp:other mcp:admin"),
            "{err:?}"
        );
    }

    #[test]
    fn every_batch_member_and_duplicate_is_judged() {
        let g = guard();
        let batch = format!("[{},{}]", call("whoami"), call("admin_echo"));
        assert!(g.check(&claims("mcp:tools"), batch.as_bytes()).is_err());
        assert!(
            g.check(&claims("mcp:tools mcp:admin"), batch.as_bytes())
                .is_ok()
        );
        let dup = br#"{"method":"tools/call","params":{"name":"whoami","name":"admin_echo"}}"#;
        assert!(g.check(&claims("mcp:tools"), dup).is_err());
        let dup = br#"{"method":"ping","method":"tools/list"}"#;
        assert!(g.check(&claims("openid"), dup).is_err());
    }

    /// `resources/subscribe` names a resource and `completion/complete` a
    /// prompt or a resource (in `params.ref`): each needs that entry's
    /// scopes, as reading it or getting it does.
    #[test]
    fn subscribing_and_completing_need_the_scopes_of_what_they_name() {
        let g = guard();
        let subscribe = br#"{"method":"resources/subscribe","params":{"uri":"file:///secret"}}"#;
        assert!(g.check(&claims("mcp:tools"), subscribe).is_err());
        assert!(g.check(&claims("mcp:files"), subscribe).is_ok());
        let prompt = br#"{"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"p"},"argument":{"name":"a","value":"x"}}}"#;
        assert!(g.check(&claims("mcp:tools"), prompt).is_err());
        assert!(g.check(&claims("mcp:prompts"), prompt).is_ok());
        let resource = br#"{"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"file:///secret"}}}"#;
        assert!(g.check(&claims("mcp:prompts"), resource).is_err());
        assert!(g.check(&claims("mcp:files"), resource).is_ok());
        // A reference that names nothing cannot be judged: refused.
        for unnamed in [
            br#"{"method":"completion/complete","params":{"ref":"p"}}"#.as_slice(),
            br#"{"method":"completion/complete","params":{}}"#,
            br#"{"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":7}}}"#,
        ] {
            let all = claims("mcp:tools mcp:prompts mcp:files mcp:admin");
            assert!(
                g.check(&all, unnamed).is_err(),
                "{}",
                String::from_utf8_lossy(unnamed)
            );
        }
    }

    #[test]
    fn prompts_resources_and_unnamed_calls() {
        let g = guard();
        let read = br#"{"method":"resources/read","params":{"uri":"file:///secret"}}"#;
        assert!(g.check(&claims("mcp:tools"), read).is_err());
        assert!(g.check(&claims("mcp:files"), read).is_ok());
        let get = br#"{"method":"prompts/get","params":{"name":"p"}}"#;
        assert!(g.check(&claims("mcp:prompts"), get).is_ok());
        let positional = br#"{"method":"tools/call","params":["whoami"]}"#;
        assert!(g.check(&claims("mcp:tools mcp:admin"), positional).is_err());
        // Methods with no entry: nothing needed. Not JSON: nothing that
        // can be judged, so refused.
        assert!(g.check(&claims(""), b"{not json").is_err());
        assert!(g.check(&claims(""), br#"{"method":"ping"}"#).is_ok());
    }

    #[test]
    fn bad_maps_are_refused() {
        for b in [
            RequireToolScopes::builder().tool("", ["a"]),
            RequireToolScopes::builder().tool("t", ["a b"]),
            RequireToolScopes::builder().tool("t", [""]),
            RequireToolScopes::builder().tool("t", ["a\"b"]),
            RequireToolScopes::builder()
                .tool("t", ["a"])
                .tool("t", ["b"]),
            RequireToolScopes::builder().max_body(0),
            RequireToolScopes::builder().sources([]),
        ] {
            assert!(b.build().is_err());
        }
    }
}
