//! certwait: see README.
