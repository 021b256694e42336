//! Request paths matched by whole segments, for guard paths and the
//! layer's skipped paths. [`scope`] is the one matcher: the layer's
//! [`JwtAuthLayer::skip_paths`](crate::JwtAuthLayer::skip_paths) and every
//! guard's `paths` go through it, and [`entries`] is the one check of the
//! configured entries.
//!
//! # Matching is on the normalised path, and unclear paths fail closed
//!
//! The path is matched as the request carries it, raw. The layer runs
//! before routing and does not know who else reads the path: a proxy or a
//! gateway in front may resolve `/health/../admin` to `/admin` or decode
//! `%2F` to `/`, while axum's router reads neither. So a path is matched
//! only when it reads the same to everyone, that is when it is already in
//! normal form: it starts with `/`, has no empty segment (`//`, except one
//! trailing `/`), no `.` or `..` segment, no `\` (a separator on Windows
//! servers) and no `;` (path parameters: Java servers read `/admin;x` and
//! `/health/..;/admin` as `/admin`), and no escape that some reader decodes
//! into another path: an encoded letter, digit, `-`, `.`, `_` or `~` (which
//! need no encoding: a proxy or an upstream that decodes `/%61dmin` serves
//! `/admin`), an encoded `/`, `\`, `;` or `%`, an encoded control character
//! (`%00`), or a `%` without two hex digits. Escapes of what a path cannot
//! hold raw (`%20`, `%3F`, `%23`, the bytes of non-ASCII characters) are
//! ordinary. A path that is not in normal form is *unclear*, and fails
//! closed:
//!
//! - a skip never applies to it: the layer authenticates it as any other
//!   request;
//! - every path-scoped guard applies to it: the guard checks it as if it
//!   were under its paths.
//!
//! Such paths are not refused (a request with a valid token and the rights
//! of every guard still passes: an application may use `%2F` in its own
//! path parameters), and not normalised either: normalising
//! `/admin/../health` to `/health` would skip authentication for a request
//! that axum routes under `/admin/{*rest}`. Dots inside a segment are
//! ordinary: gRPC paths (`/package.Service/Method`) match as usual.
//! Matching is case-sensitive, as axum's router is: behind a server that
//! is not, put guards on the routes themselves (`route_layer`) rather
//! than limiting them with paths.
//!
//! Configured entries must be in normal form themselves, start with `/`
//! and hold no `?`, `#`, space or control character: an empty entry (what
//! splitting an unset environment variable on `,` gives) would otherwise
//! cover every path.

use std::sync::Arc;

use crate::error::BuildError;

/// Where a request path stands with respect to a list of path entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The path is in normal form and under one of the entries.
    Inside,
    /// The path is in normal form and under none of the entries.
    Outside,
    /// The path is not in normal form: who reads it decides what it means.
    Unclear,
}

/// The one matcher: where `path` stands with respect to `entries`.
pub(crate) fn scope(entries: &[Box<str>], path: &str) -> Scope {
    if !is_normal(path) {
        Scope::Unclear
    } else if entries.iter().any(|e| covers(e, path)) {
        Scope::Inside
    } else {
        Scope::Outside
    }
}

/// Whether the layer lets `path` through untouched: only a path in normal
/// form under a skipped entry.
pub(crate) fn skips(entries: &[Box<str>], path: &str) -> bool {
    !entries.is_empty() && scope(entries, path) == Scope::Inside
}

/// Whether a guard limited to `entries` (`None`: every path) checks
/// `path`: every path but one in normal form outside its entries.
pub(crate) fn guards(entries: Option<&[Box<str>]>, path: &str) -> bool {
    entries.is_none_or(|entries| scope(entries, path) != Scope::Outside)
}

/// The configured path entries of the builder method `setting`, each
/// checked: in normal form, starting with `/`, no `?`, `#`, space or
/// control character.
///
/// # Errors
/// [`BuildError::InvalidConfig`] naming `setting` and the first entry that
/// is not acceptable.
pub(crate) fn entries<S: Into<String>>(
    setting: &'static str,
    entries: impl IntoIterator<Item = S>,
) -> Result<Arc<[Box<str>]>, BuildError> {
    entries
        .into_iter()
        .map(|e| {
            let e: String = e.into();
            match entry_problem(&e) {
                None => Ok(e.into_boxed_str()),
                Some(why) => Err(BuildError::config(setting, format!("the path {e:?} {why}"))),
            }
        })
        .collect()
}

/// Why `entry` cannot be a path entry, if it cannot.
fn entry_problem(entry: &str) -> Option<&'static str> {
    if entry.is_empty() {
        Some("is empty (it would cover every path; an empty item of a split list?)")
    } else if !entry.starts_with('/') {
        Some("does not start with `/`")
    } else if entry
        .bytes()
        .any(|b| b.is_ascii_control() || matches!(b, b' ' | b'?' | b'#'))
    {
        Some("holds a space, a control character, `?` or `#`")
    } else if !is_normal(entry) {
        Some(
            "is not in normal form (an empty, `.` or `..` segment, `\\`, `;`, or an \
             escape some reader decodes into another path, such as `%2f` or `%61`): \
             no request path would match it",
        )
    } else {
        None
    }
}

/// The path of a request whose path is not known (a forward-auth
/// subrequest from a proxy not declared trusted): unclear, so a skip never
/// applies to it and every path-limited guard does.
pub(crate) const UNKNOWN: &str = "";

/// Whether `path` reads the same to every reader: starts with `/`, no
/// empty segment but a trailing one, no `.` or `..` segment, no `\` or
/// `;`, and every `%` a [`clear_escape`].
fn is_normal(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    let bytes = path.as_bytes();
    if bytes.iter().any(|&b| b == b'\\' || b == b';') {
        return false;
    }
    if bytes
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'%' && !clear_escape(bytes.get(i + 1..i + 3)))
    {
        return false;
    }
    let mut segments = rest.split('/').peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        if segment.is_empty() && !last {
            return false;
        }
        if segment == "." || segment == ".." {
            return false;
        }
    }
    true
}

/// Whether the two bytes after a `%` are an escape every reader decodes
/// to the same path: two hex digits naming a byte that a path cannot hold
/// raw (a space, `"`, `#`, `<`, `>`, `?`, `[`, `]`, `^`, `` ` ``, `{`,
/// `|`, `}`, or a byte of a non-ASCII character) or an ordinary
/// sub-delimiter. Not an escape of what needs none (a letter, a digit,
/// `-`, `.`, `_`, `~`: a proxy or an upstream that decodes it reads
/// another path, `/%61dmin` as `/admin`), of a separator or what acts as
/// one (`/`, `\`, `;`), of `%` itself (decoded twice by some), of a
/// control character (`%00` truncates), nor a `%` without two hex digits.
fn clear_escape(hex: Option<&[u8]>) -> bool {
    let Some(&[hi, lo]) = hex else {
        return false;
    };
    let digit = |c: u8| (c as char).to_digit(16);
    let (Some(hi), Some(lo)) = (digit(hi), digit(lo)) else {
        return false;
    };
    let byte = (hi * 16 + lo) as u8;
    !(byte.is_ascii_alphanumeric()
        || byte.is_ascii_control()
        || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'/' | b'\\' | b';' | b'%'))
}

/// Whether the path `entry` covers `path`, by whole segments:
/// `/admin` covers `/admin`, `/admin/` and `/admin/x`, never
/// `/administrator`. A trailing `/` on the entry changes nothing.
fn covers(entry: &str, path: &str) -> bool {
    let entry = entry.trim_end_matches('/');
    match path.strip_prefix(entry) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> Arc<[Box<str>]> {
        entries.iter().map(|e| Box::from(*e)).collect()
    }

    #[test]
    fn paths_are_matched_by_whole_segments() {
        for (entry, path, want) in [
            ("/admin", "/admin", true),
            ("/admin", "/admin/", true),
            ("/admin", "/admin/x", true),
            ("/admin/", "/admin", true),
            ("/admin", "/administrator", false),
            ("/admin", "/", false),
            ("/pkg.Svc/", "/pkg.Svc/Get", true),
            ("/pkg.Svc/Get", "/pkg.Svc/GetAll", false),
            ("/", "/anything", true),
        ] {
            assert_eq!(covers(entry, path), want, "{entry} {path}");
            let scope = scope(&list(&[entry]), path);
            let expected = if want { Scope::Inside } else { Scope::Outside };
            assert_eq!(scope, expected, "{entry} {path}");
        }
    }

    /// Every way to write a path that someone else may read differently.
    const UNCLEAR: [&str; 41] = [
        // Encoded characters that need no encoding: a proxy or an upstream
        // that decodes them (Go, Flask, Spring) reads `/admin`.
        "/%61dmin",
        "/admi%6E",
        "/%41dmin",
        "/%30/admin",
        "/admin%2D",
        "/admin%5F",
        "/admin%7e",
        // `;`, `%` and NUL encoded: path parameters, double decoding,
        // truncation.
        "/admin%3bx",
        "/admin%3B",
        "/adm%2569n",
        "/admin%00.json",
        "/admin%0a",
        "/admin%7F",
        // Escapes that are not escapes: readers differ on them.
        "/admin%zz",
        "/admin%",
        "",
        "*",
        "admin",
        "//admin",
        "/admin//x",
        "/admin//",
        "/./admin",
        "/admin/.",
        "/admin/./x",
        "/x/../admin",
        "/admin/..",
        "/admin/..;/x",
        "/admin;x",
        "/%2e/admin",
        "/%2E%2E/admin",
        "/.%2e/admin",
        "/admin%2fx",
        "/admin%2Fx",
        "/x%2F..%2Fadmin",
        "/x/..%5cadmin",
        "/x/..%5Cadmin",
        "/x\\..\\admin",
        "/admin\\x",
        "/admin/%2e",
        "/a%2ejson",
        "/x/%2E",
    ];

    #[test]
    fn unclear_paths_are_never_skipped_and_always_guarded() {
        let entries = list(&["/admin", "/x", "/", "/a"]);
        assert!(UNCLEAR.contains(&UNKNOWN), "an unknown path is unclear");
        for path in UNCLEAR {
            assert_eq!(scope(&entries, path), Scope::Unclear, "{path:?}");
            assert!(!skips(&entries, path), "{path:?} skipped");
            assert!(guards(Some(&entries), path), "{path:?} not guarded");
            assert!(guards(Some(&list(&["/elsewhere"])), path), "{path:?}");
            assert!(guards(None, path), "{path:?}");
        }
    }

    #[test]
    fn paths_in_normal_form_are_matched_as_written() {
        let entries = list(&["/health", "/grpc.health.v1.Health", "/pkg.v1.Svc/Get"]);
        for (path, inside) in [
            ("/health", true),
            ("/health/", true),
            ("/health/live", true),
            ("/health/v1.2", true),
            ("/health/...", true),
            // Escapes of what a path cannot hold raw read the same to all.
            ("/health/caf%C3%A9", true),
            ("/health/a%20b", true),
            ("/health/%3F", true),
            ("/health/%23x", true),
            ("/health/%22%3C%3E%5B%5D%7B%7D%7C%5E%60", true),
            ("/grpc.health.v1.Health/Check", true),
            ("/pkg.v1.Svc/Get", true),
            ("/pkg.v1.Svc/GetAll", false),
            ("/healthz", false),
            ("/", false),
            ("/admin", false),
        ] {
            let want = if inside {
                Scope::Inside
            } else {
                Scope::Outside
            };
            assert_eq!(scope(&entries, path), want, "{path}");
            assert_eq!(skips(&entries, path), inside, "{path}");
            assert_eq!(guards(Some(&entries), path), inside, "{path}");
        }
        assert!(!skips(&[], "/health"), "no entries skip nothing");
        assert!(guards(None, "/anything"), "no entries guard everything");
    }

    #[test]
    fn entries_must_be_absolute_paths_in_normal_form() {
        for bad in [
            "",
            "health",
            " /health",
            "/health ",
            "/a b",
            "/health?x",
            "/a#b",
            "/a\t",
            "//",
            "/a//b",
            "/a/../b",
            "/a/./b",
            "/a/..",
            "/a%2fb",
            "/a%2E",
            "/a\\b",
        ] {
            let err = entries("skip_paths", [bad]).unwrap_err();
            match &err {
                BuildError::InvalidConfig(e) => assert_eq!(e.setting(), "skip_paths"),
                other => panic!("{bad:?}: {other}"),
            }
        }
        // What `env::var(..).unwrap_or_default().split(',')` gives.
        assert!(entries("paths", "".split(',')).is_err());
        assert!(entries("paths", "/health,".split(',')).is_err());
        let ok = entries(
            "paths",
            ["/", "/health", "/health/", "/pkg.v1.Svc/Get", "/a%20b"],
        );
        assert_eq!(ok.unwrap().len(), 5);
        assert_eq!(entries::<&str>("paths", []).unwrap().len(), 0);
    }
}
