//! kapply: see README.
