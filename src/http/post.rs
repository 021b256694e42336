//! The form POST of an introspection request (feature `introspection`):
//! bounded in time and size, 200 only, never re-sent by a redirect. Error
//! texts name the endpoint, never the form (which holds the token).

use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Client, StatusCode, Url};

use super::{Limits, check_answered, error_chain};
use crate::text::redact_url;

/// `application/x-www-form-urlencoded` encoding of one value.
pub(crate) fn form_encode(value: &str, out: &mut String) {
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
        }
    }
}

/// One POST of a form within `timeout` and `max_body`.
pub(crate) struct Post<'a> {
    pub(crate) client: &'a Client,
    pub(crate) url: &'a Url,
    pub(crate) authorization: Option<&'a str>,
    /// The `Accept` header.
    pub(crate) accept: &'static str,
    pub(crate) form: String,
    /// The timeout, the body limit and the rule for the URL the answer
    /// came from ([`check_answered`]).
    pub(crate) limits: &'a Limits,
}

impl Post<'_> {
    /// The body of a 200 answer.
    pub(crate) async fn send(self) -> Result<Vec<u8>, String> {
        self.send_for(false).await.map(|(_, body)| body)
    }

    /// The status and body of a 200 answer, or of a 400 one (a token
    /// endpoint's OAuth error, RFC 6749 §5.2: a refusal, not an outage).
    #[cfg_attr(not(feature = "exchange"), allow(dead_code))]
    pub(crate) async fn send_token_request(self) -> Result<(StatusCode, Vec<u8>), String> {
        self.send_for(true).await
    }

    async fn send_for(self, oauth_errors: bool) -> Result<(StatusCode, Vec<u8>), String> {
        let url = self.url;
        let shown = redact_url(url.as_str());
        let work = async {
            let mut req = self
                .client
                .post(url.clone())
                .header(ACCEPT, self.accept)
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                // A body that cannot be replayed: a client that follows
                // redirects does not re-send the form (the token, a client
                // secret or assertion) on a 307 or 308; it hands back the
                // redirect, which is refused below. (Its length is still
                // known: sent with a Content-Length.)
                .body(reqwest::Body::wrap(self.form));
            if let Some(value) = self.authorization {
                req = req.header(AUTHORIZATION, value);
            }
            let mut res = req
                .send()
                .await
                .map_err(|e| format!("POST {shown}: {}", error_chain(&e)))?;
            check_answered(url, res.url(), self.limits.allow_http)
                .map_err(|why| format!("POST {}", redact_url(&why)))?;
            // A 301, 302 or 303 followed turned the POST into a GET without
            // the form: whatever answers it is no answer about the token.
            if res.url() != url {
                return Err(format!(
                    "POST {shown}: redirected to {}, refused: an introspection answer comes \
                     from the endpoint itself",
                    redact_url(res.url().as_str())
                ));
            }
            let status = res.status();
            match status {
                StatusCode::OK => {}
                StatusCode::BAD_REQUEST if oauth_errors => {}
                status @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
                    return Err(format!(
                        "POST {shown}: status {status}: the endpoint refused this client's \
                         credentials; check the client_id, the client_secret and the client \
                         authentication method"
                    ));
                }
                status => {
                    return Err(format!(
                        "POST {shown}: status {status} (only 200 is accepted)"
                    ));
                }
            }
            if res
                .content_length()
                .is_some_and(|len| len > self.limits.max_body as u64)
            {
                return Err(format!(
                    "POST {shown}: body over {} bytes",
                    self.limits.max_body
                ));
            }
            let mut body = Vec::new();
            while let Some(chunk) = res
                .chunk()
                .await
                .map_err(|e| format!("POST {shown}: {}", error_chain(&e)))?
            {
                if body.len() + chunk.len() > self.limits.max_body {
                    return Err(format!(
                        "POST {shown}: body over {} bytes",
                        self.limits.max_body
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok((status, body))
        };
        tokio::time::timeout(self.limits.timeout, work)
            .await
            .map_err(|_| {
                format!(
                    "POST {shown}: no complete answer within {:?}",
                    self.limits.timeout
                )
            })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding() {
        let mut out = String::new();
        form_encode("a b+c/d=é~", &mut out);
        assert_eq!(out, "a+b%2Bc%2Fd%3D%C3%A9%7E");
    }
}
