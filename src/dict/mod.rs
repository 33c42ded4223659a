//! Attribute dictionaries.
