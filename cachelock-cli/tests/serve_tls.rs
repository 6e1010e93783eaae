//! `cachelock serve --tls-cert --tls-key`: HTTPS through rustls, with a self-signed
//! certificate made here and a client that trusts it.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;

use common::http::{raw_exchange, raw_json, raw_status, Server};
use common::*;
use rustls::pki_types::{CertificateDer, ServerName};

/// A self-signed certificate for 127.0.0.1 and localhost: (cert.pem, key.pem, its DER).
fn self_signed() -> (PathBuf, PathBuf, CertificateDer<'static>) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("a self-signed certificate");
    let dir = fresh_runtime_dir();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    (cert, key, certified.cert.der().clone())
}

/// GET `path` over TLS, trusting `root` alone: the whole answer as text.
fn https_get(server: &Server, root: &CertificateDer<'static>, path: &str) -> String {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).expect("trust the certificate");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let socket = TcpStream::connect(server.address()).unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut tls = rustls::StreamOwned::new(connection, socket);
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    // The server may close without close_notify after `Connection: close`: keep what came.
    let _ = tls.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn serves_https_with_the_given_certificate_and_not_plain_http() {
    let (cert, key, der) = self_signed();
    let server = Server::memory(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    assert!(
        server.base().starts_with("https://127.0.0.1:"),
        "{}",
        server.base()
    );

    let answer = https_get(&server, &der, "/canhaz/over/tls?id=secure");
    assert_eq!(raw_status(&answer), Some(200), "{answer}");
    let granted = raw_json(&answer);
    assert_eq!(granted["ok"], true, "{granted}");
    assert_eq!(granted["path"], "/over/tls");

    let answer = https_get(&server, &der, "/dohaz/over");
    assert_eq!(raw_json(&answer)["lockedBy"], "secure", "{answer}");

    // Plain HTTP on the TLS port is not served: no HTTP status comes back.
    let plain = raw_exchange(
        server.address(),
        b"GET /dohaz/over HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(raw_status(&plain), None, "{plain:?}");
}

#[test]
fn a_certificate_without_its_key_or_a_bad_pem_is_a_clear_error() {
    let (cert, key, _) = self_signed();
    let output = cachelock()
        .args(["--store", "memory://", "serve", "--listen", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(&cert)
        .output()
        .unwrap();
    assert_ne!(code(&output), 0);
    assert!(stderr(&output).contains("--tls-key"), "{}", stderr(&output));

    let output = cachelock()
        .args(["--store", "memory://", "serve", "--listen", "127.0.0.1:0"])
        .arg("--tls-key")
        .arg(&key)
        .output()
        .unwrap();
    assert_ne!(code(&output), 0);
    assert!(
        stderr(&output).contains("--tls-cert"),
        "{}",
        stderr(&output)
    );

    // The key given as the certificate: no certificate in it.
    let output = cachelock()
        .args(["--store", "memory://", "serve", "--listen", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(&key)
        .arg("--tls-key")
        .arg(&key)
        .output()
        .unwrap();
    assert_eq!(code(&output), 64, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("no certificate"),
        "{}",
        stderr(&output)
    );
}
