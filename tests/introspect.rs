//! Introspection tests (in progress).
