//! Test servers for the mysql store (to be written, #16).
