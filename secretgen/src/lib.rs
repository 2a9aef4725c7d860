//! secretgen: see README.
