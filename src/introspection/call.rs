//! One introspection, from the cache or the endpoint: the answer cache,
//! the single flight per token, discovery of the endpoint, the call and
//! the reading of its answer.

use super::*;

impl Inner {
    /// Whether `token` may be sent to the endpoint: an RFC 6750 `b64token`
    /// (`1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`)
    /// no longer than the limit. Anything else is refused without a call:
    /// no access token has that shape, and each distinct one would cost a
    /// call (form-encoding triples the bytes of any other character).
    pub(super) fn sendable(&self, token: &str) -> Result<(), AuthError> {
        if token.len() > self.max_token_len {
            return Err(AuthError::TokenTooLarge {
                len: token.len(),
                limit: self.max_token_len,
            });
        }
        let chars = token.trim_end_matches('=');
        if chars.is_empty()
            || !chars.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
            })
        {
            return Err(AuthError::Malformed(
                "the token is not an RFC 6750 b64token; not sent for introspection",
            ));
        }
        Ok(())
    }

    /// A slot for one more call in flight, if under the cap.
    pub(super) fn permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, AuthError> {
        Arc::clone(&self.calls).try_acquire_owned().map_err(|_| {
            tracing::warn!(
                endpoint = %self.endpoint_name(),
                max_concurrent_calls = self.max_calls,
                "introspection calls at their cap: request refused without a call"
            );
            AuthError::IntrospectionUnavailable(
                format!(
                    "{} introspection calls are under way, the most allowed at once \
                 (max_concurrent_calls): refused without a call",
                    self.max_calls
                )
                .into(),
            )
        })
    }

    /// One introspection call, observed, and whether an answer came that
    /// failed its checks.
    pub(super) async fn call(&self, token: &str) -> (Outcome, Reply) {
        let started = std::time::Instant::now();
        let (outcome, answer) = match self.ask(token).await {
            Ok(outcome) => (outcome, Reply::Missing),
            Err(refused) => (Err(refused), Reply::Refused),
        };
        let result = match &outcome {
            Ok(_) => "active",
            Err(AuthError::Inactive) => "inactive",
            Err(e) if e.kind() == crate::ErrorKind::Unauthenticated => "refused",
            Err(_) => "error",
        };
        crate::observe::introspection(result, started);
        tracing::debug!(endpoint = %self.endpoint_name(), result, "token introspected");
        (outcome, answer)
    }

    /// The endpoint, or the issuer it is discovered from, for messages.
    pub(super) fn endpoint_name(&self) -> std::borrow::Cow<'_, str> {
        crate::text::redact_url(match self.url.get() {
            Some(url) => url.as_str(),
            None => self.discover_from.as_deref().unwrap_or_default(),
        })
    }

    /// The endpoint: the configured one, or the discovered one (discovery
    /// runs once at a time, and again after a failure).
    pub(super) async fn endpoint(&self) -> Result<&Url, AuthError> {
        self.url
            .get_or_try_init(|| async {
                let Some(issuer) = self.discover_from.as_deref() else {
                    return Err("no endpoint configured".to_owned());
                };
                let mut failed = self
                    .discovery_failed
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                if let Some((at, why)) = failed.take()
                    && at.elapsed() < DISCOVERY_RETRY
                {
                    return Err(why);
                }
                let limits = self.limits.max_body(crate::jwks::DEFAULT_MAX_BODY);
                let url = http::discover_endpoint(
                    &self.client,
                    issuer,
                    &limits,
                    "introspection_endpoint",
                )
                .await
                .inspect_err(|why| {
                    *self
                        .discovery_failed
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) =
                        Some((std::time::Instant::now(), why.clone()));
                })?;
                tracing::debug!(issuer = %crate::text::redact_url(issuer), endpoint = %crate::text::redact_url(url.as_str()), "introspection endpoint discovered");
                Ok(url)
            })
            .await
            .map_err(|why| {
                let why = format!(
                    "cannot find the introspection endpoint of {}: {why}",
                    self.endpoint_name()
                );
                tracing::warn!(error = %why, "token introspection failed");
                AuthError::IntrospectionUnavailable(why.into())
            })
    }

    /// The call itself, and the judgement of its answer; the outer error
    /// is a signed answer that failed its checks (RFC 9701).
    pub(super) async fn ask(&self, token: &str) -> Result<Outcome, AuthError> {
        let url = match self.endpoint().await {
            Ok(url) => url,
            Err(e) => return Ok(Err(e)),
        };
        // Another instance's answer, judged as the endpoint's would be and
        // reused no longer than it has left.
        let shared = self.shared.as_ref().map(|shared| (shared, hash(token)));
        if let Some((shared, key)) = &shared
            && let Some((body, left)) = shared.get(key).await
        {
            return Ok(unix_secs(&*self.clock).and_then(|now| {
                let mut verified = self.judge(url, body, now)?;
                let cap = now + left.as_secs_f64();
                verified.reuse_until = Some(verified.reuse_until.map_or(cap, |u| u.min(cap)));
                Ok(verified)
            }));
        }
        let mut form = String::with_capacity(token.len() + 64);
        form.push_str("token=");
        http::form_encode(token, &mut form);
        form.push_str("&token_type_hint=access_token");
        let audience = self.assertion_audience.as_deref().unwrap_or(url.as_str());
        if let Err(e) = self
            .credentials
            .add_to_form(&mut form, audience, || unix_secs(&*self.clock))
        {
            return Ok(Err(e));
        }
        let post = http::Post {
            client: &self.client,
            url,
            authorization: self.credentials.authorization(),
            accept: if self.signed_answers.is_some() {
                SIGNED_ANSWER
            } else {
                "application/json"
            },
            form,
            limits: &self.limits,
        };
        let body = match post.send().await {
            Ok(body) => body,
            Err(why) => {
                tracing::warn!(endpoint = %crate::text::redact_url(url.as_str()), error = %why, "token introspection failed");
                return Ok(Err(AuthError::IntrospectionUnavailable(why.into())));
            }
        };
        let body = match &self.signed_answers {
            Some(verifier) => self.unwrap_signed(url, verifier, body).await?,
            None => body,
        };
        let now = match unix_secs(&*self.clock) {
            Ok(now) => now,
            Err(e) => return Ok(Err(e)),
        };
        let Some((shared, key)) = shared else {
            return Ok(self.judge(url, body, now));
        };
        let outcome = self.judge(url, body.clone(), now);
        if let Ok(verified) = &outcome {
            let left = verified.reuse_until.unwrap_or(now) - now;
            if left > 0.0 {
                shared
                    .put(&key, &body, Duration::from_secs_f64(left.min(1e9)))
                    .await;
            }
        }
        Ok(outcome)
    }

    /// The answer inside an RFC 9701 signed answer: a JWT of type
    /// `token-introspection+jwt` from the authorization server, for this
    /// client, recent, whose `token_introspection` claim is the answer.
    pub(super) async fn unwrap_signed(
        &self,
        url: &Url,
        verifier: &Verifier,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, AuthError> {
        let refused = |why: &dyn fmt::Display| {
            let shown = crate::text::redact_url(url.as_str());
            let why = format!("POST {shown}: the signed answer is refused: {why}");
            tracing::warn!(endpoint = %shown, error = %why, "token introspection failed");
            AuthError::IntrospectionUnavailable(why.into())
        };
        let jwt = std::str::from_utf8(&body)
            .ok()
            .map(str::trim)
            .filter(|jwt| either::looks_like_jws(jwt))
            .ok_or_else(|| refused(&"it is not a JWT (was the Accept header ignored?)"))?;
        let verified = match verifier.verify_now(jwt) {
            Some(result) => result,
            None => verifier.verify_later(jwt).await,
        }
        .map_err(|e| refused(&e))?;
        let now = unix_secs(&*self.clock)?;
        let oldest = now - self.leeway - self.limits.timeout.as_secs_f64();
        if verified
            .registered()
            .iat()
            .is_none_or(|iat| (iat as f64) < oldest)
        {
            return Err(refused(&"its `iat` is missing or too old"));
        }
        let payload: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(verified.json()).map_err(|e| refused(&e))?;
        match payload.get("token_introspection") {
            Some(answer @ serde_json::Value::Object(_)) => Ok(answer.to_string().into_bytes()),
            _ => Err(refused(&"no `token_introspection` object")),
        }
    }

    /// The verdict on an introspection answer from `url` received at `now`.
    pub(super) fn judge(&self, url: &Url, body: Vec<u8>, now: f64) -> Outcome {
        let not_json = || {
            AuthError::IntrospectionUnavailable(
                format!("POST {url}: the answer is not a JSON object").into(),
            )
        };
        let payload = String::from_utf8(body).map_err(|_| not_json())?;
        let value: serde_json::Value = serde_json::from_str(&payload).map_err(|_| not_json())?;
        let object = value.as_object().ok_or_else(not_json)?;
        match object.get("active") {
            Some(serde_json::Value::Bool(true)) => {}
            Some(serde_json::Value::Bool(false)) => return Err(AuthError::Inactive),
            _ => {
                return Err(AuthError::InvalidClaim(
                    "the introspection answer's `active` is missing or not a boolean".into(),
                ));
            }
        }
        access_token_kind(object, self.allow_untyped)?;
        let raw = read_registered(&payload)?;
        ClaimRules {
            leeway: self.leeway,
            require_exp: false,
            issuers: &self.issuers,
            audiences: &self.audiences,
        }
        .check(&raw, now)?;
        let ttl_end = now + self.max_ttl;
        let until = raw.exp.map_or(ttl_end, |exp| exp.0.min(ttl_end));
        let layout = raw.layout(&payload);
        drop(raw);
        // To the fraction of a second: a whole-second floor would cut up
        // to a second off the configured TTL.
        let mut verified = Verified::checked(layout.holding(payload));
        verified.reuse_until = Some(until);
        Ok(verified)
    }

    /// Caches an answer: active until its `reuse_until` (and kept for
    /// `stale_if_error` more, never past its `exp`), a refusal for the
    /// negative TTL; an outage not at all (the previous answer stays).
    pub(super) fn store(&self, key: [u8; 32], outcome: &Outcome) {
        let Ok(now) = unix_secs(&*self.clock) else {
            // No time to reckon with: nothing earlier may stand in either.
            self.answers.invalidate(&key);
            return;
        };
        let (cache, other, until, stale_until) = match outcome {
            Ok(verified) => {
                let until = verified.reuse_until.unwrap_or(now);
                let stale_end = until + self.stale_if_error;
                let exp = verified.registered().exp();
                (
                    &self.answers,
                    &self.refusals,
                    until,
                    exp.map_or(stale_end, |exp| stale_end.min(exp as f64)),
                )
            }
            Err(e) if e.kind() == crate::ErrorKind::Unauthenticated => {
                let until = now + self.negative_ttl;
                (&self.refusals, &self.answers, until, until)
            }
            Err(_) => return,
        };
        // A negative answer, cached or not, replaces an active one that
        // could otherwise stand in during an outage; an active one ends a
        // refusal.
        other.invalidate(&key);
        if until > now || stale_until > now {
            cache.insert(
                key,
                Answer {
                    outcome: outcome.clone(),
                    until,
                    stale_until,
                },
            );
        } else {
            cache.invalidate(&key);
        }
    }

    /// During an outage: the last active answer for this token hash, if
    /// [`stale_if_error`](IntrospectorBuilder::stale_if_error) still lets it
    /// stand in (never a negative answer, never past the token's `exp`).
    pub(super) fn stale(&self, key: &[u8; 32]) -> Option<Outcome> {
        if self.stale_if_error <= 0.0 {
            return None;
        }
        let answer = self.answers.get(key)?;
        let now = unix_secs(&*self.clock).ok()?;
        let Ok(mut verified) = answer.outcome else {
            return None;
        };
        if now >= answer.stale_until {
            return None;
        }
        tracing::warn!(
            endpoint = %self.endpoint_name(),
            stale_for_secs = now - answer.until,
            "introspection endpoint failing: serving a cached active answer"
        );
        // Stands in for this call only: not reused by a token cache.
        verified.reuse_until = Some(now);
        Some(Ok(verified))
    }
}

/// What came back from the endpoint when a call gave no verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reply {
    /// No usable answer (timeout, 5xx, bad JSON): an outage, which
    /// `stale_if_error` may bridge.
    Missing,
    /// A signed answer that failed its checks (signature, `typ`, `iss`,
    /// `aud`, `iat`): tampering or misconfiguration, never bridged.
    Refused,
}

/// Whether an active answer describes an access token. RFC 7662's
/// `token_type` (an access token type, RFC 6749 §7.1, or an RFC 8693 token
/// type), Keycloak's `typ` and Ory Hydra's `token_use` say which kind of
/// token the server found; any of them naming another kind (a refresh
/// token, an ID token...) refuses the answer, and one must name an access
/// token unless `allow_untyped`. (Without any, an answer may describe a
/// refresh token: oidc-provider leaves `token_type` out for those only.)
pub(super) fn access_token_kind(
    answer: &serde_json::Map<String, serde_json::Value>,
    allow_untyped: bool,
) -> Result<(), AuthError> {
    /// Each field, and the values that name an access token (any case).
    const KINDS: [(&str, &[&str]); 3] = [
        (
            "token_type",
            &[
                "Bearer",
                "DPoP",
                "N_A",
                "PoP",
                "mac",
                "access_token",
                "urn:ietf:params:oauth:token-type:access_token",
            ],
        ),
        // Keycloak: `Refresh`, `Offline`, `ID`, `Logout`... for the others.
        ("typ", &["Bearer", "DPoP"]),
        // Ory Hydra (fosite): `refresh_token` for the others.
        ("token_use", &["access_token"]),
    ];
    let mut named = false;
    for (field, access) in KINDS {
        match answer.get(field) {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::String(kind))
                if access.iter().any(|a| a.eq_ignore_ascii_case(kind)) =>
            {
                named = true;
            }
            Some(_) => {
                return Err(AuthError::InvalidClaim(format!(
                    "the introspection answer's `{field}` names a token that is not an access token"
                )));
            }
        }
    }
    if named || allow_untyped {
        Ok(())
    } else {
        Err(AuthError::InvalidClaim(
            "the introspection answer does not say the token is an access token (no \
             `token_type`); see IntrospectorBuilder::allow_missing_token_type"
                .into(),
        ))
    }
}

/// The cache key of a token: its SHA-256, never the token.
pub(super) fn hash(token: &str) -> [u8; 32] {
    crate::b64::sha256_digest(&[token.as_bytes()])
}
