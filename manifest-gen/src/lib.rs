//! manifest-gen: see README.
