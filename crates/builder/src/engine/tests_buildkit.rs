//! BuildKit features over the fake backend.
