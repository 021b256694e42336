//! Request paths matched by whole segments, for guard paths and the
//! layer's skipped paths.

/// Whether the path `entry` covers `path`, by whole segments:
/// `/admin` covers `/admin`, `/admin/` and `/admin/x`, never
/// `/administrator`. A trailing `/` on the entry changes nothing.
pub(crate) fn covers(entry: &str, path: &str) -> bool {
    let entry = entry.trim_end_matches('/');
    match path.strip_prefix(entry) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::covers;

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
        }
    }
}
