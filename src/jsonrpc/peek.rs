//! What the scope guard reads of a JSON-RPC body: for each message (one,
//! or every member of a batch), every `method` and, in every `params`
//! object, every `name` and `uri`. Duplicate members are all kept, so that
//! whichever one the server behind reads (serde_json's `Value` keeps the
//! last, other parsers the first), the guard has judged it.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// One JSON-RPC message as the guard sees it.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Message {
    /// Every string `method` member.
    pub(crate) methods: Vec<String>,
    /// Every string `name` member of every `params` object.
    pub(crate) names: Vec<String>,
    /// Every string `uri` member of every `params` object.
    pub(crate) uris: Vec<String>,
    /// Every string `name` member of every `params.ref` object
    /// (`completion/complete`: a prompt).
    pub(crate) ref_names: Vec<String>,
    /// Every string `uri` member of every `params.ref` object
    /// (`completion/complete`: a resource).
    pub(crate) ref_uris: Vec<String>,
    /// A `params.ref` that is not an object, or one that names nothing.
    pub(crate) ref_unnamed: bool,
    /// A `params` that is not an object (by-position params), or a `name`
    /// or `uri` that is not a string: the operation cannot be named.
    pub(crate) unnamed: bool,
}

/// The messages of a body: `None` when it is not JSON at all (the guard
/// answers 400). A JSON value that is neither an
/// object nor an array holds no message; non-object batch members are
/// skipped (the server answers "invalid request" for them).
pub(crate) fn messages(body: &[u8]) -> Option<Vec<Message>> {
    serde_json::from_slice::<Body>(body).ok().map(|b| b.0)
}

struct Body(Vec<Message>);

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Body;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("JSON")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Body, A::Error> {
                Ok(Body(vec![MessageVisitor.visit_map(map)?]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Body, A::Error> {
                let mut out = Vec::new();
                while let Some(member) = seq.next_element::<Member>()? {
                    out.extend(member.0);
                }
                Ok(Body(out))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Body, E> {
                Ok(Body(Vec::new()))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Body, E> {
                Ok(Body(Vec::new()))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Body, E> {
                Ok(Body(Vec::new()))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Body, E> {
                Ok(Body(Vec::new()))
            }
            fn visit_str<E>(self, _: &str) -> Result<Body, E> {
                Ok(Body(Vec::new()))
            }
            fn visit_unit<E>(self) -> Result<Body, E> {
                Ok(Body(Vec::new()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A batch member: a message if it is an object, nothing otherwise.
struct Member(Option<Message>);

impl<'de> Deserialize<'de> for Member {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Member;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON-RPC message")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Member, A::Error> {
                Ok(Member(Some(MessageVisitor.visit_map(map)?)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Member, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Member(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Member, E> {
                Ok(Member(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Member, E> {
                Ok(Member(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Member, E> {
                Ok(Member(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Member, E> {
                Ok(Member(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<Member, E> {
                Ok(Member(None))
            }
            fn visit_unit<E>(self) -> Result<Member, E> {
                Ok(Member(None))
            }
        }
        d.deserialize_any(V)
    }
}

struct MessageVisitor;

impl<'de> Visitor<'de> for MessageVisitor {
    type Value = Message;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC message")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Message, A::Error> {
        let mut m = Message::default();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match &*key {
                "method" => {
                    if let Some(method) = map.next_value::<Scalar>()?.0 {
                        m.methods.push(method);
                    }
                }
                "params" => map.next_value_seed(NamedSeed {
                    into: Named {
                        names: &mut m.names,
                        uris: &mut m.uris,
                        unnamed: &mut m.unnamed,
                    },
                    refs: Some(Named {
                        names: &mut m.ref_names,
                        uris: &mut m.ref_uris,
                        unnamed: &mut m.ref_unnamed,
                    }),
                    null_is_absent: true,
                    must_name: false,
                })?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(m)
    }
}

/// A string, or `None` for any other JSON value.
struct Scalar(Option<String>);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_str<E>(self, s: &str) -> Result<Scalar, E> {
                Ok(Scalar(Some(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Scalar, E> {
                Ok(Scalar(Some(s)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Scalar, E> {
                Ok(Scalar(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Scalar, E> {
                Ok(Scalar(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Scalar, E> {
                Ok(Scalar(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Scalar, E> {
                Ok(Scalar(None))
            }
            fn visit_unit<E>(self) -> Result<Scalar, E> {
                Ok(Scalar(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads a `params` value into the message.
/// What an object names: its string `name` and `uri` members, and whether
/// it failed to name something.
struct Named<'m> {
    names: &'m mut Vec<String>,
    uris: &'m mut Vec<String>,
    unnamed: &'m mut bool,
}

/// `params` (`ref: None`) or `params.ref` of `completion/complete`
/// (`ref: Some(..)` is where a `ref` member inside goes): an object whose
/// `name` and `uri` members are collected. Any other JSON value names
/// nothing: unnamed, but for `"params": null`, which is as if absent. A
/// `ref` that names neither a `name` nor a `uri` is unnamed too.
struct NamedSeed<'m> {
    into: Named<'m>,
    /// Where `params.ref` goes (for `params` only).
    refs: Option<Named<'m>>,
    /// `null` is no value (true for `params`).
    null_is_absent: bool,
    /// A value must name something (true for `params.ref`).
    must_name: bool,
}

impl<'de> de::DeserializeSeed<'de> for NamedSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl NamedSeed<'_> {
    fn names_nothing<E>(self) -> Result<(), E> {
        *self.into.unnamed = true;
        Ok(())
    }
}

impl<'de> Visitor<'de> for NamedSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON-RPC params")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let NamedSeed {
            into,
            mut refs,
            must_name,
            ..
        } = self;
        let mut named = false;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let list = match (&*key, refs.as_mut()) {
                ("name", _) => &mut *into.names,
                ("uri", _) => &mut *into.uris,
                ("ref", Some(refs)) => {
                    map.next_value_seed(NamedSeed {
                        into: Named {
                            names: &mut *refs.names,
                            uris: &mut *refs.uris,
                            unnamed: &mut *refs.unnamed,
                        },
                        refs: None,
                        null_is_absent: false,
                        must_name: true,
                    })?;
                    continue;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            match map.next_value::<Scalar>()?.0 {
                Some(s) => {
                    list.push(s);
                    named = true;
                }
                None => *into.unnamed = true,
            }
        }
        if must_name && !named {
            *into.unnamed = true;
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        self.names_nothing()
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        self.names_nothing()
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        self.names_nothing()
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        self.names_nothing()
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        self.names_nothing()
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        self.names_nothing()
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        match self.null_is_absent {
            true => Ok(()),
            false => self.names_nothing(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(body: &str) -> Message {
        let mut all = messages(body.as_bytes()).expect("JSON");
        assert_eq!(all.len(), 1, "{body}");
        all.remove(0)
    }

    #[test]
    fn reads_method_name_and_uri() {
        let m = one(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{"name":"x","uri":"y"}}}"#,
        );
        assert_eq!(m.methods, ["tools/call"]);
        assert_eq!(m.names, ["whoami"]);
        assert!(m.uris.is_empty() && !m.unnamed);
        let m = one(r#"{"method":"resources/read","params":{"uri":"file:///a"}}"#);
        assert_eq!(m.uris, ["file:///a"]);
    }

    #[test]
    fn duplicates_are_all_kept_and_escapes_decoded() {
        let m = one(
            r#"{"method":"ping","method":"tools\/call","params":{"name":"a"},"params":{"name":"\u0061dmin","name":"b"}}"#,
        );
        assert_eq!(m.methods, ["ping", "tools/call"]);
        assert_eq!(m.names, ["a", "admin", "b"]);
    }

    #[test]
    fn names_that_are_not_strings_are_flagged() {
        assert!(one(r#"{"method":"tools/call","params":["admin_echo"]}"#).unnamed);
        assert!(one(r#"{"method":"tools/call","params":{"name":["admin_echo"]}}"#).unnamed);
        assert!(!one(r#"{"method":"tools/call","params":null}"#).unnamed);
    }

    #[test]
    fn batches_and_non_messages() {
        let all = messages(br#"[{"method":"a"}, 7, [1], {"method":"b"}]"#).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].methods, ["b"]);
        assert!(messages(b"\"x\"").unwrap().is_empty());
        assert!(messages(b"{\"method\":").is_none());
        assert!(messages(b"{} trailing").is_none());
        assert!(messages(b"\xEF\xBB\xBF{}").is_none());
    }
}
