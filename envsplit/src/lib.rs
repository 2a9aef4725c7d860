//! envsplit: see README.
