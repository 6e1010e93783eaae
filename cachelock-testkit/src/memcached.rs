//! Test servers for the memcached store (to be written, #16).
