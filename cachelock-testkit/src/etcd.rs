//! Test servers for the etcd store (to be written, #16).
