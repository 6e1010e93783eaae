//! Test servers for the postgres store (to be written, #16).
