//! Tests of master::meta.
