//! Traffic classification rules (pure: no I/O).
